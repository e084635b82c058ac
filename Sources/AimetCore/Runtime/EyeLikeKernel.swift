/// EyeLike: a matrix of operand 0's shape (2-D; only the shape is read)
/// with ones on diagonal k (`column − row = k`) and zeros elsewhere, of the
/// `dtype` attribute's type (default: the input's).
final class EyeLikeKernel: Kernel {
    let k: Int
    let type: ElementType

    init(k: Int, type: ElementType) {
        self.k = k
        self.type = type
    }

    var shapeOnlyOperands: Set<Int> { [0] }

    func outputType(_ types: [ElementType]) throws -> ElementType { type }

    func outputShape(_ shapes: [[Int]]) throws -> [Int] {
        guard shapes[0].count == 2 else { throw AimetError.shape("the input \(shapes[0]) is not 2-D") }
        return shapes[0]
    }

    /// Row i's one sits at column i + k: rows are not independent items.
    func isBatchSeparable(_ shapes: [[Int]]) -> Bool { false }

    func run(_ args: KernelArgs) throws {
        let rows = args.outputShape[0], cols = args.outputShape[1]
        args.output.update(repeating: 0, count: rows * cols * type.slots)
        for i in 0..<rows {
            let (j, overflow) = i.addingReportingOverflow(k)
            guard !overflow, j >= 0, j < cols else { continue }
            if type == .int64 { Int64Pointer(args.output)[i * cols + j] = 1 } else { args.output[i * cols + j] = 1 }
        }
    }
}
