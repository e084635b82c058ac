#if canImport(Glibc)
import Glibc
#endif

/// MaxPool, AveragePool and LpPool over `x [N, C, D1, ..., Dr]` (r = 1, 2, 3):
///
///     max:      y[o] = max over the window positions inside the input
///     average:  y[o] = Σ window positions inside the input / count
///     lp:       y[o] = (Σ |x|^p over the window positions inside the input)^(1/p)
///
/// where the window of output position `o` covers, along each spatial axis,
/// positions `o·stride − padBegin + k·dilation` (`k < kernel`). `count` is the
/// number of positions inside the input (`count_include_pad = 0`), or inside
/// the padded input `[−padBegin, D + padEnd)` (`count_include_pad = 1`; a
/// `ceil_mode` window running past the end padding counts only up to it, as
/// onnxruntime and PyTorch do).
///
/// MaxPool's optional Indices output (a step of its own) holds, for each
/// output, the flat index of the first maximum in the whole input
/// `[0, N·C·D1···Dr)`: row-major spatial index, or column-major with
/// `storage_order = 1`.
///
/// 1-D and 2-D max / average pooling run a vectorized plane loop; 3-D, LpPool
/// and indices walk the windows one position at a time.
final class PoolKernel: Kernel {
    enum Kind: Sendable, Equatable { case max, average, lp(Float) }
    enum Output: Sendable { case values, indices }
    let kind: Kind
    let output: Output
    let window: WindowAttributes
    let countIncludePad: Bool
    let columnMajor: Bool

    init(node: Node, kind: Kind, output: Output = .values) throws {
        let what = "node '\(node.name)' (\(node.op))"
        guard let kernel = node.ints("kernel_shape") else {
            throw AimetError.invalid("\(what) has no kernel_shape")
        }
        self.kind = kind
        self.output = output
        window = try WindowAttributes(node: node, kernel: kernel, rank: kernel.count, maxRank: 3)
        if (window.autoPad == .sameUpper || window.autoPad == .sameLower) && window.dilations.contains(where: { $0 > 1 }) {
            // The ONNX rule pads for the dilated window; onnxruntime pads for the undilated one (a smaller output).
            throw AimetError.unsupported("\(what): auto_pad SAME with dilations \(window.dilations) is not supported (onnxruntime and the ONNX rule give different output sizes)")
        }
        countIncludePad = node.int("count_include_pad", default: 0) != 0
        columnMajor = node.int("storage_order", default: 0) != 0
    }

    func outputType(_ types: [ElementType]) throws -> ElementType {
        guard types[0] == .float32 else { throw AimetError.unsupported("operand 0 is \(types[0]); this op computes on float32 only") }
        return output == .indices ? .int64 : .float32
    }

    func outputShape(_ shapes: [[Int]]) throws -> [Int] {
        let x = shapes[0]
        guard x.count == window.rank + 2 else {
            throw AimetError.shape("input of shape \(x) has rank \(x.count), expected \(window.rank + 2)")
        }
        return [x[0], x[1]] + (try window.spans(input: Array(x.dropFirst(2))).map(\.out))
    }

    /// Indices count the planes before the item: they depend on its position in the batch.
    func isBatchSeparable(_ shapes: [[Int]]) -> Bool { output == .values }

    func run(_ args: KernelArgs) throws {
        let shape = args.shapes[0]
        let planes = shape[0] * shape[1]
        guard window.rank <= 2, output == .values, kind == .max || kind == .average else {
            return try walk(args)
        }
        let g = try window.geometry(input: Array(shape.dropFirst(2)))
        let x = args.inputs[0], y = args.output
        Parallel.forEach(planes, workers: planes * g.outCount * g.kernelCount >= 1 << 15 ? args.workers : 1) { range, _ in
            for p in range {
                plane(x + p * g.inCount, g, y + p * g.outCount)
            }
        }
    }

