/// ConstantOfShape: a tensor of the shape given by operand 0 (a 1-D int64
/// tensor known before the run; empty for a scalar) filled with `value`, a
/// one-element tensor of any element type (default float32 0).
final class ConstantOfShapeKernel: Kernel {
    let value: Value

    init(value: Value) {
        self.value = value
    }

    func outputType(_ types: [ElementType]) throws -> ElementType {
        guard types[0] == .int64 else { throw AimetError.invalid("the shape input is \(types[0]), expected int64") }
        return value.type
    }

    func outputShape(_ operands: [Operand]) throws -> [Int] {
        guard operands[0].shape.count == 1 else { throw AimetError.invalid("the shape input is not 1-D (shape \(operands[0].shape))") }
        let shape = try operands[0].integers("shape input")
        guard shape.allSatisfy({ $0 >= 0 }) else { throw AimetError.shape("shape \(shape) has a negative dimension") }
        _ = try Shapes.count(shape)
        return shape
    }

    func run(_ args: KernelArgs) throws {
        let count = try Shapes.count(args.outputShape)
        if value.type.slots == 1 {
            args.output.update(repeating: value.slots[0], count: count)
        } else {
            let v = value.integers[0], out = Int64Pointer(args.output)
            for i in 0..<count { out[i] = Int64(v) }
        }
    }
}
