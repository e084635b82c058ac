#if canImport(Glibc)
import Glibc
#endif
#if arch(x86_64)
import _Builtin_intrinsics.intel
#endif

/// The formulas of AdaRound (SPEC §6), scalar, as the reference the fast
/// loops follow and the tests check.
///
/// A weight `w` with encoding `(scale s, offset o, numSteps n)` is written as
/// `w / s = floor(w / s) + rest`, `rest ∈ [0, 1)`. AdaRound learns `V` (one
/// per weight) and uses the *soft* weight
///
///     h(V)  = clamp(sigmoid(V) · (ζ − γ) + γ, 0, 1)          (rectified sigmoid)
///     w~(V) = (clamp(floor(w / s) + h(V) − o, 0, n) + o) · s
///
/// with `ζ = 1.1`, `γ = −0.1`. `V` starts at `−log((ζ − γ) / (rest − γ) − 1)`,
/// where `h(V) = rest`, so `w~ = w` (inside the grid). The rounding loss
/// `reg · Σ (1 − |2h(V) − 1|^β)` pushes every `h` to 0 or 1; at the end
/// `h = [V ≥ 0]` (hard rounding).
public enum AdaRoundMath {
    public static let zeta: Float = 1.1
    public static let gamma: Float = -0.1

    /// `V` such that `h(V) = rest`: `−log((ζ − γ) / (rest − γ) − 1)` (float32, as AIMET's torch code).
    @inline(__always)
    public static func initialV(rest: Float) -> Float {
        -logf((zeta - gamma) / (rest - gamma) - 1)
    }

    /// The rectified sigmoid `h(V) = clamp(sigmoid(V) · (ζ − γ) + γ, 0, 1)`.
    @inline(__always)
    public static func softRounding(_ v: Float) -> Float {
        let s = 1 / (1 + expf(-v))
        return Swift.min(Swift.max(s * (zeta - gamma) + gamma, 0), 1)
    }

    /// `dh/dV`: `(ζ − γ) · σ(V) · (1 − σ(V))` where the clamp passes the value
    /// (torch's clamp gradient: 1 on the closed interval `[0, 1]`), else 0.
    @inline(__always)
    public static func softRoundingDerivative(_ v: Float) -> Float {
        let s = 1 / (1 + expf(-v))
        let raw = s * (zeta - gamma) + gamma
        return raw >= 0 && raw <= 1 ? (zeta - gamma) * s * (1 - s) : 0
    }

    /// Whether iteration `iteration` (0-based) of `iterations` is past the warm
    /// start, i.e. has a rounding loss: `iteration >= warmStart · iterations`.
    @inline(__always)
    public static func roundingActive(iteration: Int, iterations: Int, warmStart: Double) -> Bool {
        Double(iteration) >= warmStart * Double(iterations)
    }

    /// The annealed exponent of the rounding loss at `iteration`:
    /// `rel = (it − warm·N) / (N − warm·N)`, `β = end + ½ (start − end)(1 + cos(rel·π))`
    /// (computed in float64, as AIMET does with NumPy).
    public static func beta(iteration: Int, iterations: Int, warmStart: Double, range: (start: Double, end: Double)) -> Float {
        let warmEnd = warmStart * Double(iterations)
        let rel = (Double(iteration) - warmEnd) / (Double(iterations) - warmEnd)
        return Float(range.end + 0.5 * (range.start - range.end) * (1 + cos(rel * Double.pi)))
    }

    /// The rounding loss `reg · Σ (1 − |2h(V) − 1|^β)` of a set of `V`.
    public static func roundingLoss(_ v: [Float], beta: Float, regParam: Float) -> Double {
        var sum = 0.0
        for x in v { sum += Double(1 - powf(abs(2 * softRounding(x) - 1), beta)) }
        return Double(regParam) * sum
    }

    /// The soft weight `w~ = (clamp(floor(w/s) + h − o, 0, n) + o) · s` of one weight.
    @inline(__always)
    public static func softWeight(_ w: Float, h: Float, encoding: Encoding) -> Float {
        let q = (w / encoding.scale).rounded(.down) + h - Float(encoding.offset)
        return (Swift.min(Swift.max(q, 0), Float(encoding.numSteps)) + Float(encoding.offset)) * encoding.scale
    }
}

