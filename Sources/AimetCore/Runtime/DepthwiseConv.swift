/// Direct depthwise convolution (`group == C_in`, one input channel per group),
/// one output plane at a time:
///
///     y[oy][ox] = act(bias + Σ_{ky,kx} w[ky][kx] · x[oy·sH − padTop + ky·dH][ox·sW − padLeft + kx·dW] + residual[oy][ox])
///
/// with zero padding. 3×3 windows with unit dilation and horizontal stride 1
/// or 2 (MobileNet's) first copy the plane into a zero-bordered scratch plane
/// (for stride 2 split into even and odd columns), then run 4 outputs (one
/// SSE register) at a time with no bounds checks: 9 vector multiply-adds
/// from three padded rows, the 9 weights held in registers. Other windows
/// accumulate one tap at a time over whole rows. The epilogue (bias,
/// residual, activation) runs once over the finished plane.
///
/// Use: `prepare` the scratch once for a geometry, then call `plane` for each
/// plane of that geometry (it rewrites only the positions holding input).
enum DepthwiseConv {
    /// Scratch floats `plane` needs for this geometry.
    static func scratchCount(_ g: ConvGeometry) -> Int {
        guard isThreeByThree(g) else { return 0 }
        let (rows, cols) = paddedSize(g)
        return rows * cols
    }

    /// Zeros the scratch plane once before the planes of one geometry: `plane`
    /// writes only the positions that hold input, so the border stays zero.
    static func prepare(_ scratch: UnsafeMutablePointer<Float>, _ g: ConvGeometry) {
        scratch.update(repeating: 0, count: scratchCount(g))
    }

    /// Copies `n` floats; short rows inline (a `memcpy` call costs more than 16 floats).
    @inline(__always) private static func copy(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, _ n: Int) {
        if n > 64 {
            dst.update(from: src, count: n)
            return
        }
        var j = 0
        while j + 4 <= n { dst.store4(src.load4(j), j); j += 4 }
        while j < n { dst[j] = src[j]; j += 1 }
    }

    /// One output plane `y` (`g.outH × g.outW`) from one input plane `x` and its
    /// `kH·kW` weights `w`; `scratch` holds `scratchCount(g)` floats, `prepare`d.
    static func plane(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ g: ConvGeometry,
                      _ y: UnsafeMutablePointer<Float>, bias: Float, activation: Activation,
                      residual: UnsafePointer<Float>?, scratch: UnsafeMutablePointer<Float>) {
        if isThreeByThree(g) {
            threeByThree(x, w, g, y, scratch, bias: bias, activation: activation, residual: residual)
        } else {
            generic(x, w, g, y)
            activation.apply(y, g.outCount, bias: bias, residual: residual)
        }
    }

    private static func isThreeByThree(_ g: ConvGeometry) -> Bool {
        g.kH == 3 && g.kW == 3 && g.dilationH == 1 && g.dilationW == 1 && (g.strideW == 1 || g.strideW == 2)
    }

    /// Rows and columns of the padded plane: every row the windows touch, and
    /// every column the vector loads touch for outputs rounded up to 4
    /// (`taps`): `ow4 + 2` columns for stride 1, `2·ow4 + 2` for stride 2.
    private static func paddedSize(_ g: ConvGeometry) -> (rows: Int, cols: Int) {
        let ow4 = (g.outW + 3) / 4 * 4
        return ((g.outH - 1) * g.strideH + 3, g.strideW == 1 ? ow4 + 2 : 2 * ow4 + 2)
    }

    /// The three horizontal taps of the 4 outputs at `ox` from one padded row:
    /// `row[s·ox + kx + s·j]` for `kx < 3`, lanes `j < 4`, horizontal stride `s`
    /// 1 or 2 (then the even and odd lanes of two 8-wide loads).
    @inline(__always)
    static func taps(_ row: UnsafePointer<Float>, _ ox: Int, stride: Int) -> (Float4, Float4, Float4) {
        if stride == 1 { return (row.load4(ox), row.load4(ox + 1), row.load4(ox + 2)) }
        let a = row.load8(2 * ox), b = row.load8(2 * ox + 2)
        return (a.evenHalf, a.oddHalf, b.evenHalf)
    }

