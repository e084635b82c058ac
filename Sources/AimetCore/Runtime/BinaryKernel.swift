/// Add, Sub, Mul, Div with numpy (multidirectional) broadcasting, and PRelu
/// (`y = x < 0 ? slope·x : x`, the slope broadcast unidirectionally to x as
/// ONNX says: a slope `[C]` aligns with x's *last* axis, `[C, 1, 1]` with the
/// channel axis of an NCHW input).
///
/// The operands' shapes are right-aligned and padded with 1s; axes where both
/// operands step alike are merged, so the inner loop runs over contiguous
/// memory (or one operand repeated) and is vectorized.
final class BinaryKernel: Kernel {
    enum Operation: Sendable { case add, sub, mul, div, prelu }
    let operation: Operation

    init(_ operation: Operation) {
        self.operation = operation
    }

    func outputShape(_ shapes: [[Int]]) throws -> [Int] {
        if operation == .prelu {
            guard Shapes.broadcasts(shapes[1], to: shapes[0]) else {
                throw AimetError.shape("the slope's shape \(shapes[1]) does not broadcast to the input's \(shapes[0]) (ONNX aligns trailing axes: a per-channel slope of an NCHW input is [C, 1, 1])")
            }
            return shapes[0]
        }
        return try Shapes.broadcast(shapes[0], shapes[1])
    }

    func run(_ args: KernelArgs) {
        BinaryKernel.compute(operation, args.inputs[0], args.shapes[0], args.inputs[1], args.shapes[1],
                             into: args.output, args.outputShape, workers: args.workers)
    }

    /// `out = a ∘ b` with broadcasting; `out` may be `a` or `b` when it has that operand's shape.
    static func compute(_ operation: Operation, _ a: UnsafePointer<Float>, _ aShape: [Int],
                        _ b: UnsafePointer<Float>, _ bShape: [Int],
                        into out: UnsafeMutablePointer<Float>, _ outShape: [Int], workers: Int) {
        switch operation {
        case .add: Broadcast.apply(Add.self, a, aShape, b, bShape, out, outShape, workers: workers)
        case .sub: Broadcast.apply(Sub.self, a, aShape, b, bShape, out, outShape, workers: workers)
        case .mul: Broadcast.apply(Mul.self, a, aShape, b, bShape, out, outShape, workers: workers)
        case .div: Broadcast.apply(Div.self, a, aShape, b, bShape, out, outShape, workers: workers)
        case .prelu: Broadcast.apply(PRelu.self, a, aShape, b, bShape, out, outShape, workers: workers)
        }
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
    private enum PRelu: BinaryFunction {
        @inline(__always) static func apply(_ a: Float8, _ b: Float8) -> Float8 {
            a.replacing(with: a * b, where: a .< Float8())
        }
        @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a < 0 ? a * b : a }
    }
}
