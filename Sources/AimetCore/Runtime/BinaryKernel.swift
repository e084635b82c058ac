#if canImport(Glibc)
import Glibc
#endif

/// Elementwise arithmetic with numpy (multidirectional) broadcasting, on
/// float32 and int64:
///
/// * Add, Sub, Mul, Div (int64 division truncates toward zero, as C and
///   onnxruntime do; a zero divisor is an error; int64 arithmetic wraps), Pow, Mod;
/// * the variadic Sum, Mean (`(x₀ + … + xₙ₋₁) · (1/n)`, the product with the
///   float reciprocal as onnxruntime computes it), Max, Min (a NaN in any
///   operand gives NaN, as onnxruntime's Max/Min), folded left to right;
/// * BitShift to the right (logical: the bits of the unsigned value);
/// * PRelu (`y = x < 0 ? slope·x : x`, the slope broadcast unidirectionally
///   to x as ONNX says: a slope `[C]` aligns with x's *last* axis, `[C, 1, 1]`
///   with the channel axis of an NCHW input).
///
/// The operands' element types are fixed when the node compiles. Float
/// Add/Sub/Mul/Div/Max/Min/PRelu run the vectorized loops of `Broadcast.apply`;
/// the rest go through `Broadcast.map`, one element at a time.
final class BinaryKernel: Kernel {
    enum Operation: Sendable, Equatable {
        case add, sub, mul, div, prelu, max, min, mean
        /// `x^y`: float base with a float exponent (`powf`); float base with an
        /// int64 exponent and int64 base with either, computed in double and
        /// converted to the base's type (as C++'s `std::pow` and `static_cast` do in onnxruntime).
        case pow
        /// fmod = 1: the remainder of truncated division (sign of the dividend, C's
        /// `fmod` / `%`); fmod = 0: the sign of the divisor, as Python's `%` and numpy's `mod`.
        case mod(fmod: Bool)
        /// `x >> y` on unsigned values stored as int64 (shifts of 64 or more give 0).
        case shiftRight
    }
    let operation: Operation
    /// The operands' element types.
    let types: [ElementType]
    /// "node 'name' (Op)", for errors found while running (an integer division by zero).
    let what: String

    init(_ operation: Operation, types: [ElementType] = [.float32, .float32], what: String = "") {
        self.operation = operation
        self.types = types
        self.what = what
    }

    func outputType(_ types: [ElementType]) throws -> ElementType {
        guard types == self.types else { throw AimetError(.internalError, "operand types \(types), compiled for \(self.types)") }
        if let k = types.firstIndex(of: .bool) {
            throw AimetError.unsupported("operand \(k) is bool; this op computes on numbers (float32, integers)")
        }
        switch operation {
        case .pow:
            // The exponent may be of another numeric type than the base (opset 12+); the result is the base's type.
            return types[0]
        case .prelu:
            guard types.allSatisfy({ $0 == .float32 }) else { throw AimetError.unsupported("PRelu computes on float32 only") }
            return .float32
        case .shiftRight:
            guard types.allSatisfy({ $0 == .int64 }) else { throw AimetError.invalid("BitShift takes unsigned integers, got \(types)") }
            return .int64
        case .mean:
            guard types.allSatisfy({ $0 == .float32 }) else { throw AimetError.invalid("Mean takes float tensors, got \(types)") }
            return .float32
        default: break
        }
        guard let first = types.first, types.allSatisfy({ $0 == first }) else {
            throw AimetError.invalid("the operands' element types differ (\(types)); the op takes one type")
        }
        return first
    }

    func outputShape(_ shapes: [[Int]]) throws -> [Int] {
        if operation == .prelu {
            guard Shapes.broadcasts(shapes[1], to: shapes[0]) else {
                throw AimetError.shape("the slope's shape \(shapes[1]) does not broadcast to the input's \(shapes[0]) (ONNX aligns trailing axes: a per-channel slope of an NCHW input is [C, 1, 1])")
            }
            return shapes[0]
        }
        guard var shape = shapes.first else { throw AimetError.invalid("the op has no operands") }
        for s in shapes.dropFirst() { shape = try Shapes.broadcast(shape, s) }
        return shape
    }