    /// One tap at a time: `row += w · shifted input row` over the valid columns.
    private static func generic(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ g: ConvGeometry,
                                _ y: UnsafeMutablePointer<Float>) {
        let ow = g.outW, iw = g.inW, s = g.strideW
        let columns = (0..<g.kW).map { g.validColumns(kx: $0) }
        y.update(repeating: 0, count: g.outCount)
        for oy in 0..<g.outH {
            let out = y + oy * ow
            for ky in 0..<g.kH {
                let iy = oy * g.strideH - g.padTop + ky * g.dilationH
                guard iy >= 0 && iy < g.inH else { continue }
                let row = x + iy * iw
                for kx in 0..<g.kW {
                    let weight = w[ky * g.kW + kx]
                    let cr = columns[kx]
                    guard !cr.isEmpty else { continue }
                    let offset = kx * g.dilationW - g.padLeft
                    if s == 1 {
                        let src = row + (cr.lowerBound + offset), dst = out + cr.lowerBound
                        for j in 0..<cr.count { dst[j] += weight * src[j] }
                    } else {
                        for ox in cr { out[ox] += weight * row[ox * s + offset] }
                    }
                }
            }
        }
    }

    /// 3×3, dilation 1, horizontal stride 1 or 2, any vertical stride and padding;
    /// bias and residual join each vector before it is stored.
    private static func threeByThree(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ g: ConvGeometry,
                                     _ y: UnsafeMutablePointer<Float>, _ padded: UnsafeMutablePointer<Float>,
                                     bias: Float, activation: Activation, residual: UnsafePointer<Float>?) {
        let ow = g.outW, iw = g.inW, ih = g.inH, pl = g.padLeft
        let (rows, cols) = paddedSize(g)
        // Input rows into the padded plane, `dst[c] = src[c − pl]`. Only the positions that
        // hold input are written: the rest was zeroed by `prepare` and stays zero for every plane.
        let n = max(0, min(cols, pl + iw) - pl)
        for r in max(0, g.padTop)..<max(max(0, g.padTop), min(rows, g.padTop + ih)) {
            copy(padded + (r &* cols &+ pl), x + (r - g.padTop) &* iw, n)
        }
        let w0 = Float4(repeating: w[0]), w1 = Float4(repeating: w[1]), w2 = Float4(repeating: w[2])
        let w3 = Float4(repeating: w[3]), w4 = Float4(repeating: w[4]), w5 = Float4(repeating: w[5])
        let w6 = Float4(repeating: w[6]), w7 = Float4(repeating: w[7]), w8 = Float4(repeating: w[8])
        let b = Float4(repeating: bias)
        /// Output row `oy` with bias and residual; `s` is a literal at each call, so the taps specialize.
        @inline(__always) func row(_ oy: Int, stride s: Int) {
            let r0 = UnsafePointer(padded + oy &* g.strideH &* cols), r1 = r0 + cols, r2 = r1 + cols
            let out = y + oy &* ow
            let res = residual.map { $0 + oy &* ow }
            var ox = 0
            while ox < ow {
                let (a0, a1, a2) = taps(r0, ox, stride: s)
                let (b0, b1, b2) = taps(r1, ox, stride: s)
                let (c0, c1, c2) = taps(r2, ox, stride: s)
                var acc = b + w0 * a0 + w1 * a1 + w2 * a2
                acc += w3 * b0 + w4 * b1 + w5 * b2
                acc += w6 * c0 + w7 * c1 + w8 * c2
                // The last vector of a row may run past `ow`: only `ow − ox` lanes are kept.
                if ox &+ 4 <= ow {
                    if let res { acc += res.load4(ox) }
                    out.store4(acc, ox)
                } else {
                    for j in 0..<(ow &- ox) { out[ox &+ j] = acc[j] + (res?[ox &+ j] ?? 0) }
                }
                ox &+= 4
            }
        }
        // The activation runs over runs of rows of at least 256 outputs, while they are in cache.
        var pending = 0
        for oy in 0..<g.outH {
            if g.strideW == 1 { row(oy, stride: 1) } else { row(oy, stride: 2) }
            if (oy + 1 - pending) * ow >= 256 || oy == g.outH - 1 {
                activation.apply(y + pending * ow, (oy + 1 - pending) * ow)
                pending = oy + 1
            }
        }
    }
}