/// Adam as `torch.optim.Adam` (no weight decay, no amsgrad), float32 state:
///
///     m ← lerp(m, g, 1 − β₁)            v ← β₂·v + (1 − β₂)·g²
///     V ← V − (lr / (1 − β₁ᵗ)) · m / (√v / √(1 − β₂ᵗ) + ε)
///
/// with `1 − β`, the bias corrections and the step size computed in float64
/// (Python floats) and applied as float32 scalars, as torch's single-tensor
/// path does. (The vector loop in `AdaRoundWeights` does the same arithmetic,
/// with the correctly rounded `sqrtps`.)
struct AdamSchedule {
    var learningRate: Double = 1e-3
    var beta1: Double = 0.9
    var beta2: Double = 0.999
    var epsilon: Double = 1e-8

    /// The float32 scalars of the update: `1 − β₁`, `β₂`, `1 − β₂`, `ε`.
    var scalars: (oneMinusBeta1: Float, beta2: Float, oneMinusBeta2: Float, epsilon: Float) {
        (Float(1 - beta1), Float(beta2), Float(1 - beta2), Float(epsilon))
    }

    /// `(step size, √(1 − β₂ᵗ))` of step `t` (1-based).
    func corrections(step t: Int) -> (stepSize: Float, bias2Root: Float) {
        let bc1 = 1 - pow(beta1, Double(t))
        let bc2 = 1 - pow(beta2, Double(t))
        return (Float(learningRate / bc1), Float(bc2.squareRoot()))
    }

    /// One scalar step (the reference for the vector loop).
    func step(_ v: inout Float, m: inout Float, s: inout Float, gradient g: Float, t: Int) {
        let (stepSize, root) = corrections(step: t)
        let (a1, b2, a2, eps) = scalars
        m += a1 * (g - m)
        s = s * b2 + a2 * g * g
        v -= stepSize * (m / (s.squareRoot() / root + eps))
    }
}

// MARK: - Fast element-wise math

// Plain scalar arithmetic and bit casts, so that LLVM vectorizes the loops
// over them (the build targets SSE2; Swift's `squareRoot` keeps glibc's errno
// path and its generic SIMD operations are not reliably lowered to vector code).

/// `exp(x)` (Cephes `expf`: `x = n·ln2 + r`, a degree-6 polynomial for `e^r`,
/// `2^n` built in the exponent bits), relative error below 2e-7; `x` is
/// clamped to `[−87, 88]`, which keeps `2^n` a normal float.
@inline(__always)
func fastExp(_ x: Float) -> Float {
    let xc = Swift.min(Swift.max(x, -87), 88)
    let magic: Float = 12_582_912  // 1.5·2^23: adding it rounds to an integer
    let shifted = xc * 1.442_695_04 + magic
    let n = shifted - magic
    let r = (xc - n * 0.693_359_375) - n * -2.121_944_4e-4
    var p: Float = 1.987_569_15e-4
    p = p * r + 1.398_199_95e-3
    p = p * r + 8.333_451_9e-3
    p = p * r + 4.166_579_59e-2
    p = p * r + 1.666_666_55e-1
    p = p * r + 5.000_000_12e-1
    let e = p * (r * r) + r + 1
    // The low bits of `shifted` hold n (two's complement, |n| < 2^22).
    return e * Float(bitPattern: (shifted.bitPattern &- magic.bitPattern &+ 127) &<< 23)
}