    /// Any rank, any kind, values or indices: each window position by position.
    private func walk(_ args: KernelArgs) throws {
        let shape = args.shapes[0]
        let planes = shape[0] * shape[1]
        let input = Array(shape.dropFirst(2)), r = window.rank
        let spans = try window.spans(input: input)
        let outs = spans.map(\.out)
        let inCount = Shapes.product(input, 0..<r), outCount = Shapes.product(outs, 0..<r)
        let taps = Shapes.product(window.kernel, 0..<r)
        // Row-major and (for indices) column-major strides of the input's spatial axes.
        var rowStrides = [Int](repeating: 1, count: r), columnStrides = rowStrides
        for i in stride(from: r - 2, through: 0, by: -1) { rowStrides[i] = rowStrides[i + 1] * input[i + 1] }
        for i in 1..<max(r, 1) { columnStrides[i] = columnStrides[i - 1] * input[i - 1] }
        let x = args.inputs[0], y = args.output, yi = Int64Pointer(args.output)
        let kind = self.kind, output = self.output, w = window, columnMajor = self.columnMajor, includePad = countIncludePad
        Parallel.forEach(planes, workers: planes * outCount * taps >= 1 << 14 ? args.workers : 1) { range, _ in
            var o = [Int](repeating: 0, count: r), k = o
            for p in range {
                let src = x + p * inCount
                for flat in 0..<outCount {
                    // The output position's coordinates (row-major).
                    var rest = flat
                    for i in stride(from: r - 1, through: 0, by: -1) { o[i] = rest % outs[i]; rest /= outs[i] }
                    var best = -Float.infinity, bestIndex = -1, sum: Double = 0, count = 1
                    for i in 0..<r {
                        let low = includePad ? -spans[i].begin : 0, high = includePad ? input[i] + spans[i].end : input[i]
                        var n = 0
                        for t in 0..<w.kernel[i] {
                            let pos = o[i] * w.strides[i] - spans[i].begin + t * w.dilations[i]
                            if pos >= low && pos < high { n += 1 }
                        }
                        count *= n
                    }
                    for tap in 0..<taps {
                        rest = tap
                        for i in stride(from: r - 1, through: 0, by: -1) { k[i] = rest % w.kernel[i]; rest /= w.kernel[i] }
                        var offset = 0, column = 0, inside = true
                        for i in 0..<r {
                            let pos = o[i] * w.strides[i] - spans[i].begin + k[i] * w.dilations[i]
                            guard pos >= 0 && pos < input[i] else { inside = false; break }
                            offset += pos * rowStrides[i]
                            column += pos * columnStrides[i]
                        }
                        guard inside else { continue }
                        let v = src[offset]
                        switch kind {
                        case .max: if v > best || bestIndex < 0 { best = v; bestIndex = columnMajor ? column : offset }
                        case .average: sum += Double(v)
                        case .lp(let power):
                            sum += power == 1 ? Double(abs(v)) : power == 2 ? Double(v) * Double(v) : pow(Double(abs(v)), Double(power))
                        }
                    }
                    let dst = p * outCount + flat
                    switch kind {
                    case .max where output == .indices: yi[dst] = Int64(p * inCount + max(bestIndex, 0))
                    case .max: y[dst] = best
                    case .average: y[dst] = Float(sum / Double(max(count, 1)))
                    case .lp(let power): y[dst] = Float(power == 1 ? sum : power == 2 ? sum.squareRoot() : pow(sum, 1 / Double(power)))
                    }
                }
            }
        }
    }

    /// One plane: rows of the window accumulate into the output row, one tap
    /// at a time over the valid columns (vectorized for horizontal stride 1 and 2).
    private func plane(_ x: UnsafePointer<Float>, _ g: ConvGeometry, _ y: UnsafeMutablePointer<Float>) {
        let ow = g.outW, iw = g.inW, s = g.strideW
        let isMax = kind == .max
        let columns = (0..<g.kW).map { g.validColumns(kx: $0) }
        for oy in 0..<g.outH {
            let out = y + oy * ow
            out.update(repeating: isMax ? -.infinity : 0, count: ow)
            for ky in 0..<g.kH {
                let iy = oy * g.strideH - g.padTop + ky * g.dilationH
                guard iy >= 0 && iy < g.inH else { continue }
                let row = x + iy * iw
                for kx in 0..<g.kW {
                    let cr = columns[kx]
                    let offset = kx * g.dilationW - g.padLeft
                    var ox = cr.lowerBound
                    if s == 1 {
                        while ox + 8 <= cr.upperBound {
                            let a = out.load8(ox), b = row.load8(ox + offset)
                            out.store8(isMax ? a.replacing(with: b, where: b .> a) : a + b, ox)
                            ox += 8
                        }
                    } else if s == 2 {
                        // A 16-wide load at 2·ox + offset gives 8 taps in its even lanes (last index 2·ox + offset + 15).
                        let top = iw - 16 - offset
                        let end = min(cr.upperBound - 7, top < 0 ? 0 : top / 2 + 1)
                        while ox < end {
                            let a = out.load8(ox), b = row.load16(2 * ox + offset).evenHalf
                            out.store8(isMax ? a.replacing(with: b, where: b .> a) : a + b, ox)
                            ox += 8
                        }
                    }
                    while ox < cr.upperBound {
                        let v = row[ox * s + offset]
                        out[ox] = isMax ? (v > out[ox] ? v : out[ox]) : out[ox] + v
                        ox += 1
                    }
                }
            }
            if !isMax {
                for ox in 0..<ow { out[ox] /= Float(count(g, oy, ox)) }
            }
        }
    }

    /// The divisor of average pooling at `(oy, ox)`.
    @inline(__always)
    private func count(_ g: ConvGeometry, _ oy: Int, _ ox: Int) -> Int {
        let lowH = countIncludePad ? -g.padTop : 0, highH = countIncludePad ? g.inH + g.padBottom : g.inH
        let lowW = countIncludePad ? -g.padLeft : 0, highW = countIncludePad ? g.inW + g.padRight : g.inW
        var rows = 0, cols = 0
        for ky in 0..<g.kH {
            let iy = oy * g.strideH - g.padTop + ky * g.dilationH
            if iy >= lowH && iy < highH { rows += 1 }
        }
        for kx in 0..<g.kW {
            let ix = ox * g.strideW - g.padLeft + kx * g.dilationW
            if ix >= lowW && ix < highW { cols += 1 }
        }
        return max(rows * cols, 1)
    }
}
