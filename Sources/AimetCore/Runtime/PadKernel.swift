/// ONNX Pad: per axis `d`, `pads` gives `begin[d]` elements added before and
/// `end[d]` after (`pads = [begin…, end…]`, over `axes` when given, else over
/// every axis); a negative pad removes that many elements (a crop, done
/// first). The output axis has `begin + n + end` elements; output index `o`
/// reads input `lo + j` with `j = o − max(begin, 0)`, `lo = max(−begin, 0)`,
/// when `0 ≤ j < len` (`len` = the kept length), else by mode:
///
/// - constant: the constant value (`value` attribute before opset 11, else
///   the optional `constant_value` input; 0 by default);
/// - edge: `clamp(j, 0, len − 1)`;
/// - reflect: `j` mirrored at both ends without repeating the edge element
///   (period `2·(len − 1)`; a pad wider than `len − 1` is refused);
/// - wrap: `j mod len`.
///
/// CenterCropPad is the same kernel with the pads derived from a target
/// `shape` (over the `axes` attribute, else every axis): an axis `d` elements
/// longer than its target is cropped by `⌊d/2⌋` before and the rest after; one
/// `d` shorter is padded with zeros likewise (the odd element after).
///
/// Any element type (an int64 element moves as its two slots). Rows of the
/// last axis are copied whole between their padded ends.
final class PadKernel: Kernel {
    enum Mode: String, Sendable {
        case constant, reflect, edge, wrap
    }
    let mode: Mode
    let slots: Int
    let type: ElementType
    /// The constant_value's type: the data's, or int64 for bool data (a bool initializer is read as integers).
    let valueType: ElementType
    /// Pads from the attribute (opset < 11), else from operand `padsOperand`.
    let attributePads: [Int]?
    let attributeValue: Float
    let padsOperand: Int?
    let valueOperand: Int?
    let axesOperand: Int?
    /// CenterCropPad: operand `padsOperand` is the target shape, over these axes (nil: all).
    let centered: Bool
    let centerAxes: [Int]?
    /// The per-axis pads when known at compile time (for `isBatchSeparable`).
    let knownPads: [Int]?
    let knownAxes: [Int]?

    init(mode: Mode, type: ElementType, valueType: ElementType, attributePads: [Int]?, attributeValue: Float,
         padsOperand: Int?, valueOperand: Int?, axesOperand: Int?, knownPads: [Int]?, knownAxes: [Int]?,
         centered: Bool = false, centerAxes: [Int]? = nil) {
        self.centered = centered
        self.centerAxes = centerAxes
        self.mode = mode
        self.type = type
        self.valueType = valueType
        slots = type.slots
        self.attributePads = attributePads
        self.attributeValue = attributeValue
        self.padsOperand = padsOperand
        self.valueOperand = valueOperand
        self.axesOperand = axesOperand
        self.knownPads = knownPads
        self.knownAxes = knownAxes
    }

    func outputType(_ types: [ElementType]) throws -> ElementType {
        if let k = padsOperand, types[k] != .int64 { throw AimetError.invalid("the pads input is \(types[k]), expected int64") }
        if let k = valueOperand, types[k] != types[0] && !(types[0] == .bool && types[k] == .int64) {
            throw AimetError.invalid("the constant_value input is \(types[k]); the data is \(types[0])")
        }
        if let k = axesOperand, types[k] != .int64 { throw AimetError.invalid("the axes input is \(types[k]), expected an integer tensor") }
        return types[0]
    }

    /// `(begin, end)` for every axis of the input `x`.
    func perAxis(_ x: [Int], pads: [Int], axes: [Int]?) throws -> (begin: [Int], end: [Int]) {
        let rank = x.count
        let list = try (centered ? centerAxes : axes).map { try $0.map { try Shapes.axis($0, rank: rank) } } ?? Array(0..<rank)
        guard Set(list).count == list.count else { throw AimetError.invalid("the axes \(axes ?? []) repeat an axis") }
        if centered {
            guard pads.count == list.count else { throw AimetError.shape("\(pads.count) target sizes for \(list.count) axes") }
            var begin = [Int](repeating: 0, count: rank), end = begin
            for (i, a) in list.enumerated() {
                guard pads[i] >= 0, pads[i] < 1 << 40 else { throw AimetError.invalid("target size \(pads[i]) is out of range") }
                let d = pads[i] - x[a], half = abs(d) / 2
                (begin[a], end[a]) = d >= 0 ? (half, d - half) : (-half, d + half)
            }
            return (begin, end)
        }
        guard pads.count == 2 * list.count else {
            throw AimetError.shape("\(pads.count) pads for \(list.count) axes (expected \(2 * list.count)) on an input of rank \(rank)")
        }
        var begin = [Int](repeating: 0, count: rank), end = begin
        for (i, a) in list.enumerated() {
            begin[a] = pads[i]
            end[a] = pads[list.count + i]
        }
        return (begin, end)
    }

    func outputShape(_ operands: [Operand]) throws -> [Int] {
        let x = operands[0].shape
        let pads = try attributePads ?? padsOperand.map { try operands[$0].integers("pads") } ?? []
        let axes = try axesOperand.map { try operands[$0].integers("axes") }
        let (begin, end) = try perAxis(x, pads: pads, axes: axes)
        return try Self.geometry(x, begin, end, mode).map(\.out)
    }