    func run(_ args: KernelArgs) throws {
        let inputs = args.inputs, shapes = args.shapes, out = args.output, outShape = args.outputShape
        guard inputs.count > 1 else {
            // A Sum / Max / Min / Mean of one tensor is that tensor.
            out.update(from: inputs[0], count: outShape.reduce(1, *) * types[0].slots)
            return
        }
        // The first two operands into the output, then each further one into it (elementwise, in place).
        try apply(inputs[0], shapes[0], types[0], inputs[1], shapes[1], types[1], out, outShape, args.workers)
        for k in 2..<inputs.count {
            try apply(UnsafePointer(out), outShape, types[0], inputs[k], shapes[k], types[k], out, outShape, args.workers)
        }
        if operation == .mean {
            let scale: [Float] = [1 / Float(inputs.count)]
            Broadcast.apply(Mul.self, UnsafePointer(out), outShape, scale, [], out, outShape, workers: args.workers)
        }
    }

    /// `out = a ∘ b` for the operation, with broadcasting.
    private func apply(_ a: UnsafePointer<Float>, _ aShape: [Int], _ aType: ElementType,
                       _ b: UnsafePointer<Float>, _ bShape: [Int], _ bType: ElementType,
                       _ out: UnsafeMutablePointer<Float>, _ outShape: [Int], _ workers: Int) throws {
        switch (aType, bType) {
        case (.float32, .float32):
            applyFloat(a, aShape, b, bShape, out, outShape, workers)
        case (.float32, .int64):
            // Pow only (the type rule admits no other mix).
            Broadcast.map(a, aShape, b, bShape, out, outShape, workers: workers) { (x: Float, y: Int64) -> Float in
                Float(Glibc.pow(Double(x), Double(y)))
            }
        case (.int64, .float32):
            Broadcast.map(a, aShape, b, bShape, out, outShape, workers: workers) { (x: Int64, y: Float) -> Int64 in
                BinaryKernel.truncate(Glibc.pow(Double(x), Double(y)))
            }
        case (.int64, .int64):
            try integer(a, aShape, b, bShape, out, outShape, workers)
        default:
            throw AimetError(.internalError, "operand types \(aType), \(bType)")
        }
    }

    /// `out = a ∘ b` on float32 operands.
    private func applyFloat(_ a: UnsafePointer<Float>, _ aShape: [Int], _ b: UnsafePointer<Float>, _ bShape: [Int],
                            _ out: UnsafeMutablePointer<Float>, _ outShape: [Int], _ workers: Int) {
        switch operation {
        case .add, .mean: Broadcast.apply(Add.self, a, aShape, b, bShape, out, outShape, workers: workers)
        case .sub: Broadcast.apply(Sub.self, a, aShape, b, bShape, out, outShape, workers: workers)
        case .mul: Broadcast.apply(Mul.self, a, aShape, b, bShape, out, outShape, workers: workers)
        case .div: Broadcast.apply(Div.self, a, aShape, b, bShape, out, outShape, workers: workers)
        case .prelu: Broadcast.apply(PRelu.self, a, aShape, b, bShape, out, outShape, workers: workers)
        case .max: Broadcast.apply(Max.self, a, aShape, b, bShape, out, outShape, workers: workers)
        case .min: Broadcast.apply(Min.self, a, aShape, b, bShape, out, outShape, workers: workers)
        case .pow:
            // x² (LayerNorm written out, variance terms) is a product, which powf computes exactly too.
            if bShape.reduce(1, *) == 1 && b[0] == 2 {
                Broadcast.apply(Square.self, a, aShape, b, bShape, out, outShape, workers: workers)
            } else {
                Broadcast.map(a, aShape, b, bShape, out, outShape, workers: workers) { (x: Float, y: Float) -> Float in powf(x, y) }
            }
        case .mod(let fmod):
            // fmod = 0 on floats (ONNX's own conformance cases define it): numpy's `mod`, the sign of the divisor.
            Broadcast.map(a, aShape, b, bShape, out, outShape, workers: workers) { (x: Float, y: Float) -> Float in
                let r = fmodf(x, y)
                return fmod || r == 0 || (r < 0) == (y < 0) ? r : r + y
            }
        case .shiftRight:
            break  // float operands are refused by the type rule
        }
    }

