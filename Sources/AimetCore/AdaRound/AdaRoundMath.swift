#if canImport(Glibc)
import Glibc
#endif

/// The formulas of AdaRound, scalar, as the reference the fast
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
/// path does. (The vector kernel does the same arithmetic, with the correctly
/// rounded vector square root.)
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

// Plain scalar arithmetic and bit casts: the reference that the vector kernel
// (`aimetk_adaround_sweep`, Sources/CKernels) follows operation by operation,
// and what the scalar paths use.

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
