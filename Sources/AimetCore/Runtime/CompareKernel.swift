/// Comparisons and logic with numpy broadcasting, giving bool: Equal (float32,
/// int64 or bool operands), Less, LessOrEqual, Greater, GreaterOrEqual (float32
/// or int64; a NaN compares false, unequal to everything), And, Or, Xor (bool).
/// Both operands have one element type.
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
        guard types[0] == types[1] else {
            throw AimetError.invalid("the operands' element types differ (\(types[0]) and \(types[1])); the op takes one type")
        }
        switch operation {
        case .and, .or, .xor:
            guard types[0] == .bool else { throw AimetError.invalid("the operands are \(types[0]); the op takes bool tensors") }
        case .less, .lessOrEqual, .greater, .greaterOrEqual:
            guard types[0] != .bool else { throw AimetError.invalid("the operands are bool; the op compares numbers") }
        case .equal: break
        }
        return .bool
    }

    func outputShape(_ shapes: [[Int]]) throws -> [Int] { try Shapes.broadcast(shapes[0], shapes[1]) }

    func run(_ args: KernelArgs) throws {
        let a = args.inputs[0], b = args.inputs[1], out = args.output, w = args.workers
        let sa = args.shapes[0], sb = args.shapes[1], so = args.outputShape
        switch (operation, types[0]) {
        case (.and, _): Broadcast.map(a, sa, b, sb, out, so, workers: w) { (x: Bool, y: Bool) in x && y }
        case (.or, _): Broadcast.map(a, sa, b, sb, out, so, workers: w) { (x: Bool, y: Bool) in x || y }
        case (.xor, _): Broadcast.map(a, sa, b, sb, out, so, workers: w) { (x: Bool, y: Bool) in x != y }
        case (_, .int64): compare(Int64.self, a, sa, b, sb, out, so, w)
        // Bool operands are Float 0 / 1 in their slots and compare as floats alike, 8 lanes at a time.
        case (.equal, _): Broadcast.map8(a, sa, b, sb, out, so, workers: w, { CompareKernel.bool8($0 .== $1) }, { $0 == $1 ? 1 : 0 })
        case (.less, _): Broadcast.map8(a, sa, b, sb, out, so, workers: w, { CompareKernel.bool8($0 .< $1) }, { $0 < $1 ? 1 : 0 })
        case (.lessOrEqual, _):
            Broadcast.map8(a, sa, b, sb, out, so, workers: w, { CompareKernel.bool8($0 .<= $1) }, { $0 <= $1 ? 1 : 0 })
        case (.greater, _): Broadcast.map8(a, sa, b, sb, out, so, workers: w, { CompareKernel.bool8($0 .> $1) }, { $0 > $1 ? 1 : 0 })
        case (.greaterOrEqual, _):
            Broadcast.map8(a, sa, b, sb, out, so, workers: w, { CompareKernel.bool8($0 .>= $1) }, { $0 >= $1 ? 1 : 0 })
        }
    }

    /// 1 where the mask is set, else 0 (bool elements in float slots).
    @inline(__always)
    private static func bool8(_ mask: SIMDMask<SIMD8<Int32>>) -> Float8 {
        Float8(repeating: 0).replacing(with: 1, where: mask)
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
