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

/// Where the windows of a conv or transposed conv sit over any number of
/// spatial axes (3-D convs; `ConvGeometry` covers one and two axes with its
/// faster loops). Per axis `a`, output position `o` reads input position
/// `o·strides[a] − begins[a] + k·dilations[a]` for `k < kernel[a]`; positions
/// outside `[0, input[a])` are padding. As in `ConvGeometry`, a transposed conv
/// swaps the roles: `input` is its output and `output` its input.
struct VolumeGeometry: Equatable, Sendable {
    var input: [Int], output: [Int], kernel: [Int]
    var strides: [Int], dilations: [Int], begins: [Int]

    var inCount: Int { input.reduce(1, *) }
    var outCount: Int { output.reduce(1, *) }
    var kernelCount: Int { kernel.reduce(1, *) }

    /// Visits the column matrix of `channels` planes one output row (positions
    /// along the last axis) at a time: `body(column, source, kLast)` gets the
    /// offset of the row's first column entry (row stride `outCount`), the
    /// offset in the planes of the input row it reads (all axes but the last
    /// resolved; nil when that row lies in the padding), and the window index
    /// along the last axis. Entry `column + o` pairs with input
    /// `source + o·strides.last − begins.last + kLast·dilations.last` when
    /// `o` is in `validLast(kLast)`, else with padding.
    func forEachRow(channels: Int, _ body: (Int, Int?, Int) -> Void) {
        let r = input.count, outLast = output[r - 1], outOuter = outCount / max(outLast, 1)
        var inStrides = [Int](repeating: 1, count: r)
        for a in stride(from: r - 2, through: 0, by: -1) { inStrides[a] = inStrides[a + 1] * input[a + 1] }
        var k = [Int](repeating: 0, count: r), o = [Int](repeating: 0, count: r)
        var row = 0
        for c in 0..<channels {
            for kIndex in 0..<kernelCount {
                var rest = kIndex
                for a in stride(from: r - 1, through: 0, by: -1) { k[a] = rest % kernel[a]; rest /= kernel[a] }
                for outer in 0..<outOuter {
                    var rest = outer, source: Int? = c * inCount
                    for a in stride(from: r - 2, through: 0, by: -1) {
                        o[a] = rest % output[a]
                        rest /= output[a]
                        let i = o[a] * strides[a] - begins[a] + k[a] * dilations[a]
                        if i < 0 || i >= input[a] { source = nil } else if let s = source { source = s + i * inStrides[a] }
                    }
                    body(row * outCount + outer * outLast, source, k[r - 1])
                }
                row += 1
            }
        }
    }

    /// The output positions `o` along the last axis whose input position
    /// `o·stride − begin + kLast·dilation` lies inside the input.
    func validLast(_ kLast: Int) -> Range<Int> {
        let a = input.count - 1, s = strides[a]
        let offset = kLast * dilations[a] - begins[a]
        let lo = offset >= 0 ? 0 : (-offset + s - 1) / s
        let top = input[a] - 1 - offset
        let hi = top < 0 ? 0 : top / s + 1
        let clampedLo = min(lo, output[a])
        return clampedLo..<max(clampedLo, min(hi, output[a]))
    }

    /// The input offset along the last axis of output position 0 for window index `kLast`.
    func lastOffset(_ kLast: Int) -> Int {
        let a = input.count - 1
        return kLast * dilations[a] - begins[a]
    }
}
