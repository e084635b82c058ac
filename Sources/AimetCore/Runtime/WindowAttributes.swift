/// The sliding-window attributes of a Conv, ConvTranspose, MaxPool or
/// AveragePool node (ONNX `kernel_shape`, `strides`, `dilations`, `pads`,
/// `auto_pad`, `ceil_mode`), for 1 to `maxRank` spatial axes (the convs run 3-D
/// and higher windows through `VolumeGeometry`, the pools up to 3-D), checked
/// once at compile time; `geometry(...)` resolves them for an input size of 1
/// or 2 axes, `volume(...)` and `spans(...)` for any.
struct WindowAttributes: Sendable {
    enum AutoPad: Sendable { case notSet, valid, sameUpper, sameLower }

    let rank: Int
    let kernel: [Int]
    let strides: [Int]
    let dilations: [Int]
    /// `[begin_0, ..., begin_{r-1}, end_0, ..., end_{r-1}]`
    let pads: [Int]
    let autoPad: AutoPad
    let ceilMode: Bool

    /// Reads and checks the attributes; `kernel` comes from `kernel_shape` or the weight.
    init(node: Node, kernel: [Int], rank: Int, maxRank: Int = 2) throws {
        let what = "node '\(node.name)' (\(node.op))"
        guard rank >= 1 && rank <= maxRank else {
            let runs = maxRank == .max ? "windows of 1 or more axes" : "1-D to \(maxRank)-D windows"
            throw AimetError.unsupported("\(what): \(rank)-D windows are not supported (the executor runs \(runs))")
        }
        func read(_ key: String, count: Int, default value: Int) throws -> [Int] {
            guard let values = node.ints(key) else { return [Int](repeating: value, count: count) }
            guard values.count == count else {
                throw AimetError.invalid("\(what): '\(key)' has \(values.count) values, expected \(count) for \(rank) spatial axes")
            }
            return values
        }
        if let shape = node.ints("kernel_shape"), shape != kernel {
            throw AimetError.invalid("\(what): kernel_shape \(shape) does not match the weight's window \(kernel)")
        }
        guard kernel.count == rank, kernel.allSatisfy({ $0 >= 1 }) else {
            throw AimetError.invalid("\(what): invalid kernel shape \(kernel) for \(rank) spatial axes")
        }
        self.rank = rank
        self.kernel = kernel
        strides = try read("strides", count: rank, default: 1)
        dilations = try read("dilations", count: rank, default: 1)
        pads = try read("pads", count: 2 * rank, default: 0)
        guard strides.allSatisfy({ $0 >= 1 }), dilations.allSatisfy({ $0 >= 1 }), pads.allSatisfy({ $0 >= 0 }) else {
            throw AimetError.invalid("\(what): strides \(strides) and dilations \(dilations) must be >= 1, pads \(pads) >= 0")
        }
        // Bounded so that window extents and padded sizes cannot overflow.
        guard (kernel + strides + dilations + pads).allSatisfy({ $0 < 1 << 31 }) else {
            throw AimetError.invalid("\(what): kernel \(kernel), strides \(strides), dilations \(dilations) or pads \(pads) are too large")
        }
        switch node.attributes["auto_pad"] {
        case nil: autoPad = .notSet
        case .string(let s)?:
            switch s {
            case "NOTSET", "": autoPad = .notSet
            case "VALID": autoPad = .valid
            case "SAME_UPPER": autoPad = .sameUpper
            case "SAME_LOWER": autoPad = .sameLower
            default: throw AimetError.invalid("\(what): unknown auto_pad '\(s)'")
            }
        default: throw AimetError.invalid("\(what): auto_pad is not a string")
        }
        ceilMode = node.int("ceil_mode", default: 0) != 0
    }

    /// Effective window extent `(k − 1)·d + 1` along `axis`.
    func extent(_ axis: Int) -> Int { (kernel[axis] - 1) * dilations[axis] + 1 }

    /// The geometry over an input of spatial size `input` (conv and pools):
    /// `out = floor((in + pad_begin + pad_end − extent) / stride) + 1` (ceil with
    /// `ceil_mode`, dropping a last window that would start in the end padding);
    /// SAME: `out = ceil(in / stride)`, padding `max(0, (out − 1)·stride + extent − in)`
    /// split evenly, the odd one at the end (SAME_UPPER) or the beginning (SAME_LOWER);
    /// VALID: no padding.
    func geometry(input: [Int]) throws -> ConvGeometry {
        let axes = try spans(input: input)
        return make(inSize: input, outSize: axes.map(\.out), begins: axes.map(\.begin), ends: axes.map(\.end))
    }

    /// `geometry(input:)` over any number of spatial axes.
    func volume(input: [Int]) throws -> VolumeGeometry {
        let axes = try spans(input: input)
        return VolumeGeometry(input: input, output: axes.map(\.out), kernel: kernel, strides: strides, dilations: dilations,
                              begins: axes.map(\.begin))
    }

