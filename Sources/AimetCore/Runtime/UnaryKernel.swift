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
/// Negation, square root, reciprocal, the roundings, Exp and Erf (polynomials,
/// see `exp8` and `erf8`) run 8 lanes at a time; the rest one element at a time.
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
        case .exp: vector(x, y, n, UnaryKernel.exp8, { expf($0) })
        case .log: scalar(x, y, n) { logf($0) }
        case .erf: vector(x, y, n, UnaryKernel.erf8, { erff($0) })
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

    /// `eˣ` on 8 lanes, within about 1 ulp (Cephes' `expf`): `x = n·ln2 + r`
    /// with `|r| ≤ ln2/2` (ln2 in two parts, so `r` is exact), `eʳ` by a degree-7
    /// polynomial, times `2ⁿ` applied as two powers of two so that results down
    /// into the subnormals round once. Above 88.72… the result is +∞, below
    /// -103.97… it is 0, NaN stays NaN.
    @inline(__always)
    static func exp8(_ x: Float8) -> Float8 {
        // Adding 1.5·2²³ rounds to an integer held in the low mantissa bits.
        let magic = Float8(repeating: 12582912)
        let xc = x.clamped(lowerBound: Float8(repeating: -104), upperBound: Float8(repeating: 89))
        let t = xc * 1.44269504088896341 + magic
        let n = t - magic
        let r = (xc - n * 0.693359375) - n * -2.12194440e-4
        var p = Float8(repeating: 1.9875691500e-4)
        p = p * r + 1.3981999507e-3
        p = p * r + 8.3334519073e-3
        p = p * r + 4.1665795894e-2
        p = p * r + 1.6666665459e-1
        p = p * r + 5.0000001201e-1
        let e = p * (r * r) + r + 1
        let k = unsafeBitCast(t, to: SIMD8<Int32>.self) &- unsafeBitCast(magic, to: SIMD8<Int32>.self)
        let k1 = k &>> 1, k2 = k &- k1
        let s1 = unsafeBitCast((k1 &+ 127) &<< 23, to: Float8.self)
        let s2 = unsafeBitCast((k2 &+ 127) &<< 23, to: Float8.self)
        var y = e * s1 * s2
        y.replace(with: .infinity, where: x .> 88.72283935546875)
        y.replace(with: 0, where: x .< -103.972084045410156)
        y.replace(with: x, where: x .!= x)
        return y
    }

    /// `erf(x)` on 8 lanes, within 2·10⁻⁷ relative: `x·P(x²)` (degree 6) for
    /// `|x| < 0.921875`; `1 - e^(-x²)·R(|x|)` with `R ≈ erfc(x)·e^(x²)` (degree 11
    /// in `|x| - 2.4234375`, least-squares fits on Chebyshev nodes) up to 3.925,
    /// beyond which erf is ±1 in float32; the sign of x restored.
    @inline(__always)
    static func erf8(_ x: Float8) -> Float8 {
        let a = x.replacing(with: -x, where: x .< 0)
        let t = a * a
        var p = Float8(repeating: 8.410998998442665e-05)
        p = p * t - 0.0008153776288963854
        p = p * t + 0.005202175583690405
        p = p * t - 0.026859957724809647
        p = p * t + 0.11283708363771439
        p = p * t - 0.37612634897232056
        p = p * t + 1.128379225730896
        let small = x * p
        let u = a.clamped(lowerBound: Float8(repeating: 0.921875), upperBound: Float8(repeating: 3.925)) - 2.4234375953674316
        var r = Float8(repeating: -4.858165993937291e-07)
        r = r * u + 2.0797588149434887e-06
        r = r * u - 4.877245373791084e-06
        r = r * u + 1.7195294276461937e-05
        r = r * u - 6.968329398659989e-05
        r = r * u + 0.00024769434821791947
        r = r * u - 0.0008383640088140965
        r = r * u + 0.0027661644853651524
        r = r * u - 0.008801939897239208
        r = r * u + 0.026866255328059196
        r = r * u - 0.0783112570643425
        r = r * u + 0.2166484296321869
        var big = 1 - exp8(-t) * r
        big.replace(with: 1, where: a .>= 3.925)
        big.replace(with: -big, where: x .< 0)
        var y = small.replacing(with: big, where: a .>= 0.921875)
        y.replace(with: x, where: x .!= x)
        return y
    }
}