    /// Per axis: the output size, the kept input range `lo..<lo+len`, and the leading pad.
    static func geometry(_ x: [Int], _ begin: [Int], _ end: [Int], _ mode: Mode) throws -> [(out: Int, lo: Int, len: Int, lead: Int)] {
        try x.indices.map { d in
            let n = x[d], b = begin[d], e = end[d]
            guard abs(b) < 1 << 40, abs(e) < 1 << 40 else { throw AimetError.shape("pads \(b), \(e) on axis \(d) are out of range") }
            let lo = max(-b, 0), len = n - lo - max(-e, 0)
            guard len >= 0 else { throw AimetError.shape("pads \(b), \(e) crop more than the \(n) elements of axis \(d)") }
            let lead = max(b, 0), trail = max(e, 0)
            if mode != .constant && (lead > 0 || trail > 0) {
                guard len > 0 else { throw AimetError.shape("\(mode.rawValue) padding of axis \(d), which keeps no elements") }
                if mode == .reflect && max(lead, trail) > len - 1 {
                    throw AimetError.unsupported("reflect padding by \(max(lead, trail)) on axis \(d) of \(len) elements is not supported (pads wider than the axis minus one)")
                }
            }
            return (lead + len + trail, lo, len, lead)
        }
    }

    /// Where output index `o` reads in the kept range, or −1 for the constant.
    static func source(_ o: Int, lo: Int, len: Int, lead: Int, _ mode: Mode) -> Int {
        let j = o - lead
        if j >= 0 && j < len { return lo + j }
        switch mode {
        case .constant: return -1
        case .edge: return lo + min(max(j, 0), len - 1)
        case .wrap: return lo + ((j % len) + len) % len
        case .reflect:
            guard len > 1 else { return lo }
            let period = 2 * (len - 1)
            let m = ((j % period) + period) % period
            return lo + (m < len ? m : period - m)
        }
    }

    /// Separable when axis 0 is known not to be padded or cropped (CenterCropPad: not among its axes).
    func isBatchSeparable(_ shapes: [[Int]]) -> Bool {
        let rank = shapes[0].count
        if centered {
            return rank > 0 && centerAxes.map { $0.allSatisfy { $0 != 0 && $0 != -rank } } ?? false
        }
        guard rank > 0, let pads = attributePads ?? knownPads, axesOperand == nil || knownAxes != nil,
              let (begin, end) = try? perAxis(shapes[0], pads: pads, axes: knownAxes) else { return false }
        return begin[0] == 0 && end[0] == 0
    }

    func run(_ args: KernelArgs) throws {
        let x = args.shapes[0]
        func integers(_ k: Int) -> [Int] {
            let p = Int64Pointer(args.inputs[k])
            return (0..<args.shapes[k].reduce(1, *)).map { Int(p[$0]) }
        }
        let pads = attributePads ?? padsOperand.map(integers) ?? []
        let (begin, end) = try perAxis(x, pads: pads, axes: axesOperand.map(integers))
        let geometry = try Self.geometry(x, begin, end, mode)
        // The constant's slots (empty constant_value: 0).
        var fill = [Float](repeating: 0, count: slots)
        if let k = valueOperand, args.shapes[k].reduce(1, *) > 0 {
            if type == .bool && valueType == .int64 {
                fill[0] = Int64Pointer(args.inputs[k])[0] != 0 ? 1 : 0
            } else {
                for s in 0..<slots { fill[s] = args.inputs[k][s] }
            }
        } else if valueOperand == nil && type == .float32 {
            fill[0] = attributeValue
        }
        let out = geometry.map(\.out)
        let total = out.reduce(1, *)
        guard total > 0 else { return }
        let e = slots
        guard !x.isEmpty else {
            args.output.update(from: args.inputs[0], count: e)
            return
        }
        let rank = x.count
        let maps = (0..<rank).map { d in
            (0..<out[d]).map { Self.source($0, lo: geometry[d].lo, len: geometry[d].len, lead: geometry[d].lead, mode) }
        }
        var inStride = [Int](repeating: e, count: rank)
        for d in stride(from: rank - 2, through: 0, by: -1) { inStride[d] = inStride[d + 1] * x[d + 1] }
        let last = geometry[rank - 1], width = out[rank - 1]
        let rowSlots = width * e
        let rows = total / width
        let src = args.inputs[0], dst = args.output
        Parallel.forEach(rows, workers: total >= 1 << 15 ? args.workers : 1) { range, _ in
            fill.withUnsafeBufferPointer { fillBuffer in
                let value = fillBuffer.baseAddress ?? UnsafePointer(dst)
                let lastMap = maps[rank - 1]
                for row in range {
                    let y = dst + row * rowSlots
                    var rest = row, offset = 0, constant = false
                    for d in stride(from: rank - 2, through: 0, by: -1) {
                        let i = maps[d][rest % out[d]]
                        rest /= out[d]
                        if i < 0 { constant = true; break }
                        offset += i * inStride[d]
                    }
                    if constant {
                        if e == 1 {
                            y.update(repeating: value[0], count: width)
                        } else {
                            for o in 0..<width { (y + o * e).update(from: value, count: e) }
                        }
                        continue
                    }
                    let xrow = src + offset
                    for o in 0..<last.lead {
                        let i = lastMap[o]
                        if i < 0 { (y + o * e).update(from: value, count: e) } else { (y + o * e).update(from: xrow + i * e, count: e) }
                    }
                    (y + last.lead * e).update(from: xrow + last.lo * e, count: last.len * e)
                    for o in (last.lead + last.len)..<width {
                        let i = lastMap[o]
                        if i < 0 { (y + o * e).update(from: value, count: e) } else { (y + o * e).update(from: xrow + i * e, count: e) }
                    }
                }
            }
        }
    }
}
