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
            threeByThree(x, w, g, y, scratch)
        } else {
            generic(x, w, g, y)
        }
        activation.apply(y, g.outCount, bias: bias, residual: residual)
    }

    private static func isThreeByThree(_ g: ConvGeometry) -> Bool {
        g.kH == 3 && g.kW == 3 && g.dilationH == 1 && g.dilationW == 1 && (g.strideW == 1 || g.strideW == 2)
    }

    /// Rows and columns of the padded plane: every row the windows touch, and
    /// every column the 4-wide vector loads touch for outputs rounded up to 4.
    /// Stride 1: `col = ox + kx`, `ow4 + 2` columns. Stride 2 keeps each padded
    /// row split into its even and odd columns, `E[j] = P[2j]`, `O[j] = P[2j+1]`
    /// (`ow4 + 1` each), so the taps `P[2·ox]`, `P[2·ox+1]`, `P[2·ox+2]` are the
    /// contiguous `E[ox]`, `O[ox]`, `E[ox+1]`.
    private static func paddedSize(_ g: ConvGeometry) -> (rows: Int, cols: Int) {
        let ow4 = (g.outW + 3) / 4 * 4
        return ((g.outH - 1) * g.strideH + 3, g.strideW == 1 ? ow4 + 2 : 2 * (ow4 + 1))
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

    /// 3×3, dilation 1, horizontal stride 1 or 2, any vertical stride and padding.
    private static func threeByThree(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ g: ConvGeometry,
                                     _ y: UnsafeMutablePointer<Float>, _ padded: UnsafeMutablePointer<Float>) {
        let ow = g.outW, iw = g.inW, ih = g.inH, pl = g.padLeft
        let (rows, cols) = paddedSize(g)
        let half = cols / 2   // stride 2: E then O, `half` floats each
        // Input rows into the padded plane. Only the positions that hold input are
        // written: the rest was zeroed by `prepare` and stays zero for every plane.
        for r in max(0, g.padTop)..<max(max(0, g.padTop), min(rows, g.padTop + ih)) {
            let dst = padded + r * cols
            let src = x + (r - g.padTop) * iw
            if g.strideW == 1 {
                // dst[c] = src[c − pl] for c in pl ..< min(cols, pl + iw).
                let n = max(0, min(cols, pl + iw) - pl)
                copy(dst + pl, src, n)
            } else {
                // E[j] = P[2j] = src[2j − pl], O[j] = P[2j + 1] = src[2j + 1 − pl], inside the input.
                let even = dst, odd = dst + half
                let lo = min(half, (pl + 1) / 2), hi = max(lo, min(half, (iw - 1 + pl) / 2))
                func edge(_ j: Int) {
                    let c0 = 2 * j - pl, c1 = c0 + 1
                    if c0 >= 0 && c0 < iw { even[j] = src[c0] }
                    if c1 >= 0 && c1 < iw { odd[j] = src[c1] }
                }
                for j in 0..<lo { edge(j) }
                // 8 inputs → 4 even, 4 odd at a time (the last load ends at base[2·(hi − lo) − 1]).
                let base = src + (2 * lo - pl), n = hi - lo
                var j = 0
                while j + 4 <= n {
                    let v = base.load8(2 * j)
                    (even + lo).store4(v.evenHalf, j)
                    (odd + lo).store4(v.oddHalf, j)
                    j += 4
                }
                while j < n {
                    even[lo + j] = base[2 * j]
                    odd[lo + j] = base[2 * j + 1]
                    j += 1
                }
                for j in hi..<half { edge(j) }
            }
        }
        let w0 = Float4(repeating: w[0]), w1 = Float4(repeating: w[1]), w2 = Float4(repeating: w[2])
        let w3 = Float4(repeating: w[3]), w4 = Float4(repeating: w[4]), w5 = Float4(repeating: w[5])
        let w6 = Float4(repeating: w[6]), w7 = Float4(repeating: w[7]), w8 = Float4(repeating: w[8])
        // The last vector of a row may run past `ow`: it goes to `tail` and only `ow − ox` lanes are kept.
        if g.strideW == 1 {
            for oy in 0..<g.outH {
                let r0 = UnsafePointer(padded + oy * g.strideH * cols), r1 = r0 + cols, r2 = r1 + cols
                let out = y + oy * ow
                var ox = 0
                while ox < ow {
                    var acc = w0 * r0.load4(ox) + w1 * r0.load4(ox + 1) + w2 * r0.load4(ox + 2)
                    acc += w3 * r1.load4(ox) + w4 * r1.load4(ox + 1) + w5 * r1.load4(ox + 2)
                    acc += w6 * r2.load4(ox) + w7 * r2.load4(ox + 1) + w8 * r2.load4(ox + 2)
                    if ox + 4 <= ow { out.store4(acc, ox) } else { for j in 0..<(ow - ox) { out[ox + j] = acc[j] } }
                    ox += 4
                }
            }
        } else {
            for oy in 0..<g.outH {
                let e0 = UnsafePointer(padded + oy * g.strideH * cols), e1 = e0 + cols, e2 = e1 + cols
                let o0 = e0 + half, o1 = e1 + half, o2 = e2 + half
                let out = y + oy * ow
                var ox = 0
                while ox < ow {
                    var acc = w0 * e0.load4(ox) + w1 * o0.load4(ox) + w2 * e0.load4(ox + 1)
                    acc += w3 * e1.load4(ox) + w4 * o1.load4(ox) + w5 * e1.load4(ox + 1)
                    acc += w6 * e2.load4(ox) + w7 * o2.load4(ox) + w8 * e2.load4(ox + 1)
                    if ox + 4 <= ow { out.store4(acc, ox) } else { for j in 0..<(ow - ox) { out[ox + j] = acc[j] } }
                    ox += 4
                }
            }
        }
    }
}
