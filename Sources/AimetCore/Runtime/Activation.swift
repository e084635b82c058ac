#if canImport(Glibc)
import Glibc
#endif
import CKernels

/// An elementwise activation function `y = act(x)` as ONNX defines it, with
/// the derivative torch's autograd uses. The one description of such a
/// function: the executor runs it (standalone, or fused into the epilogue of
/// a conv / batch-norm step) and AdaRound's loss applies it and its
/// derivative after a layer. `value` is the scalar reference; `apply` runs
/// long spans through the vectorized C kernels (`aimetk_activation`: exp,
/// tanh, erfc polynomials within 1e-6 relative of libm); Elu, Selu, Celu,
/// Softplus and Mish run the scalar reference on every span.
public enum Activation: Sendable, Equatable {
    /// The identity (no activation).
    case none
    /// `max(x, 0)`
    case relu
    /// `min(max(x, lo), hi)` (ONNX Clip: `lo > hi` gives `hi`; a NaN input stays NaN)
    case clip(Float, Float)
    /// `x >= 0 ? x : alpha·x`
    case leakyRelu(Float)
    /// `1 / (1 + e^-x)`
    case sigmoid
    /// `tanh(x)`
    case tanh
    /// `max(0, min(1, alpha·x + beta))` (torch's Hardsigmoid: alpha 1/6, beta 1/2)
    case hardSigmoid(alpha: Float, beta: Float)
    /// `x · max(0, min(1, x/6 + 1/2))`
    case hardSwish
    /// `gamma · (x > 0 ? x : alpha·(e^x − 1))` (Elu: gamma 1; Selu)
    case elu(alpha: Float, gamma: Float)
    /// `max(0, x) + min(0, alpha·(e^(x/alpha) − 1))`
    case celu(alpha: Float)
    /// `log(1 + e^x)`
    case softplus
    /// `x / (1 + |x|)`
    case softsign
    /// `x > alpha ? x : 0`
    case thresholdedRelu(alpha: Float)
    /// `x·Φ(x) = x/2 · (1 + erf(x/√2))`, or with `tanhApproximation`
    /// `x/2 · (1 + tanh(√(2/π)·(x + 0.044715·x³)))`
    case gelu(tanhApproximation: Bool)
    /// `x · tanh(softplus(x))`
    case mish
    /// `x · sigmoid(alpha·x)` (SiLU: alpha 1)
    case swish(alpha: Float)

    /// SiLU, `x · sigmoid(x)` (torch's export: `Mul(x, Sigmoid(x))`).
    public static let silu = Activation.swish(alpha: 1)

    /// `(lo, hi)` when the activation is `min(max(x, lo), hi)` (none, Relu, Clip):
    /// the C epilogue (`aimetk_bias_clamp`) and the depthwise kernel run it.
    var clampBounds: (lo: Float, hi: Float)? {
        switch self {
        case .none: return (-.infinity, .infinity)
        case .relu: return (0, .infinity)
        case .clip(let lo, let hi): return (lo, hi)
        default: return nil
        }
    }

    // MARK: - The scalar reference

    @inline(__always)
    private static func sigmoid(_ x: Float) -> Float { 1 / (1 + expf(-x)) }

    /// `log(1 + e^x)` without overflow (torch's threshold: linear above 20,
    /// where `log1p(e^-x) < 2.1e-9` is below float32 resolution of `x`).
    @inline(__always)
    private static func softplus(_ x: Float) -> Float { x > 20 ? x : log1pf(expf(x)) }

    /// √(2/π), the tanh approximation of GELU.
    static let geluK: Float = 0.797_884_56
    /// The cubic coefficient of the tanh approximation of GELU.
    static let geluC: Float = 0.044_715

