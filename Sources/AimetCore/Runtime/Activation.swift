#if canImport(Glibc)
import Glibc
#endif

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

    /// Applies `y[i] = act(y[i] + bias + residual[i])` to `count` values in place
    /// (`residual` optional). This is the epilogue of every fused step.
    @inline(__always)
    func apply(_ y: UnsafeMutablePointer<Float>, _ count: Int, bias: Float = 0, residual: UnsafePointer<Float>? = nil) {
        let b = Float8(repeating: bias)
        var i = 0
        switch self {
        case .none:
            if let r = residual {
                while i + 8 <= count { y.store8(y.load8(i) + b + r.load8(i), i); i += 8 }
                while i < count { y[i] = y[i] + bias + r[i]; i += 1 }
            } else if bias != 0 {
                while i + 8 <= count { y.store8(y.load8(i) + b, i); i += 8 }
                while i < count { y[i] += bias; i += 1 }
            }
        case .relu:
            let zero = Float8()
            if let r = residual {
                while i + 8 <= count { y.store8(pointwiseMax(y.load8(i) + b + r.load8(i), zero), i); i += 8 }
                while i < count { y[i] = relu(y[i] + bias + r[i]); i += 1 }
            } else {
                while i + 8 <= count { y.store8(pointwiseMax(y.load8(i) + b, zero), i); i += 8 }
                while i < count { y[i] = relu(y[i] + bias); i += 1 }
            }
        case .clip(let lo, let hi):
            let l = Float8(repeating: lo), h = Float8(repeating: hi)
            if let r = residual {
                while i + 8 <= count { y.store8(clamp8(y.load8(i) + b + r.load8(i), l, h), i); i += 8 }
                while i < count { y[i] = clamp(y[i] + bias + r[i], lo, hi); i += 1 }
            } else {
                while i + 8 <= count { y.store8(clamp8(y.load8(i) + b, l, h), i); i += 8 }
                while i < count { y[i] = clamp(y[i] + bias, lo, hi); i += 1 }
            }
        case .leakyRelu(let alpha):
            for j in 0..<count {
                let v = y[j] + bias + (residual?[j] ?? 0)
                y[j] = v >= 0 ? v : alpha * v
            }
        case .sigmoid:
            for j in 0..<count {
                let v = y[j] + bias + (residual?[j] ?? 0)
                y[j] = 1 / (1 + expf(-v))
            }
        }
    }

    /// `y[i] = act(x[i])` for `count` values (`x` may equal `y`).
    func apply(_ x: UnsafePointer<Float>, to y: UnsafeMutablePointer<Float>, _ count: Int) {
        if UnsafePointer(y) != x { y.update(from: x, count: count) }
        apply(y, count)
    }

    /// max(x, 0), keeping NaN (as ONNX Relu does).
    @inline(__always) private func relu(_ x: Float) -> Float { x < 0 ? 0 : x }
    @inline(__always) private func clamp(_ x: Float, _ lo: Float, _ hi: Float) -> Float {
        x < lo ? lo : (x > hi ? hi : x)
    }
    @inline(__always) private func pointwiseMax(_ x: Float8, _ zero: Float8) -> Float8 {
        x.replacing(with: zero, where: x .< zero)
    }
    @inline(__always) private func clamp8(_ x: Float8, _ lo: Float8, _ hi: Float8) -> Float8 {
        x.replacing(with: lo, where: x .< lo).replacing(with: hi, where: x .> hi)
    }
}