/// `a^p` for `a ∈ [0, 1]`, `p >= 0`, as `2^(p·log2 a)` with degree-5
/// polynomials for `log2` on `[√½, √2)` and `2^f` on `[−½, ½]`: relative error
/// about `4e-6·p` (the rounding loss's gradient needs no more). `0^p = 0`.
@inline(__always)
func fastPow(_ a: Float, _ p: Float) -> Float {
    // a = 2^e · m with m ∈ [√½, √2): in the bits, a − bits(√½) splits into
    // the exponent e (high bits) and m's mantissa offset from √½ (low 23 bits).
    let i = Int32(bitPattern: Swift.max(a, Float.leastNormalMagnitude).bitPattern) &- 0x3F35_04F3
    let e = Float(i &>> 23)
    let m = Float(bitPattern: UInt32(bitPattern: (i & 0x007F_FFFF) &+ 0x3F35_04F3))
    let t = m - 1
    var l: Float = -0.206_860_46
    l = l * t + 0.318_410_58
    l = l * t - 0.366_413_72
    l = l * t + 0.479_793_64
    l = l * t - 0.721_208_44
    l = l * t + 1.442_701_8
    let y = Swift.min(Swift.max(p * (e + l * t), -126), 0)
    let magic: Float = 12_582_912
    let shifted = y + magic
    let f = y - (shifted - magic)
    var q: Float = 1.340_043_7e-3
    q = q * f + 9.676_042e-3
    q = q * f + 5.550_327_2e-2
    q = q * f + 0.240_221_07
    q = q * f + 0.693_147_2
    q = q * f + 1.000_000_1
    let result = q * Float(bitPattern: (shifted.bitPattern &- magic.bitPattern &+ 127) &<< 23)
    return a > 0 ? result : 0
}

/// `√x` for `x >= 0`: the classic reciprocal square-root estimate refined by
/// three Newton steps, times `x` (within 2 ulp of the correctly rounded root).
@inline(__always)
func fastSqrt(_ x: Float) -> Float {
    var y = Float(bitPattern: 0x5F37_59DF &- (x.bitPattern &>> 1))
    let half = 0.5 * x
    y = y * (1.5 - half * y * y)
    y = y * (1.5 - half * y * y)
    y = y * (1.5 - half * y * y)
    return x * y
}

/// Four SSE registers of floats.
typealias Float16x = SIMD16<Float>

// MARK: - The same functions on 16 lanes (four SSE registers)

// Lane by lane the same operations, in the same order, as the scalar
// versions above, so every lane's result is bit-identical to the scalar
// function's (no fused multiply-adds: the build targets baseline x86-64).
// On x86-64 the primitives are SSE2 intrinsics (`minps`, `sqrtps`, and/or
// masks, integer shifts), which Swift's generic SIMD operations do not
// reliably become; elsewhere the generic operations.

#if arch(x86_64)
/// An SSE operation on each quarter.
@inline(__always) func pair(_ a: Float16x, _ b: Float16x, _ op: (Float4, Float4) -> Float4) -> Float16x {
    Float16x(lowHalf: Float8(lowHalf: op(a.lowHalf.lowHalf, b.lowHalf.lowHalf), highHalf: op(a.lowHalf.highHalf, b.lowHalf.highHalf)),
            highHalf: Float8(lowHalf: op(a.highHalf.lowHalf, b.highHalf.lowHalf), highHalf: op(a.highHalf.highHalf, b.highHalf.highHalf)))
}

@inline(__always) func one(_ a: Float16x, _ op: (Float4) -> Float4) -> Float16x {
    Float16x(lowHalf: Float8(lowHalf: op(a.lowHalf.lowHalf), highHalf: op(a.lowHalf.highHalf)),
            highHalf: Float8(lowHalf: op(a.highHalf.lowHalf), highHalf: op(a.highHalf.highHalf)))
}
#endif

@inline(__always) func vmin(_ a: Float16x, _ b: Float16x) -> Float16x {
    #if arch(x86_64)
    pair(a, b, _mm_min_ps)
    #else
    a.replacing(with: b, where: b .< a)
    #endif
}

@inline(__always) func vmax(_ a: Float16x, _ b: Float16x) -> Float16x {
    #if arch(x86_64)
    pair(a, b, _mm_max_ps)
    #else
    a.replacing(with: b, where: b .> a)
    #endif
}

/// `min(max(x, lo), hi)` lane by lane (no NaNs here).
@inline(__always) func clamp16(_ x: Float16x, _ lo: Float, _ hi: Float) -> Float16x {
    vmin(vmax(x, Float16x(repeating: lo)), Float16x(repeating: hi))
}

