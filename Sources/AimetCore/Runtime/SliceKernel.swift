/// Slice: for each listed axis (all axes `0..<starts.count` when none are
/// listed; negative axes count from the rank), the elements
/// `start, start + step, …` stopping before `end`. Negative starts and ends
/// count from the end of the axis; both are then clamped to `[0, d]` for a
/// positive step and to `[−1, d − 1]` (start: `[0, d − 1]`) for a negative one,
/// so `INT64_MAX` means "to the end". The count is `⌈(end − start) / step⌉`
/// (at least 0). Any element type.
///
/// The parameters are attributes (opset < 10: starts, ends, axes; step 1),
/// constants, or operands 1–4 (starts, ends, optional axes and steps: int64
/// tensors known before the run), read again from their data by `run`. The copy is a
/// strided view of the data (`StridedCopy`).
final class SliceKernel: Kernel {
    typealias Parameters = (starts: [Int], ends: [Int], axes: [Int]?, steps: [Int]?)
    /// The parameters when known at compile time (attributes, or constant
    /// operands); nil when they are operands 1–4.
    let parameters: Parameters?
    /// Operand positions of the axes and steps (operand form), nil when absent.
    let axesOperand: Int?, stepsOperand: Int?
    let width: Int

    init(parameters: Parameters?, axesOperand: Int? = nil, stepsOperand: Int? = nil, type: ElementType) {
        self.parameters = parameters
        self.axesOperand = axesOperand
        self.stepsOperand = stepsOperand
        self.width = type.slots
    }

    /// Per data axis: the first element, the step and the count taken.
    struct Window {
        var start: [Int], step: [Int], count: [Int]
    }

    /// Resolves the parameters against the data's shape.
    static func window(_ x: [Int], starts: [Int], ends: [Int], axes: [Int]?, steps: [Int]?) throws -> Window {
        let axes = axes ?? Array(0..<starts.count)
        let steps = steps ?? [Int](repeating: 1, count: starts.count)
        guard ends.count == starts.count, axes.count == starts.count, steps.count == starts.count else {
            throw AimetError.invalid("starts, ends, axes and steps have different lengths (\(starts.count), \(ends.count), \(axes.count), \(steps.count))")
        }
        var w = Window(start: [Int](repeating: 0, count: x.count), step: [Int](repeating: 1, count: x.count), count: x)
        var seen = Set<Int>()
        for i in 0..<starts.count {
            let a = try Shapes.axis(axes[i], rank: x.count)
            guard seen.insert(a).inserted else { throw AimetError.invalid("slice axes \(axes) repeat axis \(a)") }
            let d = x[a], step = steps[i]
            guard step != 0 else { throw AimetError.invalid("slice step 0 on axis \(a)") }
            var start = starts[i] < 0 ? starts[i] &+ d : starts[i]
            var end = ends[i] < 0 ? ends[i] &+ d : ends[i]
            if step > 0 {
                start = min(max(start, 0), d)
                end = min(max(end, 0), d)
                w.count[a] = end > start ? (end - start - 1) / step + 1 : 0
            } else {
                start = min(max(start, 0), d - 1)
                end = min(max(end, -1), d - 1)
                w.count[a] = start > end ? (start - end - 1) / -step + 1 : 0
            }
            w.start[a] = start
            w.step[a] = step
        }
        return w
    }

    private func window(_ x: [Int], _ operand: (Int) throws -> [Int]) throws -> Window {
        if let p = parameters { return try SliceKernel.window(x, starts: p.starts, ends: p.ends, axes: p.axes, steps: p.steps) }
        return try SliceKernel.window(x, starts: operand(1), ends: operand(2),
                                      axes: axesOperand.map(operand), steps: stepsOperand.map(operand))
    }

    func outputType(_ types: [ElementType]) throws -> ElementType {
        if let k = types.indices.dropFirst().first(where: { types[$0] != .int64 }) {
            throw AimetError.invalid("slice parameter operand \(k) is \(types[k]), expected int64")
        }
        return types[0]
    }

    func outputShape(_ operands: [Operand]) throws -> [Int] {
        func role(_ k: Int) -> String { k == 1 ? "starts" : k == 2 ? "ends" : k == axesOperand ? "axes" : "steps" }
        return try window(operands[0].shape) { try operands[$0].integers("slice \(role($0))") }.count
    }

    /// Separable when axis 0 is taken whole from its start with step 1: then
    /// any chunk of the batch is taken whole too (its end is past the chunk).
    func isBatchSeparable(_ shapes: [[Int]]) -> Bool {
        guard let p = parameters, let x = shapes.first, !x.isEmpty,
              let w = try? SliceKernel.window(x, starts: p.starts, ends: p.ends, axes: p.axes, steps: p.steps) else { return false }
        return w.start[0] == 0 && w.step[0] == 1 && w.count[0] == x[0]
    }

    func run(_ args: KernelArgs) throws {
        let x = args.shapes[0]
        let w = try window(x) { k in
            let p = Int64Pointer(args.inputs[k])
            return (0..<Shapes.product(args.shapes[k], 0..<args.shapes[k].count)).map { Int(p[$0]) }
        }
        let strides = StridedCopy.strides(x)
        let offset = zip(w.start, strides).reduce(0) { $0 + $1.0 * $1.1 }
        StridedCopy.run(args.inputs[0], offset: offset, strides: zip(w.step, strides).map { $0 * $1 }, into: args.output,
                        shape: w.count, width: width, workers: args.workers)
    }
}
