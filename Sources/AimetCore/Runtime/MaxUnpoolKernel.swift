/// MaxUnpool: scatters `x [N, C, D1, ...]` into zeros at the flat positions
/// `indices` (MaxPool's Indices, int64, same shape as x): `y.flat[indices[i]] = x.flat[i]`
/// (a repeated index keeps the last value). The default output shape is, per
/// spatial axis, `(D − 1)·stride + kernel − pad_begin − pad_end`; the indices
/// are positions in it. The `output_shape` input (known before the run) may
/// only repeat that shape: for a larger one the ONNX rule keeps each index's
/// coordinates while onnxruntime keeps its flat position, so it is refused.
/// An index outside the output is an error.
final class MaxUnpoolKernel: Kernel {
    let kernel: [Int]
    let strides: [Int]
    let pads: [Int]
    /// Whether operand 2 is `output_shape`.
    let shapeOperand: Bool
    /// "node 'name' (MaxUnpool)", for the error of an index out of range (found while running).
    let what: String

    init(node: Node, shapeOperand: Bool) throws {
        what = "node '\(node.name)' (\(node.op))"
        guard let kernel = node.ints("kernel_shape"), !kernel.isEmpty, kernel.allSatisfy({ $0 >= 1 }) else {
            throw AimetError.invalid("\(what) has no valid kernel_shape")
        }
        let r = kernel.count
        strides = node.ints("strides") ?? [Int](repeating: 1, count: r)
        pads = node.ints("pads") ?? [Int](repeating: 0, count: 2 * r)
        guard strides.count == r, pads.count == 2 * r, (kernel + strides + pads).allSatisfy({ $0 >= 0 && $0 < 1 << 31 }),
              strides.allSatisfy({ $0 >= 1 }) else {
            throw AimetError.invalid("\(what): strides \(strides) and pads \(pads) do not fit kernel_shape \(kernel)")
        }
        self.kernel = kernel
        self.shapeOperand = shapeOperand
    }

    func outputType(_ types: [ElementType]) throws -> ElementType {
        guard types[0] == .float32 else { throw AimetError.unsupported("operand 0 is \(types[0]); this op computes on float32 only") }
        guard types[1] == .int64, !shapeOperand || types[2] == .int64 else { throw AimetError.invalid("the indices and output_shape must be int64") }
        return .float32
    }

    func outputShape(_ operands: [Operand]) throws -> [Int] {
        let x = operands[0].shape
        guard x.count == kernel.count + 2 else { throw AimetError.shape("input of shape \(x) has rank \(x.count), expected \(kernel.count + 2)") }
        guard operands[1].shape == x else { throw AimetError.shape("indices of shape \(operands[1].shape) differ from the input's \(x)") }
        let natural = try defaultShape(x)
        if shapeOperand {
            let shape = try operands[2].integers("output_shape")
            guard shape.count == x.count, shape[0] == x[0], shape[1] == x[1], shape.allSatisfy({ $0 >= 0 }) else {
                throw AimetError.shape("output_shape \(shape) does not fit the input \(x)")
            }
            guard shape == natural else {
                throw AimetError.unsupported("output_shape \(shape) differs from the unpooled shape \(natural) (onnxruntime and the ONNX rule place the values differently)")
            }
        }
        return natural
    }

    /// The output shape without `output_shape`.
    private func defaultShape(_ x: [Int]) throws -> [Int] {
        let r = kernel.count
        var out = Array(x[..<2])
        for i in 0..<r {
            let (spread, overflow) = (x[i + 2] - 1).multipliedReportingOverflow(by: strides[i])
            guard !overflow, spread < 1 << 40 else { throw AimetError.shape("input of shape \(x) with strides \(strides) is too large") }
            let d = spread + kernel[i] - pads[i] - pads[r + i]
            guard d >= 1 else { throw AimetError.shape("input of shape \(x) gives an empty output") }
            out.append(d)
        }
        return out
    }

    /// Indices address the whole output, batch included.
    func isBatchSeparable(_ shapes: [[Int]]) -> Bool { false }

    func run(_ args: KernelArgs) throws {
        let total = args.outputShape.reduce(1, *), count = args.shapes[0].reduce(1, *)
        let x = args.inputs[0], indices = Int64Pointer(args.inputs[1]), y = args.output
        y.update(repeating: 0, count: total)
        for i in 0..<count {
            let k = indices[i]
            guard k >= 0 && k < total else {
                throw AimetError.invalid("\(what): index \(k) at \(i) is outside the output of shape \(args.outputShape)")
            }
            y[Int(k)] = x[i]
        }
    }
}