    /// The int64 operations (wrapping on overflow, as two's complement C++ does).
    private func integer(_ a: UnsafePointer<Float>, _ aShape: [Int], _ b: UnsafePointer<Float>, _ bShape: [Int],
                         _ out: UnsafeMutablePointer<Float>, _ outShape: [Int], _ workers: Int) throws {
        func map(_ f: (Int64, Int64) -> Int64) {
            Broadcast.map(a, aShape, b, bShape, out, outShape, workers: workers, f)
        }
        switch operation {
        case .add, .mean: map { $0 &+ $1 }
        case .sub: map { $0 &- $1 }
        case .mul: map { $0 &* $1 }
        case .max: map { Swift.max($0, $1) }
        case .min: map { Swift.min($0, $1) }
        case .div:
            try checkNonzero(b, bShape)
            map { $0.dividedReportingOverflow(by: $1).partialValue }
        case .mod(let fmod):
            try checkNonzero(b, bShape)
            if fmod {
                map { $0.remainderReportingOverflow(dividingBy: $1).partialValue }
            } else {
                map { x, y in
                    let r = x.remainderReportingOverflow(dividingBy: y).partialValue
                    return r != 0 && (r < 0) != (y < 0) ? r &+ y : r
                }
            }
        case .pow: map { BinaryKernel.truncate(Glibc.pow(Double($0), Double($1))) }
        case .shiftRight: map { x, y in y < 0 || y >= 64 ? 0 : Int64(bitPattern: UInt64(bitPattern: x) >> UInt64(y)) }
        case .prelu: throw AimetError(.internalError, "PRelu on int64")
        }
    }

    /// Throws when an int64 divisor holds a zero (onnxruntime stops the process with a division fault there).
    private func checkNonzero(_ b: UnsafePointer<Float>, _ shape: [Int]) throws {
        let p = Int64Pointer(b)
        for i in 0..<shape.reduce(1, *) where p[i] == 0 {
            throw AimetError.invalid("\(what): integer division by zero (the divisor's element \(i) is 0)")
        }
    }

    /// A double converted to int64 as x86-64's truncating conversion does: toward
    /// zero, and the "integer indefinite" `Int64.min` for NaN and values out of range.
    @inline(__always)
    static func truncate(_ x: Double) -> Int64 {
        x >= -0x1p63 && x < 0x1p63 ? Int64(x.rounded(.towardZero)) : .min
    }

    /// `out = a ∘ b` on float32 with broadcasting (a conv's unfused residual Add);
    /// `out` may be `a` or `b` when it has that operand's shape.
    static func compute(_ operation: Operation, _ a: UnsafePointer<Float>, _ aShape: [Int],
                        _ b: UnsafePointer<Float>, _ bShape: [Int],
                        into out: UnsafeMutablePointer<Float>, _ outShape: [Int], workers: Int) {
        BinaryKernel(operation).applyFloat(a, aShape, b, bShape, out, outShape, workers)
    }

    private enum Add: BinaryFunction {
        @inline(__always) static func apply(_ a: Float8, _ b: Float8) -> Float8 { a + b }
        @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a + b }
    }
    private enum Sub: BinaryFunction {
        @inline(__always) static func apply(_ a: Float8, _ b: Float8) -> Float8 { a - b }
        @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a - b }
    }
    private enum Mul: BinaryFunction {
        @inline(__always) static func apply(_ a: Float8, _ b: Float8) -> Float8 { a * b }
        @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a * b }
    }
    private enum Div: BinaryFunction {
        @inline(__always) static func apply(_ a: Float8, _ b: Float8) -> Float8 { a / b }
        @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a / b }
    }
    /// `a·a` (b is the exponent 2).
    private enum Square: BinaryFunction {
        @inline(__always) static func apply(_ a: Float8, _ b: Float8) -> Float8 { a * a }
        @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a * a }
    }
    /// The larger, NaN when either is NaN.
    private enum Max: BinaryFunction {
        @inline(__always) static func apply(_ a: Float8, _ b: Float8) -> Float8 {
            let m = a.replacing(with: b, where: b .> a)
            return m.replacing(with: b, where: b .!= b)
        }
        @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { b.isNaN || b > a ? b : a }
    }
    /// The smaller, NaN when either is NaN.
    private enum Min: BinaryFunction {
        @inline(__always) static func apply(_ a: Float8, _ b: Float8) -> Float8 {
            let m = a.replacing(with: b, where: b .< a)
            return m.replacing(with: b, where: b .!= b)
        }
        @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { b.isNaN || b < a ? b : a }
    }
    private enum PRelu: BinaryFunction {
        @inline(__always) static func apply(_ a: Float8, _ b: Float8) -> Float8 {
            a.replacing(with: a * b, where: a .< Float8())
        }
        @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a < 0 ? a * b : a }
    }
}
