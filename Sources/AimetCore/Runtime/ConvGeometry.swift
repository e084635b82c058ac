/// Where the windows of a conv, pool or transposed conv sit over two spatial
/// axes (a 1-D op uses H = 1 with a 1-high window and no vertical padding).
///
/// Output pixel `(oy, ox)` reads input pixels
/// `(oy·strideH − padTop + ky·dilationH, ox·strideW − padLeft + kx·dilationW)`
/// for `ky < kH`, `kx < kW`; positions outside `[0, inH) × [0, inW)` are padding.
/// For a transposed conv the roles swap: `in` is its (larger) output map and
/// `out` its input map, so its col2im is exactly the adjoint of im2col.
struct ConvGeometry: Equatable, Sendable {
    var inH: Int, inW: Int
    var outH: Int, outW: Int
    var kH: Int, kW: Int
    var strideH: Int, strideW: Int
    var dilationH: Int, dilationW: Int
    var padTop: Int, padLeft: Int, padBottom: Int, padRight: Int

    var inCount: Int { inH * inW }
    var outCount: Int { outH * outW }
    var kernelCount: Int { kH * kW }

    /// No padding, unit stride, 1×1 window: im2col would be a plain copy.
    var isPointwise: Bool {
        kH == 1 && kW == 1 && strideH == 1 && strideW == 1 && padTop == 0 && padLeft == 0 && padBottom == 0 && padRight == 0
    }

    /// The output columns `ox` whose input column `ox·strideW − padLeft + kx·dilationW`
    /// lies inside the input, as a range (possibly empty).
    @inline(__always)
    func validColumns(kx: Int) -> Range<Int> {
        let offset = kx * dilationW - padLeft
        // ox·s + offset >= 0  ⇔  ox >= ceil(-offset / s)
        let lo = offset >= 0 ? 0 : (-offset + strideW - 1) / strideW
        // ox·s + offset <= inW − 1  ⇔  ox <= floor((inW − 1 − offset) / s)
        let top = inW - 1 - offset
        let hi = top < 0 ? 0 : top / strideW + 1
        let clampedLo = min(lo, outW)
        return clampedLo..<max(clampedLo, min(hi, outW))
    }

    /// The same for rows.
    @inline(__always)
    func validRows(ky: Int) -> Range<Int> {
        let offset = ky * dilationH - padTop
        let lo = offset >= 0 ? 0 : (-offset + strideH - 1) / strideH
        let top = inH - 1 - offset
        let hi = top < 0 ? 0 : top / strideH + 1
        let clampedLo = min(lo, outH)
        return clampedLo..<max(clampedLo, min(hi, outH))
    }
}
