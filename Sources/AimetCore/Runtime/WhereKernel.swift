/// Where: `y[i] = condition[i] ? x[i] : other[i]`, the three operands
/// broadcast together (numpy rules); the condition is bool, the two branches
/// share any element type, which the output takes. A condition stored in the
/// model (an initializer or Constant node) reaches the executor as int64 0 / 1
/// (the importer reads bool tensors as integers) and is read as `c != 0`.
final class WhereKernel: Kernel {
    /// The branches' element type.
    let type: ElementType
    /// The condition's element type (bool, or int64 for a stored bool tensor).
    let condition: ElementType

    init(type: ElementType, condition: ElementType) {
        self.type = type
        self.condition = condition
    }

    func outputType(_ types: [ElementType]) throws -> ElementType {
        guard types[0] != .float32 else { throw AimetError.invalid("the condition is \(types[0]), expected bool") }
        guard types[0] == condition else { throw AimetError(.internalError, "condition type \(types[0]), compiled for \(condition)") }
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
        if condition == .int64 {
            // (Stored bool conditions are small constants; this path need not be fast.)
            if type == .int64 {
                Broadcast.map(p[0], s[0], p[1], s[1], p[2], s[2], args.output, args.outputShape, workers: args.workers) {
                    (c: Int64, x: Int64, y: Int64) in c != 0 ? x : y
                }
            } else {
                Broadcast.map(p[0], s[0], p[1], s[1], p[2], s[2], args.output, args.outputShape, workers: args.workers) {
                    (c: Int64, x: Float, y: Float) in c != 0 ? x : y
                }
            }
        } else if type == .int64 {
            Broadcast.map(p[0], s[0], p[1], s[1], p[2], s[2], args.output, args.outputShape, workers: args.workers) {
                (c: Bool, x: Int64, y: Int64) in c ? x : y
            }
        } else {
            // A float32 or bool element is one slot, copied as it is.
            Broadcast.map(p[0], s[0], p[1], s[1], p[2], s[2], args.output, args.outputShape, workers: args.workers) {
                (c: Bool, x: Float, y: Float) in c ? x : y
            }
        }
    }
}
