/// Expand: the data broadcast (numpy rules, both ways) with operand 1, an
/// int64 shape known before the run: the output shape is
/// `broadcast(data.shape, shape)`, a dimension of 1 in either side taking the
/// other's size. Any element type; the copy reads the data with stride 0 on
/// its broadcast axes (`StridedCopy`).
final class ExpandKernel: Kernel {
    let width: Int

    init(type: ElementType) {
        self.width = type.slots
    }

    func outputType(_ types: [ElementType]) throws -> ElementType {
        guard types[1] == .int64 else { throw AimetError.invalid("the shape input is \(types[1]), expected int64") }
        return types[0]
    }

    func outputShape(_ operands: [Operand]) throws -> [Int] {
        guard operands[1].shape.count == 1 else { throw AimetError.invalid("the shape input is not 1-D (shape \(operands[1].shape))") }
        let shape = try operands[1].integers("target shape")
        guard shape.allSatisfy({ $0 >= 0 }) else { throw AimetError.shape("target shape \(shape) has a negative dimension") }
        return try Shapes.broadcast(operands[0].shape, shape)
    }

    func run(_ args: KernelArgs) throws {
        let out = args.outputShape, x = args.shapes[0]
        let shift = out.count - x.count
        let inner = StridedCopy.strides(x)
        let strides = (0..<out.count).map { k in k < shift || x[k - shift] == 1 ? 0 : inner[k - shift] }
        StridedCopy.run(args.inputs[0], offset: 0, strides: strides, into: args.output, shape: out, width: width, workers: args.workers)
    }
}