    /// Per spatial axis: the output size and the padding before and after (the rule of `geometry`).
    func spans(input: [Int]) throws -> [(out: Int, begin: Int, end: Int)] {
        var spans: [(out: Int, begin: Int, end: Int)] = []
        for axis in 0..<rank {
            let n = input[axis], s = strides[axis], e = extent(axis)
            var begin = 0, end = 0, out: Int
            switch autoPad {
            case .notSet, .valid:
                if autoPad == .notSet { begin = pads[axis]; end = pads[rank + axis] }
                let span = n + begin + end - e
                guard span >= 0 else {
                    throw AimetError.shape("spatial size \(n) (padded \(n + begin + end)) is smaller than the window \(e)")
                }
                out = ceilMode ? (span + s - 1) / s + 1 : span / s + 1
                if ceilMode && (out - 1) * s >= n + begin { out -= 1 }
            case .sameUpper, .sameLower:
                out = (n + s - 1) / s
                let total = max(0, (out - 1) * s + e - n)
                let small = total / 2
                begin = autoPad == .sameUpper ? small : total - small
                end = total - begin
            }
            guard out >= 1 else { throw AimetError.shape("spatial size \(n) gives an empty output") }
            spans.append((out, begin, end))
        }
        return spans
    }

    /// The geometry of a transposed conv over an input of spatial size `input`
    /// (the returned geometry's `in` is the conv's output, `out` its input):
    /// `out = stride·(in − 1) + output_padding + extent − pad_begin − pad_end`;
    /// with `output_shape` the padding follows from it,
    /// `total = stride·(in − 1) + output_padding + extent − output_shape`, split as
    /// `begin = ⌊total/2⌋` (SAME_UPPER) or `begin = total − ⌊total/2⌋` (otherwise);
    /// SAME without `output_shape`: `output_shape = in·stride`. A negative total
    /// (an `output_shape` beyond the largest output) is negative padding: output
    /// positions no window reaches, which hold the bias alone.
    func transposedGeometry(input: [Int], outputPadding: [Int], outputShape: [Int]?) throws -> ConvGeometry {
        let (outs, begins, ends) = try transposedAxes(input: input, outputPadding: outputPadding, outputShape: outputShape)
        // Swap: the geometry's input is the big map (the transposed conv's output).
        return make(inSize: outs, outSize: input, begins: begins, ends: ends)
    }

    /// `transposedGeometry` over any number of spatial axes (the same swap of roles).
    func transposedVolume(input: [Int], outputPadding: [Int], outputShape: [Int]?) throws -> VolumeGeometry {
        let (outs, begins, _) = try transposedAxes(input: input, outputPadding: outputPadding, outputShape: outputShape)
        return VolumeGeometry(input: outs, output: input, kernel: kernel, strides: strides, dilations: dilations, begins: begins)
    }

    /// Per spatial axis of a transposed conv: its output size, padding at the beginning and at the end.
    private func transposedAxes(input: [Int], outputPadding: [Int], outputShape: [Int]?) throws -> (outs: [Int], begins: [Int], ends: [Int]) {
        var outs = [Int](), begins = [Int](), ends = [Int]()
        for axis in 0..<rank {
            let n = input[axis], s = strides[axis], e = extent(axis), op = outputPadding[axis]
            let full = s * (n - 1) + op + e
            var begin = pads[axis], end = pads[rank + axis]
            var target = outputShape?[axis]
            if target == nil && (autoPad == .sameUpper || autoPad == .sameLower) { target = n * s }
            if autoPad == .valid && target == nil { begin = 0; end = 0 }
            if let target {
                let total = full - target
                // Floor division: a negative total splits into a non-positive begin and end.
                let half = total >= 0 ? total / 2 : -((1 - total) / 2)
                begin = autoPad == .sameUpper ? half : total - half
                end = total - begin
            }
            let out = full - begin - end
            guard out >= 1 else { throw AimetError.shape("input size \(n) with pads \(begin), \(end) gives an empty output") }
            outs.append(out); begins.append(begin); ends.append(end)
        }
        return (outs, begins, ends)
    }

    private func make(inSize: [Int], outSize: [Int], begins: [Int], ends: [Int]) -> ConvGeometry {
        if rank == 1 {
            return ConvGeometry(inH: 1, inW: inSize[0], outH: 1, outW: outSize[0], kH: 1, kW: kernel[0],
                                strideH: 1, strideW: strides[0], dilationH: 1, dilationW: dilations[0],
                                padTop: 0, padLeft: begins[0], padBottom: 0, padRight: ends[0])
        }
        return ConvGeometry(inH: inSize[0], inW: inSize[1], outH: outSize[0], outW: outSize[1], kH: kernel[0], kW: kernel[1],
                            strideH: strides[0], strideW: strides[1], dilationH: dilations[0], dilationW: dilations[1],
                            padTop: begins[0], padLeft: begins[1], padBottom: ends[0], padRight: ends[1])
    }
}
