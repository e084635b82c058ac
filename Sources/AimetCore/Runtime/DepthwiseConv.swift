/// Direct depthwise convolution (`group == C_in`, one input channel per group),
/// one output plane at a time:
///
///     y[oy][ox] = act(bias + Σ_{ky,kx} w[ky][kx] · x[oy·sH − padTop + ky·dH][ox·sW − padLeft + kx·dW] + residual[oy][ox])
///
/// with zero padding. 3×3 windows with unit dilation and horizontal stride 1
/// or 2 (MobileNet's) run a vectorized kernel over the interior columns, with
/// bounds-checked scalar code at the borders; anything else accumulates one
/// tap at a time over whole rows.
enum DepthwiseConv {
    static func plane(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ g: ConvGeometry,
                      _ y: UnsafeMutablePointer<Float>, bias: Float, activation: Activation,
                      residual: UnsafePointer<Float>?) {
        if g.kH == 3 && g.kW == 3 && g.dilationH == 1 && g.dilationW == 1 && (g.strideW == 1 || g.strideW == 2) {
            threeByThree(x, w, g, y, bias: bias, activation: activation, residual: residual)
        } else {
            generic(x, w, g, y, bias: bias, activation: activation, residual: residual)
        }
    }

    /// One tap at a time: `row += w · shifted input row` over the valid columns.
    private static func generic(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ g: ConvGeometry,
                                _ y: UnsafeMutablePointer<Float>, bias: Float, activation: Activation,
                                residual: UnsafePointer<Float>?) {
        let ow = g.outW, iw = g.inW, s = g.strideW
        let columns = (0..<g.kW).map { g.validColumns(kx: $0) }
        for oy in 0..<g.outH {
            let out = y + oy * ow
            out.update(repeating: 0, count: ow)
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
                        let src = row + (cr.lowerBound + offset), dst = out + cr.lowerBound, n = cr.count
                        let wv = Float8(repeating: weight)
                        var j = 0
                        while j + 8 <= n { dst.store8(dst.load8(j) + wv * src.load8(j), j); j += 8 }
                        while j < n { dst[j] += weight * src[j]; j += 1 }
                    } else {
                        for ox in cr { out[ox] += weight * row[ox * s + offset] }
                    }
                }
            }
            activation.apply(out, ow, bias: bias, residual: residual.map { $0 + oy * ow })
        }
    }

    /// 3×3, dilation 1, horizontal stride 1 or 2, any vertical stride and padding.
    /// Window rows above or below the input read a row of zeros instead.
    private static func threeByThree(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ g: ConvGeometry,
                                     _ y: UnsafeMutablePointer<Float>, bias: Float, activation: Activation,
                                     residual: UnsafePointer<Float>?) {
        let ow = g.outW, iw = g.inW, ih = g.inH, s = g.strideW, pl = g.padLeft
        let w0 = Float8(repeating: w[0]), w1 = Float8(repeating: w[1]), w2 = Float8(repeating: w[2])
        let w3 = Float8(repeating: w[3]), w4 = Float8(repeating: w[4]), w5 = Float8(repeating: w[5])
        let w6 = Float8(repeating: w[6]), w7 = Float8(repeating: w[7]), w8 = Float8(repeating: w[8])
        // Output columns whose vector loads stay inside the row: for stride 1 the
        // loads are x[ox − pl + kx ..< +8]; for stride 2 two 16-wide loads at
        // 2·ox − pl and 2·ox − pl + 2 (last index 2·ox − pl + 17).
        let vectorLo = s == 1 ? max(0, pl) : (pl + 1) / 2
        let vectorHi = s == 1 ? min(ow - 7, iw - 9 + pl) : min(ow - 7, floorDiv(iw - 18 + pl, 2) + 1)
        withUnsafeTemporaryAllocation(of: Float.self, capacity: iw) { zeros in
            zeros.initialize(repeating: 0)
            let zero = UnsafePointer(zeros.baseAddress!)
            for oy in 0..<g.outH {
                let out = y + oy * ow
                let top = oy * g.strideH - g.padTop
                let r0 = top >= 0 && top < ih ? x + top * iw : zero
                let r1 = top + 1 >= 0 && top + 1 < ih ? x + (top + 1) * iw : zero
                let r2 = top + 2 >= 0 && top + 2 < ih ? x + (top + 2) * iw : zero
                // Bounds-checked column.
                func scalar(_ ox: Int) -> Float {
                    var acc: Float = 0
                    for kx in 0..<3 {
                        let ix = ox * s - pl + kx
                        if ix >= 0 && ix < iw { acc += w[kx] * r0[ix] + w[3 + kx] * r1[ix] + w[6 + kx] * r2[ix] }
                    }
                    return acc
                }
                var ox = 0
                while ox < min(vectorLo, ow) { out[ox] = scalar(ox); ox += 1 }
                if s == 1 {
                    while ox < vectorHi {
                        let i = ox - pl
                        var acc = w0 * r0.load8(i) + w1 * r0.load8(i + 1) + w2 * r0.load8(i + 2)
                        acc += w3 * r1.load8(i) + w4 * r1.load8(i + 1) + w5 * r1.load8(i + 2)
                        acc += w6 * r2.load8(i) + w7 * r2.load8(i + 1) + w8 * r2.load8(i + 2)
                        out.store8(acc, ox)
                        ox += 8
                    }
                } else {
                    while ox < vectorHi {
                        let i = 2 * ox - pl
                        let a0 = r0.load16(i), a2 = r0.load16(i + 2)
                        let b0 = r1.load16(i), b2 = r1.load16(i + 2)
                        let c0 = r2.load16(i), c2 = r2.load16(i + 2)
                        var acc = w0 * a0.evenHalf + w1 * a0.oddHalf + w2 * a2.evenHalf
                        acc += w3 * b0.evenHalf + w4 * b0.oddHalf + w5 * b2.evenHalf
                        acc += w6 * c0.evenHalf + w7 * c0.oddHalf + w8 * c2.evenHalf
                        out.store8(acc, ox)
                        ox += 8
                    }
                }
                while ox < ow { out[ox] = scalar(ox); ox += 1 }
                activation.apply(out, ow, bias: bias, residual: residual.map { $0 + oy * ow })
            }
        }
    }

    @inline(__always) private static func floorDiv(_ a: Int, _ b: Int) -> Int {
        a >= 0 ? a / b : -((-a + b - 1) / b)
    }
}
