import CKernels
#if canImport(Glibc)
import Glibc
#endif

/// The elementwise functions of one tensor: `y[i] = f(x[i])`.
///
/// * float32 or int64 in, same out: Neg, Abs, Sign (`x > 0 ? 1 : x < 0 ? -1 : 0`,
///   NaN stays NaN); int64 Neg and Abs wrap (`-Int64.min` is `Int64.min`);
/// * float32: Sqrt, Exp, Log, Reciprocal (`1/x`), Floor, Ceil, Round (half to
///   even), Erf, Sin, Cos, Tan, Asin, Acos, Atan, Sinh, Cosh, Asinh, Acosh, Atanh
///   (the C library's float functions), Shrink (`x < -λ ? x + bias : x > λ ? x - bias : 0`);
/// * float32 in, bool out: IsNaN, IsInf (which infinities it detects);
/// * bool: Not.
///
/// Exp and Erf run the vectorized C kernels (Sources/CKernels/activations.c:
/// polynomials within 2e-7 relative); negation, square root, reciprocal and the
/// roundings 8 lanes at a time; the rest one element at a time.
/// Large tensors are split over the workers.
final class UnaryKernel: Kernel {
    enum Function: Sendable, Equatable {
        case neg, abs, sign
        case sqrt, exp, log, reciprocal, floor, ceil, round, erf
        case sin, cos, tan, asin, acos, atan, sinh, cosh, asinh, acosh, atanh
        case shrink(bias: Float, lambda: Float)
        case isNaN, isInf(positive: Bool, negative: Bool)
        case not
    }
    let function: Function
    /// The input's element type.
    let type: ElementType

    init(_ function: Function, type: ElementType = .float32) {
        self.function = function
        self.type = type
    }

    func outputType(_ types: [ElementType]) throws -> ElementType {
        guard types == [type] else { throw AimetError(.internalError, "operand types \(types), compiled for \(type)") }
        switch function {
        case .not:
            guard type == .bool else { throw AimetError.invalid("Not takes a bool tensor, got \(type)") }
            return .bool
        case .neg, .abs, .sign:
            guard type != .bool else { throw AimetError.invalid("the input is bool; the op takes numbers") }
            return type
        case .isNaN, .isInf:
            guard type == .float32 else { throw AimetError.invalid("the input is \(type); the op takes float tensors") }
            return .bool
        default:
            guard type == .float32 else {
                throw AimetError.unsupported("the input is \(type); the executor computes this function on float32 only")
            }
            return .float32
        }
    }

    func outputShape(_ shapes: [[Int]]) throws -> [Int] { shapes[0] }

    func run(_ args: KernelArgs) throws {
        let count = args.outputShape.reduce(1, *)
        let x = args.inputs[0], y = args.output
        // Transcendental functions cost enough per element to split smaller tensors.
        let cheap: Bool
        switch function {
        case .neg, .abs, .sign, .sqrt, .reciprocal, .floor, .ceil, .round, .shrink, .isNaN, .isInf, .not: cheap = true
        default: cheap = false
        }
        let workers = count >= (cheap ? 1 << 15 : 1 << 12) ? args.workers : 1
        let outSlots = try outputType([type]).slots
        Parallel.forEach(count, workers: workers) { range, _ in
            apply(x + range.lowerBound * type.slots, y + range.lowerBound * outSlots, range.count)
        }
    }

    /// `y[i] = f(x[i])` for `n` elements (pointers at the first one).
    private func apply(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        if type == .int64 {
            let xi = Int64Pointer(x), yi = Int64Pointer(y)
            switch function {
            case .neg: for i in 0..<n { yi[i] = 0 &- xi[i] }
            case .abs: for i in 0..<n { yi[i] = xi[i] < 0 ? 0 &- xi[i] : xi[i] }
            case .sign: for i in 0..<n { yi[i] = xi[i].signum() }
            default: break  // refused by the type rule
            }
            return
        }
        switch function {
        // (SIMD's prefix minus is `0 - x`, which makes -0 of +0 into +0; `-0 - x` flips every sign.)
        case .neg: vector(x, y, n, { Float8(repeating: -0.0) - $0 }, { -$0 })
        case .sqrt: vector(x, y, n, { $0.squareRoot() }, { $0.squareRoot() })
        case .reciprocal: vector(x, y, n, { 1 / $0 }, { 1 / $0 })
        case .floor: vector(x, y, n, { $0.rounded(.down) }, { $0.rounded(.down) })
        case .ceil: vector(x, y, n, { $0.rounded(.up) }, { $0.rounded(.up) })
        case .round: vector(x, y, n, { $0.rounded(.toNearestOrEven) }, { $0.rounded(.toNearestOrEven) })
        case .abs: scalar(x, y, n) { Swift.abs($0) }
        case .sign: scalar(x, y, n) { $0 > 0 ? 1 : $0 < 0 ? -1 : $0.isNaN ? $0 : 0 }
        case .shrink(let bias, let lambda): scalar(x, y, n) { $0 < -lambda ? $0 + bias : $0 > lambda ? $0 - bias : 0 }
        // The kernel adds its bias first: −0 keeps a −0 input (Erf(−0) = −0).
        case .exp: aimetk_activation(AIMETK_ACT_EXP, 0, 0, x, y, n, -0.0, nil, Activation.kernelISA)
        case .log: scalar(x, y, n) { logf($0) }
        case .erf: aimetk_activation(AIMETK_ACT_ERF, 0, 0, x, y, n, -0.0, nil, Activation.kernelISA)
        case .sin: scalar(x, y, n) { sinf($0) }
        case .cos: scalar(x, y, n) { cosf($0) }
        case .tan: scalar(x, y, n) { tanf($0) }
        case .asin: scalar(x, y, n) { asinf($0) }
        case .acos: scalar(x, y, n) { acosf($0) }
        case .atan: scalar(x, y, n) { atanf($0) }
        case .sinh: scalar(x, y, n) { sinhf($0) }
        case .cosh: scalar(x, y, n) { coshf($0) }
        case .asinh: scalar(x, y, n) { asinhf($0) }
        case .acosh: scalar(x, y, n) { acoshf($0) }
        case .atanh: scalar(x, y, n) { atanhf($0) }
        case .isNaN: scalar(x, y, n) { $0.isNaN ? 1 : 0 }
        case .isInf(let positive, let negative):
            scalar(x, y, n) { $0.isInfinite && ($0 > 0 ? positive : negative) ? 1 : 0 }
        case .not: scalar(x, y, n) { $0 != 0 ? 0 : 1 }
        }
    }

    @inline(__always)
    private func vector(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int,
                        _ f8: (Float8) -> Float8, _ f: (Float) -> Float) {
        var i = 0
        while i + 8 <= n { y.store8(f8(x.load8(i)), i); i += 8 }
        while i < n { y[i] = f(x[i]); i += 1 }
    }

    @inline(__always)
    private func scalar(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int, _ f: (Float) -> Float) {
        for i in 0..<n { y[i] = f(x[i]) }
    }
}
