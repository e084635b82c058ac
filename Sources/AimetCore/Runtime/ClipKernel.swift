/// Clip, `y = min(max(x, lo), hi)`, with the bounds read at run time: the
/// `min` / `max` inputs (opset 11+) computed by the graph, or integer data
/// (opset 12+: int64 input and bounds). An absent bound is unbounded; when
/// `lo > hi` every output is `hi`, as ONNX says (`Min(max, Max(x, min))`).
/// Float32 clips with constant bounds compile to `ActivationKernel(.clip)`.
final class ClipKernel: Kernel {
    let type: ElementType
    /// Operand indices of the bounds, nil when absent.
    let minOperand: Int?
    let maxOperand: Int?

    init(type: ElementType, minOperand: Int?, maxOperand: Int?) {
        self.type = type
        self.minOperand = minOperand
        self.maxOperand = maxOperand
    }

    func outputType(_ types: [ElementType]) throws -> ElementType {
        guard type == .float32 || type == .int64 else {
            throw AimetError.unsupported("Clip computes on float32 and int64, the input is \(type)")
        }
        for (k, t) in types.enumerated() where t != type {
            throw AimetError.invalid("operand \(k) is \(t), the input is \(type) (Clip's bounds have the input's type)")
        }
        return type
    }

    func outputShape(_ shapes: [[Int]]) throws -> [Int] {
        for (k, role) in [(minOperand, "min"), (maxOperand, "max")] {
            guard let k else { continue }
            let count = try Shapes.count(shapes[k])
            guard count == 1 else { throw AimetError.shape("the \(role) bound has shape \(shapes[k]); Clip's bounds are scalars") }
        }
        return shapes[0]
    }

    func run(_ args: KernelArgs) throws {
        let count = args.outputShape.reduce(1, *)
        let x = args.inputs[0], y = args.output
        let workers = count >= 1 << 15 ? args.workers : 1
        if type == .int64 {
            let lo = minOperand.map { Int64Pointer(args.inputs[$0])[0] } ?? .min
            let hi = maxOperand.map { Int64Pointer(args.inputs[$0])[0] } ?? .max
            let xi = Int64Pointer(x), yi = Int64Pointer(y)
            Parallel.forEach(count, workers: workers) { range, _ in
                for i in range { yi[i] = Swift.min(Swift.max(xi[i], lo), hi) }
            }
            return
        }
        let lo = minOperand.map { args.inputs[$0][0] } ?? -.greatestFiniteMagnitude
        let hi = maxOperand.map { args.inputs[$0][0] } ?? .greatestFiniteMagnitude
        let activation = Activation.clip(lo, hi)
        Parallel.forEach(count, workers: workers) { range, _ in
            activation.apply(x + range.lowerBound, to: y + range.lowerBound, range.count)
        }
    }
}