/// The correctly rounded square root (`sqrtps`).
@inline(__always) func vsqrt(_ x: Float16x) -> Float16x {
    #if arch(x86_64)
    one(x, _mm_sqrt_ps)
    #else
    Float16x((0..<16).map { x[$0].squareRoot() })
    #endif
}

/// A lane mask: a vector whose lanes are all ones where a comparison holds, else zeros.
typealias Mask16 = Float16x

@inline(__always) func bits16(_ x: Float16x) -> SIMD16<Int32> { unsafeBitCast(x, to: SIMD16<Int32>.self) }
@inline(__always) func float16(bits: SIMD16<Int32>) -> Float16x { unsafeBitCast(bits, to: Float16x.self) }

@inline(__always) func vequal(_ a: Float16x, _ b: Float16x) -> Mask16 {
    #if arch(x86_64)
    pair(a, b, _mm_cmpeq_ps)
    #else
    float16(bits: SIMD16<Int32>(repeating: 0).replacing(with: -1, where: a .== b))
    #endif
}

@inline(__always) func vless(_ a: Float16x, _ b: Float16x) -> Mask16 {
    #if arch(x86_64)
    pair(a, b, _mm_cmplt_ps)
    #else
    float16(bits: SIMD16<Int32>(repeating: 0).replacing(with: -1, where: a .< b))
    #endif
}

/// Bitwise `a & b`, `a | b`, `a ^ b` and `a & ~mask` of the lanes' bits.
@inline(__always) func vand(_ a: Float16x, _ b: Float16x) -> Float16x {
    #if arch(x86_64)
    pair(a, b, _mm_and_ps)
    #else
    float16(bits: bits16(a) & bits16(b))
    #endif
}

@inline(__always) func vor(_ a: Float16x, _ b: Float16x) -> Float16x {
    #if arch(x86_64)
    pair(a, b, _mm_or_ps)
    #else
    float16(bits: bits16(a) | bits16(b))
    #endif
}

@inline(__always) func vxor(_ a: Float16x, _ b: Float16x) -> Float16x {
    #if arch(x86_64)
    pair(a, b, _mm_xor_ps)
    #else
    float16(bits: bits16(a) ^ bits16(b))
    #endif
}

@inline(__always) func vandNot(_ a: Float16x, _ mask: Mask16) -> Float16x {
    #if arch(x86_64)
    pair(mask, a, _mm_andnot_ps)
    #else
    float16(bits: bits16(a) & ~bits16(mask))
    #endif
}

/// A float whose bit pattern is `bits` in every lane.
@inline(__always) func splat(bits: UInt32) -> Float16x { Float16x(repeating: Float(bitPattern: bits)) }

/// `mask ? a : 0`.
@inline(__always) func vkeep(_ a: Float16x, _ mask: Mask16) -> Float16x { vand(a, mask) }

/// `mask ? a : b`.
@inline(__always) func vselect(_ mask: Mask16, _ a: Float16x, _ b: Float16x) -> Float16x { vor(vand(a, mask), vandNot(b, mask)) }

/// `2^n` for the integer `n` held in the low bits of `shifted = n + 1.5·2^23`
/// (two's complement, |n| < 2^22): `(bits(shifted) − bits(1.5·2^23) + 127) << 23`.
@inline(__always) func vpow2(shifted: Float16x) -> Float16x {
    let bias = Int32(bitPattern: Float(12_582_912).bitPattern) &- 127
    #if arch(x86_64)
    let b = _mm_set1_epi32(bias)
    return one(shifted) { _mm_castsi128_ps(_mm_slli_epi32(_mm_sub_epi32(_mm_castps_si128($0), b), 23)) }
    #else
    return float16(bits: (bits16(shifted) &- bias) &<< 23)
    #endif
}

/// The biased exponent field of positive floats, as `float(2^23 + field)` (bits `field | 0x4B00_0000`).
@inline(__always) func vexponentField(_ x: Float16x) -> Float16x {
    #if arch(x86_64)
    return vor(one(x) { _mm_castsi128_ps(_mm_srli_epi32(_mm_castps_si128($0), 23)) }, splat(bits: 0x4B00_0000))
    #else
    return float16(bits: (bits16(x) &>> 23) | 0x4B00_0000)
    #endif
}

