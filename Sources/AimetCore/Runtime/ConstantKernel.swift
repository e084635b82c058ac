/// A Constant node (and any value known at compile time): no operands, the
/// value itself. Compilation folds it away; it runs only if a plan keeps it.
final class ConstantKernel: Kernel {
    let value: Value

    init(_ value: Value) {
        self.value = value
    }

    func outputType(_ types: [ElementType]) throws -> ElementType { value.type }

    func outputShape(_ shapes: [[Int]]) throws -> [Int] { value.shape }

    func run(_ args: KernelArgs) throws {
        value.slots.withUnsafeBufferPointer { if let base = $0.baseAddress { args.output.update(from: base, count: $0.count) } }
    }
}

/// ONNX Reshape with the target shape as input 1 (an int64 tensor known
/// before the run: a constant, or computed from shapes): the same data under
/// the new shape (see `ViewKernel` for the rule). Any element type.
final class ReshapeKernel: Kernel {
    let allowZero: Bool

    init(allowZero: Bool) {
        self.allowZero = allowZero
    }

    var isView: Bool { true }

    func outputType(_ types: [ElementType]) throws -> ElementType {
        guard types[1] == .int64 else { throw AimetError.invalid("the shape input is \(types[1]), expected int64") }
        return types[0]
    }

    func outputShape(_ operands: [Operand]) throws -> [Int] {
        let target = try operands[1].integers("target shape")
        guard operands[1].shape.count == 1 else { throw AimetError.invalid("the shape input is not 1-D (shape \(operands[1].shape))") }
        return try ViewKernel(.reshape(shape: target, allowZero: allowZero)).outputShape([operands[0].shape])
    }

    func run(_ args: KernelArgs) throws {
        args.output.update(from: args.inputs[0], count: args.outputShape.reduce(1, *))
    }
}