    /// `act(x)`.
    @inline(__always)
    public func value(_ x: Float) -> Float {
        switch self {
        case .none: return x
        case .relu: return Swift.max(x, 0)
        case .clip(let lo, let hi): return Swift.min(Swift.max(x, lo), hi)
        case .leakyRelu(let a): return x >= 0 ? x : a * x
        case .sigmoid: return Self.sigmoid(x)
        case .tanh: return tanhf(x)
        // (`a·x + b` in one rounding, `x/6 + 1/2` as `(x + 3)/6`: exact near the ramp's foot, where they cancel.)
        case .hardSigmoid(let a, let b): return Swift.min(Swift.max(b.addingProduct(a, x), 0), 1)
        case .hardSwish: return x * Swift.min(Swift.max((x + 3) / 6, 0), 1)
        case .elu(let a, let g): return g * (x > 0 ? x : a * expm1f(x))
        case .celu(let a): return Swift.max(0, x) + Swift.min(0, a * expm1f(x / a))
        case .softplus: return Self.softplus(x)
        case .softsign: return x / (1 + abs(x))
        case .thresholdedRelu(let a): return x > a ? x : 0
        case .gelu(let approximate):
            // `(1 + tanh u)/2 = sigmoid(2u)` and `(1 + erf z) = erfc(−z)`: no cancellation for x < 0;
            // erfc in float64, so that rounding `x/√2` costs nothing where erfc falls steeply.
            if approximate {
                return x * Self.sigmoid(2 * Self.geluK * (x + Self.geluC * x * x * x))
            }
            return Float(0.5 * Double(x) * erfc(-Double(x) * 0.707_106_781_186_547_5))
        case .mish: return x * tanhf(Self.softplus(x))
        case .swish(let a): return x * Self.sigmoid(a * x)
        }
    }

    /// `d act / dx` (torch's backward formulas: Relu's gradient where `x > 0`,
    /// a clamp's strictly inside `(lo, hi)`, Hardsigmoid's strictly inside the
    /// ramp, Hardswish's `x/3 + 1/2` on `[−3, 3]`).
    public func derivative(_ x: Float) -> Float {
        switch self {
        case .none: return 1
        case .relu: return x > 0 ? 1 : 0
        case .clip(let lo, let hi): return x > lo && x < hi ? 1 : 0
        case .leakyRelu(let a): return x >= 0 ? 1 : a
        case .sigmoid:
            let s = Self.sigmoid(x)
            return s * (1 - s)
        case .tanh:
            let t = tanhf(x)
            return 1 - t * t
        case .hardSigmoid(let a, let b):
            let r = a * x + b
            return r > 0 && r < 1 ? a : 0
        case .hardSwish:
            return x < -3 ? 0 : (x <= 3 ? x / 3 + 0.5 : 1)
        case .elu(let a, let g): return g * (x > 0 ? 1 : a * expf(x))
        case .celu(let a): return x > 0 ? 1 : expf(x / a)
        case .softplus: return x > 20 ? 1 : Self.sigmoid(x)
        case .softsign:
            let d = 1 + abs(x)
            return 1 / (d * d)
        case .thresholdedRelu(let a): return x > a ? 1 : 0
        case .gelu(let approximate):
            if approximate {
                let k = Self.geluK, c = Self.geluC
                let t = tanhf(k * (x + c * x * x * x))
                return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * k * (1 + 3 * c * x * x)
            }
            let pdf = expf(-0.5 * x * x) * 0.398_942_28  // φ(x) = e^(−x²/2)/√(2π)
            return Float(0.5 * erfc(-Double(x) * 0.707_106_781_186_547_5)) + x * pdf
        case .mish:
            let t = tanhf(Self.softplus(x))
            return t + x * (1 - t * t) * (x > 20 ? 1 : Self.sigmoid(x))
        case .swish(let a):
            let s = Self.sigmoid(a * x)
            return s * (1 + a * x * (1 - s))
        }
    }

    // MARK: - Spans (the executor)

    /// Runs at least this long go to the C kernels (built for AVX-512, AVX2 and
    /// baseline x86-64); shorter ones stay in the Swift loops below (no call).
    static let vectorRun = 32

    /// The instruction set the C kernels run on (the processor's best).
    static let kernelISA = aimetk_best_isa()

    /// The C kernel's function and parameters for this activation; nil for
    /// the clamps (`aimetk_bias_clamp`) and the functions only the scalar loops run.
    var kernelCode: (kind: aimetk_activation_kind, a: Float, b: Float)? {
        switch self {
        case .sigmoid: return (AIMETK_ACT_SIGMOID, 0, 0)
        case .tanh: return (AIMETK_ACT_TANH, 0, 0)
        case .hardSigmoid(let a, let b): return (AIMETK_ACT_HARD_SIGMOID, a, b)
        case .hardSwish: return (AIMETK_ACT_HARD_SWISH, 0, 0)
        case .swish(let a): return (AIMETK_ACT_SWISH, a, 0)
        case .gelu(let approximate): return (approximate ? AIMETK_ACT_GELU_TANH : AIMETK_ACT_GELU, 0, 0)
        case .leakyRelu(let a): return (AIMETK_ACT_LEAKY_RELU, a, 0)
        case .softsign: return (AIMETK_ACT_SOFTSIGN, 0, 0)
        case .thresholdedRelu(let a): return (AIMETK_ACT_THRESHOLDED_RELU, a, 0)
        default: return nil
        }
    }