/// `(e, m)` with `x = 2^e · m`, `m ∈ [√½, √2)`, for positive normal `x` (see `fastPow`).
@inline(__always) func vlog2Split(_ x: Float16x) -> (Float16x, Float16x) {
    #if arch(x86_64)
    let offset = _mm_set1_epi32(0x3F35_04F3), low = _mm_set1_epi32(0x007F_FFFF)
    func split(_ q: Float4) -> (Float4, Float4) {
        let i = _mm_sub_epi32(_mm_castps_si128(q), offset)
        return (_mm_cvtepi32_ps(_mm_srai_epi32(i, 23)), _mm_castsi128_ps(_mm_add_epi32(_mm_and_si128(i, low), offset)))
    }
    let (e0, m0) = split(x.lowHalf.lowHalf), (e1, m1) = split(x.lowHalf.highHalf)
    let (e2, m2) = split(x.highHalf.lowHalf), (e3, m3) = split(x.highHalf.highHalf)
    return (Float16x(lowHalf: Float8(lowHalf: e0, highHalf: e1), highHalf: Float8(lowHalf: e2, highHalf: e3)),
            Float16x(lowHalf: Float8(lowHalf: m0, highHalf: m1), highHalf: Float8(lowHalf: m2, highHalf: m3)))
    #else
    let i = bits16(x) &- 0x3F35_04F3
    return (Float16x(i &>> 23), float16(bits: (i & 0x007F_FFFF) &+ 0x3F35_04F3))
    #endif
}

/// Whether any lane is nonzero.
@inline(__always) func vanyNonzero(_ x: Float16x) -> Bool {
    #if arch(x86_64)
    let z = _mm_setzero_ps()
    let a = _mm_movemask_ps(_mm_cmpneq_ps(x.lowHalf.lowHalf, z)) | _mm_movemask_ps(_mm_cmpneq_ps(x.lowHalf.highHalf, z))
    let b = _mm_movemask_ps(_mm_cmpneq_ps(x.highHalf.lowHalf, z)) | _mm_movemask_ps(_mm_cmpneq_ps(x.highHalf.highHalf, z))
    return a | b != 0
    #else
    return any(x .!= 0)
    #endif
}

/// `fastExp` on 16 lanes.
@inline(__always)
func fastExp(_ x: Float16x) -> Float16x {
    let xc = clamp16(x, -87, 88)
    let magic: Float = 12_582_912
    let shifted = xc * 1.442_695_04 + magic
    let n = shifted - magic
    let r = (xc - n * 0.693_359_375) - n * -2.121_944_4e-4
    var p = Float16x(repeating: 1.987_569_15e-4)
    p = p * r + 1.398_199_95e-3
    p = p * r + 8.333_451_9e-3
    p = p * r + 4.166_579_59e-2
    p = p * r + 1.666_666_55e-1
    p = p * r + 5.000_000_12e-1
    let e = p * (r * r) + r + 1
    return e * vpow2(shifted: shifted)
}

/// `fastPow` on 16 lanes (`a ∈ [0, 1]`, `p >= 0`).
@inline(__always)
func fastPow(_ a: Float16x, _ p: Float) -> Float16x {
    let (e, m) = vlog2Split(vmax(a, Float16x(repeating: Float.leastNormalMagnitude)))
    let t = m - 1
    var l = Float16x(repeating: -0.206_860_46)
    l = l * t + 0.318_410_58
    l = l * t - 0.366_413_72
    l = l * t + 0.479_793_64
    l = l * t - 0.721_208_44
    l = l * t + 1.442_701_8
    let y = clamp16(p * (e + l * t), -126, 0)
    let magic: Float = 12_582_912
    let shifted = y + magic
    let f = y - (shifted - magic)
    var q = Float16x(repeating: 1.340_043_7e-3)
    q = q * f + 9.676_042e-3
    q = q * f + 5.550_327_2e-2
    q = q * f + 0.240_221_07
    q = q * f + 0.693_147_2
    q = q * f + 1.000_000_1
    return vkeep(q * vpow2(shifted: shifted), vless(Float16x(repeating: 0), a))
}
