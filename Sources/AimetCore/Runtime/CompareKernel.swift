/// Comparisons and logic with numpy broadcasting, giving bool: Equal (float32,
/// int64 or bool operands), Less, LessOrEqual, Greater, GreaterOrEqual (float32
/// or int64; a NaN compares false, unequal to everything), And, Or, Xor (bool).
/// Both operands have one element type.
final class CompareKernel: Kernel {
    enum Operation: Sendable, Equatable { case equal, less, lessOrEqual, greater, greaterOrEqual, and, or, xor }
    let operation: Operation
    /// The operands' element type.
    let type: ElementType

    init(_ operation: Operation, type: ElementType) {
        self.operation = operation
        self.type = type
    }

    func outputType(_ types: [ElementType]) throws -> ElementType {
        guard types.allSatisfy({ $0 == types[0] }) else {
            throw AimetError.invalid("the operands' element types differ (\(types)); the op takes one type")
        }
        guard types[0] == type else { throw AimetError(.internalError, "operand types \(types), compiled for \(type)") }
        switch operation {
        case .and, .or, .xor:
            guard type == .bool else { throw AimetError.invalid("the operands are \(type); the op takes bool tensors") }
        case .less, .lessOrEqual, .greater, .greaterOrEqual:
            guard type != .bool else { throw AimetError.invalid("the operands are bool; the op compares numbers") }
        case .equal: break
        }
        return .bool
    }

    func outputShape(_ shapes: [[Int]]) throws -> [Int] { try Shapes.broadcast(shapes[0], shapes[1]) }

    func run(_ args: KernelArgs) throws {
        let a = args.inputs[0], b = args.inputs[1], out = args.output, w = args.workers
        let sa = args.shapes[0], sb = args.shapes[1], so = args.outputShape
        switch type {
        case .float32:
            // Floats compare as floats (bool operands are Float 0 / 1 in their slots and compare alike).
            compare(Float.self, a, sa, b, sb, out, so, w)
        case .bool:
            switch operation {
            case .and: Broadcast.map(a, sa, b, sb, out, so, workers: w) { (x: Bool, y: Bool) in x && y }
            case .or: Broadcast.map(a, sa, b, sb, out, so, workers: w) { (x: Bool, y: Bool) in x || y }
            case .xor: Broadcast.map(a, sa, b, sb, out, so, workers: w) { (x: Bool, y: Bool) in x != y }
            default: compare(Float.self, a, sa, b, sb, out, so, w)
            }
        case .int64:
            compare(Int64.self, a, sa, b, sb, out, so, w)
        }
    }

    @inline(__always)
    private func compare<T: SlotElement & Comparable>(_ t: T.Type, _ a: UnsafePointer<Float>, _ sa: [Int],
                                                      _ b: UnsafePointer<Float>, _ sb: [Int],
                                                      _ out: UnsafeMutablePointer<Float>, _ so: [Int], _ w: Int) {
        switch operation {
        case .equal: Broadcast.map(a, sa, b, sb, out, so, workers: w) { (x: T, y: T) in x == y }
        case .less: Broadcast.map(a, sa, b, sb, out, so, workers: w) { (x: T, y: T) in x < y }
        case .lessOrEqual: Broadcast.map(a, sa, b, sb, out, so, workers: w) { (x: T, y: T) in x <= y }
        case .greater: Broadcast.map(a, sa, b, sb, out, so, workers: w) { (x: T, y: T) in x > y }
        case .greaterOrEqual: Broadcast.map(a, sa, b, sb, out, so, workers: w) { (x: T, y: T) in x >= y }
        case .and, .or, .xor: break  // bool operands only (the type rule)
        }
    }
}