    /// Applies `y[i] = act(y[i] + bias + residual[i])` to `count` values in place
    /// (`residual` optional). This is the epilogue of every fused step. A clamp
    /// over a long run goes to `aimetk_bias_clamp`; otherwise plain scalar
    /// loops that LLVM vectorizes (on the SSE2 baseline) do it; both compute
    /// `(y + bias) + residual`, then `min(max(·, lo), hi)` as Swift's `min` and `max` do.
    @inline(__always)
    func apply(_ y: UnsafeMutablePointer<Float>, _ count: Int, bias: Float = 0, residual: UnsafePointer<Float>? = nil) {
        if self == .none && residual == nil && bias == 0 { return }
        if count >= Activation.vectorRun, let (lo, hi) = clampBounds {
            aimetk_bias_clamp(y, y, count, bias, residual, lo, hi, Activation.kernelISA)
            return
        }
        if count >= Activation.vectorRun, let (kind, a, b) = kernelCode {
            aimetk_activation(kind, a, b, y, y, count, bias, residual, Activation.kernelISA)
            return
        }
        switch self {
        case .none:
            if let r = residual {
                for i in 0..<count { y[i] = y[i] + bias + r[i] }
            } else if bias != 0 {
                for i in 0..<count { y[i] += bias }
            }
        case .relu:
            if let r = residual {
                for i in 0..<count { y[i] = Swift.max(y[i] + bias + r[i], 0) }
            } else {
                for i in 0..<count { y[i] = Swift.max(y[i] + bias, 0) }
            }
        case .clip(let lo, let hi):
            if let r = residual {
                for i in 0..<count { y[i] = Swift.min(Swift.max(y[i] + bias + r[i], lo), hi) }
            } else {
                for i in 0..<count { y[i] = Swift.min(Swift.max(y[i] + bias, lo), hi) }
            }
        default:
            if let r = residual {
                for i in 0..<count { y[i] = value(y[i] + bias + r[i]) }
            } else {
                for i in 0..<count { y[i] = value(y[i] + bias) }
            }
        }
    }

    /// `y[i] = act(x[i] + bias + residual[i])` for `count` values, in one pass
    /// (`x` and `y` distinct): the epilogue fused with a copy.
    @inline(__always)
    func apply(_ x: UnsafePointer<Float>, to y: UnsafeMutablePointer<Float>, _ count: Int, bias: Float,
               residual: UnsafePointer<Float>?) {
        if count >= Activation.vectorRun, let (lo, hi) = clampBounds {
            aimetk_bias_clamp(x, y, count, bias, residual, lo, hi, Activation.kernelISA)
            return
        }
        if count >= Activation.vectorRun, let (kind, a, b) = kernelCode {
            aimetk_activation(kind, a, b, x, y, count, bias, residual, Activation.kernelISA)
            return
        }
        switch (self, residual) {
        case (.none, nil):
            for i in 0..<count { y[i] = x[i] + bias }
        case (.relu, nil):
            for i in 0..<count { y[i] = Swift.max(x[i] + bias, 0) }
        case (.clip(let lo, let hi), nil):
            for i in 0..<count { y[i] = Swift.min(Swift.max(x[i] + bias, lo), hi) }
        default:
            y.update(from: x, count: count)
            apply(y, count, bias: bias, residual: residual)
        }
    }

    /// `y[i] = act(x[i])` for `count` values (`x` may equal `y`), in one pass.
    func apply(_ x: UnsafePointer<Float>, to y: UnsafeMutablePointer<Float>, _ count: Int) {
        if self != .none, count >= Activation.vectorRun, let (lo, hi) = clampBounds {
            aimetk_bias_clamp(x, y, count, 0, nil, lo, hi, Activation.kernelISA)
            return
        }
        if count >= Activation.vectorRun, let (kind, a, b) = kernelCode {
            aimetk_activation(kind, a, b, x, y, count, 0, nil, Activation.kernelISA)
            return
        }
        switch self {
        case .none:
            if UnsafePointer(y) != x { y.update(from: x, count: count) }
        case .relu:
            for i in 0..<count { y[i] = Swift.max(x[i], 0) }
        case .clip(let lo, let hi):
            for i in 0..<count { y[i] = Swift.min(Swift.max(x[i], lo), hi) }
        default:
            for i in 0..<count { y[i] = value(x[i]) }
        }
    }
}
