#if canImport(Glibc)
import Glibc
#endif
import CKernels

/// A pointwise activation, standalone (Relu, Clip, LeakyRelu, Sigmoid nodes)
/// or fused into the epilogue of a conv / batch-norm step.
enum Activation: Sendable, Equatable {
    case none
    /// `max(x, 0)`
    case relu
    /// `min(max(x, lo), hi)` (ONNX Clip; a NaN input stays NaN)
    case clip(Float, Float)
    /// `x >= 0 ? x : alpha * x`
    case leakyRelu(Float)
    /// `1 / (1 + exp(-x))`
    case sigmoid

    /// `(lo, hi)` when the activation is `min(max(x, lo), hi)` (none, Relu, Clip):
    /// the C epilogue (`aimetk_bias_clamp`) and the depthwise kernel run it.
    var clampBounds: (lo: Float, hi: Float)? {
        switch self {
        case .none: return (-.infinity, .infinity)
        case .relu: return (0, .infinity)
        case .clip(let lo, let hi): return (lo, hi)
        case .leakyRelu, .sigmoid: return nil
        }
    }

    /// Runs at least this long go to the C epilogue (built for AVX-512, AVX2 and
    /// baseline x86-64); shorter ones stay in the Swift loops below (no call).
    static let vectorRun = 32

    /// The instruction set the C epilogue runs on (the processor's best).
    static let kernelISA = aimetk_best_isa()

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
        case .leakyRelu(let alpha):
            for i in 0..<count {
                let v = y[i] + bias + (residual?[i] ?? 0)
                y[i] = v >= 0 ? v : alpha * v
            }
        case .sigmoid:
            for i in 0..<count {
                let v = y[i] + bias + (residual?[i] ?? 0)
                y[i] = 1 / (1 + expf(-v))
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
        switch self {
        case .none:
            if UnsafePointer(y) != x { y.update(from: x, count: count) }
        case .relu:
            for i in 0..<count { y[i] = Swift.max(x[i], 0) }
        case .clip(let lo, let hi):
            for i in 0..<count { y[i] = Swift.min(Swift.max(x[i], lo), hi) }
        default:
            if UnsafePointer(y) != x { y.update(from: x, count: count) }
            apply(y, count)
        }
    }

}
