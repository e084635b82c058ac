/// Comparisons and logic with numpy broadcasting, giving bool: Equal (float32,
/// int64 or bool operands), Less, LessOrEqual, Greater, GreaterOrEqual (float32
/// or int64; a NaN compares false, unequal to everything), And, Or, Xor (bool).
///
/// Bool tensors stored in the model (initializers, Constant nodes) reach the
/// executor as int64 0 / 1 (the importer reads every integer-like tensor as
/// int64), so where ONNX requires bool an int64 operand is read as `x != 0`,
/// and Equal compares a bool with an int64 operand as numbers. For a valid
/// model this is exactly the bool semantics.
final class CompareKernel: Kernel {
    enum Operation: Sendable, Equatable { case equal, less, lessOrEqual, greater, greaterOrEqual, and, or, xor }
    let operation: Operation
    /// The operands' element types.
    let types: [ElementType]

    init(_ operation: Operation, types: [ElementType]) {
        self.operation = operation
        self.types = types
    }

    func outputType(_ types: [ElementType]) throws -> ElementType {
        guard types == self.types else { throw AimetError(.internalError, "operand types \(types), compiled for \(self.types)") }
        let kinds = Set(types)
        switch operation {
        case .and, .or, .xor:
            guard !kinds.contains(.float32) else { throw AimetError.invalid("the operands are \(types); the op takes bool tensors") }
        case .less, .lessOrEqual, .greater, .greaterOrEqual:
            guard kinds.count == 1, types[0] != .bool else {
                throw AimetError.invalid("the operands are \(types); the op compares two numbers of one type")
            }
        case .equal:
            guard kinds.count == 1 || !kinds.contains(.float32) else {
                throw AimetError.invalid("the operands' element types differ (\(types)); the op takes one type")
            }
        }
        return .bool
    }

    func outputShape(_ shapes: [[Int]]) throws -> [Int] { try Shapes.broadcast(shapes[0], shapes[1]) }

    func run(_ args: KernelArgs) throws {
        let a = args.inputs[0], b = args.inputs[1], out = args.output, w = args.workers
        let sa = args.shapes[0], sb = args.shapes[1], so = args.outputShape
        switch operation {
        case .and: logic(a, sa, b, sb, out, so, w) { $0 && $1 }
        case .or: logic(a, sa, b, sb, out, so, w) { $0 || $1 }
        case .xor: logic(a, sa, b, sb, out, so, w) { $0 != $1 }
        default:
            switch (types[0], types[1]) {
            // Bool operands are Float 0 / 1 in their slots and compare as floats alike.
            case (.float32, _), (.bool, .bool): compare(Float.self, a, sa, b, sb, out, so, w)
            case (.int64, .int64): compare(Int64.self, a, sa, b, sb, out, so, w)
            case (.bool, _): Broadcast.map(a, sa, b, sb, out, so, workers: w) { (x: Bool, y: Int64) in (x ? 1 : 0) == y }
            case (.int64, _): Broadcast.map(a, sa, b, sb, out, so, workers: w) { (x: Int64, y: Bool) in x == (y ? 1 : 0) }
            }
        }
    }

    /// `out = f(a, b)` on truth values (int64 operands read as `x != 0`).
    @inline(__always)
    private func logic(_ a: UnsafePointer<Float>, _ sa: [Int], _ b: UnsafePointer<Float>, _ sb: [Int],
                       _ out: UnsafeMutablePointer<Float>, _ so: [Int], _ w: Int, _ f: (Bool, Bool) -> Bool) {
        switch (types[0] == .int64, types[1] == .int64) {
        case (false, false): Broadcast.map(a, sa, b, sb, out, so, workers: w) { (x: Bool, y: Bool) in f(x, y) }
        case (true, false): Broadcast.map(a, sa, b, sb, out, so, workers: w) { (x: Int64, y: Bool) in f(x != 0, y) }
        case (false, true): Broadcast.map(a, sa, b, sb, out, so, workers: w) { (x: Bool, y: Int64) in f(x, y != 0) }
        case (true, true): Broadcast.map(a, sa, b, sb, out, so, workers: w) { (x: Int64, y: Int64) in f(x != 0, y != 0) }
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
