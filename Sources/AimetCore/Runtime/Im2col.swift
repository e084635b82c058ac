/// im2col and its adjoint col2im, which turn a convolution into one GEMM.
///
/// For geometry `g`, column matrix row `r = (c·kH + ky)·kW + kx` and column
/// `p = oy·outW + ox` hold `x[c][oy·sH − padTop + ky·dH][ox·sW − padLeft + kx·dW]`
/// (0 in the padding). Then `conv(x) = W[M, C·kH·kW] × cols` and a transposed
/// conv is `col2im(Wᵀ × x)`.
enum Im2col {
    /// Fills `cols` (rows `channels·kH·kW`, row stride `rowStride`) with the
    /// columns of output pixels `pixels` (`p = oy·outW + ox`; column `p − pixels.lowerBound`)
    /// from the `channels` planes of `x` (`g.inH × g.inW` each).
    static func pack(_ x: UnsafePointer<Float>, channels: Int, _ g: ConvGeometry, pixels: Range<Int>,
                     into cols: UnsafeMutablePointer<Float>, rowStride: Int) {
        let ow = g.outW, w = g.inW, planeSize = g.inCount
        let firstRow = pixels.lowerBound / ow, lastRow = (pixels.upperBound - 1) / ow
        var r = 0
        for c in 0..<channels {
            let plane = x + c * planeSize
            for ky in 0..<g.kH {
                let rowOffset = ky * g.dilationH - g.padTop
                for kx in 0..<g.kW {
                    let rowStart = r * rowStride - pixels.lowerBound   // column of pixel p: rowStart + p
                    let cr = g.validColumns(kx: kx)
                    let colOffset = kx * g.dilationW - g.padLeft
                    for oy in firstRow...lastRow {
                        // This output row's pixels within the range, as columns lo..<hi;
                        // pixel (oy, ox) goes to cols[start + ox].
                        let lo = oy == firstRow ? pixels.lowerBound - oy * ow : 0
                        let hi = oy == lastRow ? pixels.upperBound - oy * ow : ow
                        let start = rowStart + oy * ow
                        let iy = oy * g.strideH + rowOffset
                        let vlo = max(lo, cr.lowerBound), vhi = min(hi, cr.upperBound)
                        guard iy >= 0 && iy < g.inH && vlo < vhi else {
                            (cols + (start + lo)).update(repeating: 0, count: hi - lo)
                            continue
                        }
                        let src = plane + iy * w
                        if vlo > lo { (cols + (start + lo)).update(repeating: 0, count: vlo - lo) }
                        if g.strideW == 1 {
                            (cols + (start + vlo)).update(from: src + (vlo + colOffset), count: vhi - vlo)
                        } else {
                            let s = g.strideW, out = cols + (start + vlo), first = vlo * s + colOffset, n = vhi - vlo
                            var j = 0
                            if s == 2 {
                                // Even lanes of 8-wide loads; the last load must stay inside the row.
                                while j + 4 <= n && first + 2 * j + 8 <= w {
                                    out.store4((src + (first + 2 * j)).load8().evenHalf, j)
                                    j += 4
                                }
                            }
                            while j < n { out[j] = src[first + j * s]; j += 1 }
                        }
                        if vhi < hi { (cols + (start + vhi)).update(repeating: 0, count: hi - vhi) }
                    }
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

extension Im2col {
    /// `pack` over any number of spatial axes: fills `cols` (rows
    /// `channels·kernelCount`, one column per output position, row stride
    /// `g.outCount`) from the `channels` planes of `x` (`g.inCount` each).
    static func packVolume(_ x: UnsafePointer<Float>, channels: Int, _ g: VolumeGeometry, into cols: UnsafeMutablePointer<Float>) {
        let outLast = g.output[g.output.count - 1], s = g.strides[g.strides.count - 1]
        g.forEachRow(channels: channels) { column, source, kLast in
            let out = cols + column
            guard let source else { out.update(repeating: 0, count: outLast); return }
            let valid = g.validLast(kLast), offset = source + g.lastOffset(kLast)
            out.update(repeating: 0, count: outLast)
            for o in valid { out[o] = x[offset + o * s] }
        }
    }

    /// The adjoint of `packVolume`: adds every column entry into the input
    /// position it was read from (`y`: `channels` planes of `g.inCount`, initialized).
    static func unpackAddVolume(_ cols: UnsafePointer<Float>, channels: Int, _ g: VolumeGeometry, into y: UnsafeMutablePointer<Float>) {
        let s = g.strides[g.strides.count - 1]
        g.forEachRow(channels: channels) { column, source, kLast in
            guard let source else { return }
            let offset = source + g.lastOffset(kLast), src = cols + column
            for o in g.validLast(kLast) { y[offset + o * s] += src[o] }
        }
    }
}
