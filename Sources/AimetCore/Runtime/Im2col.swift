/// im2col and its adjoint col2im, which turn a convolution into one GEMM.
///
/// For geometry `g`, column matrix row `r = (c·kH + ky)·kW + kx` and column
/// `p = oy·outW + ox` hold `x[c][oy·sH − padTop + ky·dH][ox·sW − padLeft + kx·dW]`
/// (0 in the padding). Then `conv(x) = W[M, C·kH·kW] × cols` and a transposed
/// conv is `col2im(Wᵀ × x)`.
enum Im2col {
    /// Fills `cols` (rows `channels·kH·kW`, row stride `rowStride` ≥ `g.outCount`) from the
    /// `channels` planes of `x` (`g.inH × g.inW` each).
    static func pack(_ x: UnsafePointer<Float>, channels: Int, _ g: ConvGeometry,
                     into cols: UnsafeMutablePointer<Float>, rowStride: Int) {
        let oh = g.outH, ow = g.outW, w = g.inW, planeSize = g.inCount
        let columns = (0..<g.kW).map { g.validColumns(kx: $0) }
        var r = 0
        for c in 0..<channels {
            let plane = x + c * planeSize
            for ky in 0..<g.kH {
                let rows = g.validRows(ky: ky)
                let rowOffset = ky * g.dilationH - g.padTop
                for kx in 0..<g.kW {
                    let dst = cols + r * rowStride
                    let cr = columns[kx]
                    let colOffset = kx * g.dilationW - g.padLeft
                    if rows.lowerBound > 0 { dst.update(repeating: 0, count: rows.lowerBound * ow) }
                    for oy in rows {
                        let out = dst + oy * ow
                        let src = plane + (oy * g.strideH + rowOffset) * w
                        if cr.lowerBound > 0 { out.update(repeating: 0, count: cr.lowerBound) }
                        if g.strideW == 1 {
                            (out + cr.lowerBound).update(from: src + (cr.lowerBound + colOffset), count: cr.count)
                        } else {
                            let s = g.strideW
                            for ox in cr { out[ox] = src[ox * s + colOffset] }
                        }
                        if cr.upperBound < ow { (out + cr.upperBound).update(repeating: 0, count: ow - cr.upperBound) }
                    }
                    if rows.upperBound < oh { (dst + rows.upperBound * ow).update(repeating: 0, count: (oh - rows.upperBound) * ow) }
                    r += 1
                }
            }
        }
    }

    /// The adjoint of `pack`: adds every column entry into the input position it
    /// was read from (`y` holds `channels` planes of `g.inH × g.inW`, already initialized).
    static func unpackAdd(_ cols: UnsafePointer<Float>, rowStride: Int, channels: Int, _ g: ConvGeometry,
                          into y: UnsafeMutablePointer<Float>) {
        let ow = g.outW, w = g.inW, planeSize = g.inCount
        let columns = (0..<g.kW).map { g.validColumns(kx: $0) }
        var r = 0
        for c in 0..<channels {
            let plane = y + c * planeSize
            for ky in 0..<g.kH {
                let rows = g.validRows(ky: ky)
                let rowOffset = ky * g.dilationH - g.padTop
                for kx in 0..<g.kW {
                    let src = cols + r * rowStride
                    let cr = columns[kx]
                    let colOffset = kx * g.dilationW - g.padLeft
                    for oy in rows {
                        let col = src + oy * ow
                        let dst = plane + (oy * g.strideH + rowOffset) * w
                        if g.strideW == 1 {
                            let d = dst + (cr.lowerBound + colOffset), v = col + cr.lowerBound, n = cr.count
                            var j = 0
                            while j + 8 <= n { d.store8(d.load8(j) + v.load8(j), j); j += 8 }
                            while j < n { d[j] += v[j]; j += 1 }
                        } else {
                            let s = g.strideW
                            for ox in cr { dst[ox * s + colOffset] += col[ox] }
                        }
                    }
                    r += 1
                }
            }
        }
    }
}
