/// Where: `y[i] = condition[i] ? x[i] : other[i]`, the three operands
/// broadcast together (numpy rules); the condition is bool, the two branches
/// share any element type, which the output takes.
final class WhereKernel: Kernel {
    /// The branches' element type.
    let type: ElementType

    init(type: ElementType) {
        self.type = type
    }

    func outputType(_ types: [ElementType]) throws -> ElementType {
        guard types[0] == .bool else { throw AimetError.invalid("the condition is \(types[0]), expected bool") }
        guard types[1] == types[2] else {
            throw AimetError.invalid("the branches' element types differ (\(types[1]) and \(types[2]))")
        }
        guard types[1] == type else { throw AimetError(.internalError, "branch type \(types[1]), compiled for \(type)") }
        return type
    }

    func outputShape(_ shapes: [[Int]]) throws -> [Int] {
        try Shapes.broadcast(Shapes.broadcast(shapes[0], shapes[1]), shapes[2])
    }

    func run(_ args: KernelArgs) throws {
        let s = args.shapes, p = args.inputs
        if type == .int64 {
            Broadcast.map(p[0], s[0], p[1], s[1], p[2], s[2], args.output, args.outputShape, workers: args.workers) {
                (c: Bool, x: Int64, y: Int64) in c ? x : y
            }
        } else {
            // A float32 or bool element is one slot, copied as it is; the condition's slots hold 0 or 1.
            Broadcast.map8(p[0], s[0], p[1], s[1], p[2], s[2], args.output, args.outputShape, workers: args.workers,
                           { c, x, y in y.replacing(with: x, where: c .!= 0) }, { c, x, y in c != 0 ? x : y })
        }
    }
}
