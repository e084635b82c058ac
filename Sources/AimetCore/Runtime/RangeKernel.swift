/// Range(start, limit, delta): scalars of one type (float32 or int64),
/// known before the run; the output holds `start + i · delta` for
/// `i < max(⌈(limit − start) / delta⌉, 0)`.
final class RangeKernel: Kernel {
    let type: ElementType

    init(type: ElementType) {
        self.type = type
    }

    func outputType(_ types: [ElementType]) throws -> ElementType {
        guard type != .bool, types.allSatisfy({ $0 == type }) else {
            throw AimetError.invalid("start, limit and delta are \(types); expected three float32 or three int64 scalars")
        }
        return type
    }

    func outputShape(_ operands: [Operand]) throws -> [Int] {
        let roles = ["start", "limit", "delta"]
        var values: [Value] = []
        for (k, operand) in operands.enumerated() {
            guard let value = operand.value else {
                throw AimetError.unsupported("the \(roles[k]) is computed from the input data at run time; the executor needs it known from the input shapes (a constant, or computed from Shape)")
            }
            guard value.count == 1 else { throw AimetError.invalid("the \(roles[k]) has shape \(value.shape), expected a scalar") }
            values.append(value)
        }
        let n: Int
        if type == .int64 {
            let (start, limit, delta) = (values[0].integers[0], values[1].integers[0], values[2].integers[0])
            guard delta != 0 else { throw AimetError.invalid("Range with delta 0") }
            let span = limit.subtractingReportingOverflow(start)
            guard !span.overflow else { throw AimetError.shape("Range(\(start), \(limit), \(delta)) is too long") }
            // ⌈span / delta⌉ for a span of delta's sign, else 0.
            let d = span.partialValue
            n = d != 0 && (d > 0) == (delta > 0) ? (d - 1 * delta.signum()) / delta + 1 : 0
        } else {
            let (start, limit, delta) = (values[0].slots[0], values[1].slots[0], values[2].slots[0])
            guard delta != 0 else { throw AimetError.invalid("Range with delta 0") }
            let steps = ((limit - start) / delta).rounded(.up)
            guard steps.isFinite || steps < 0, steps < Float(1 << 40) else {
                throw AimetError.shape("Range(\(start), \(limit), \(delta)) is too long")
            }
            n = steps > 0 ? Int(steps) : 0
        }
        _ = try Shapes.count([n])
        return [n]
    }

    func run(_ args: KernelArgs) throws {
        let n = args.outputShape[0]
        if type == .int64 {
            let start = Int64Pointer(args.inputs[0])[0], delta = Int64Pointer(args.inputs[2])[0]
            let out = Int64Pointer(args.output)
            for i in 0..<n { out[i] = start &+ Int64(i) &* delta }
        } else {
            let start = args.inputs[0][0], delta = args.inputs[2][0]
            for i in 0..<n { args.output[i] = start + Float(i) * delta }
        }
    }
}
