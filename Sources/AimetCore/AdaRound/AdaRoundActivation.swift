#if canImport(Glibc)
import Glibc
#endif

/// The activation that follows a layer (its output's sole consumer), applied
/// to both the quantized and the float output inside AdaRound's
/// reconstruction loss (SPEC §6 step 5).
public enum AdaRoundActivation: Sendable, Equatable {
    case none
    /// `max(y, 0)`
    case relu
    /// `min(max(y, lo), hi)` (ReLU6 is `clip(0, 6)`)
    case clip(Float, Float)
    /// `y >= 0 ? y : alpha · y`
    case leakyRelu(Float)
    /// `y >= 0 ? y : slope[c] · y`, one slope per output channel (or one for all)
    case prelu([Float])
    /// Sigmoid, Tanh, HardSigmoid, HardSwish, Elu, Selu, Celu, Softplus, Softsign, ThresholdedRelu, Gelu, Mish, SiLU
    case pointwise(PointwiseActivation)

    /// The activation of output channel `channel` (PReLU's slope resolved).
    func forChannel(_ channel: Int) -> ChannelActivation {
        switch self {
        case .none: return .none
        case .relu: return .relu
        case .clip(let lo, let hi): return .clip(lo, hi)
        case .leakyRelu(let alpha): return .leaky(alpha)
        case .prelu(let slopes): return .leaky(slopes.count == 1 ? slopes[0] : slopes[channel])
        case .pointwise(let f): return .pointwise(f)
        }
    }

    /// `act(y)` (for targets and tests).
    func apply(_ y: Float, channel: Int) -> Float {
        forChannel(channel).value(y)
    }

    /// Applies the activation in place to `count` values of channel `channel`.
    func apply(_ y: UnsafeMutablePointer<Float>, _ count: Int, channel: Int) {
        let act = forChannel(channel)
        if case .none = act { return }
        for i in 0..<count { y[i] = act.value(y[i]) }
    }

    /// PReLU slopes must be one per channel or one in all.
    func check(channels: Int, layer: String) throws {
        if case .prelu(let slopes) = self, slopes.count != 1, slopes.count != channels {
            throw AimetError.shape("layer '\(layer)': the PRelu after it has \(slopes.count) slopes for \(channels) channels")
        }
    }
}

/// One channel's activation, resolved for the inner loops. The derivative
/// follows torch: relu `y > 0`, clamp/hardtanh `lo < y < hi`, leaky `y > 0 ? 1 : alpha`,
/// the others `PointwiseActivation.derivative`.
enum ChannelActivation {
    case none
    case relu
    case clip(Float, Float)
    case leaky(Float)
    case pointwise(PointwiseActivation)

    @inline(__always)
    func value(_ y: Float) -> Float {
        switch self {
        case .none: return y
        case .relu: return Swift.max(y, 0)
        case .clip(let lo, let hi): return Swift.min(Swift.max(y, lo), hi)
        case .leaky(let a): return y >= 0 ? y : a * y
        case .pointwise(let f): return f.value(y)
        }
    }
}

// MARK: - Loss epilogues

/// `d = act(y + b) − t` over `n` values with `b` from `bias(j)` (8 at a time):
/// writes `k·d·act'(y + b)` over `y`, or (without `gradient`) returns `Σ d²`.
/// One loop per activation, so each vectorizes.
@inline(__always)
private func epilogueLoop(_ y: UnsafeMutablePointer<Float>, _ t: UnsafePointer<Float>, _ n: Int,
                          _ bias: (Int) -> SIMD8<Float>, _ scalarBias: (Int) -> Float,
                          _ act: ChannelActivation, _ k: Float, _ gradient: Bool) -> Double {
    var j = 0
    if gradient {
        switch act {
        case .none:
            while j + 8 <= n { y.store8(k * (y.load8(j) + bias(j) - t.load8(j)), j); j += 8 }
        case .relu:
            while j + 8 <= n {
                let v = y.load8(j) + bias(j)
                y.store8((k * (v - t.load8(j))).replacing(with: 0, where: v .<= 0), j)
                j += 8
            }
        case .clip(let lo, let hi):
            while j + 8 <= n {
                let v = y.load8(j) + bias(j)
                y.store8((k * (v - t.load8(j))).replacing(with: 0, where: (v .<= lo) .| (v .>= hi)), j)
                j += 8
            }
        case .leaky(let a):
            while j + 8 <= n {
                let v = y.load8(j) + bias(j)
                let negative = v .< 0
                let d = v.replacing(with: a * v, where: negative) - t.load8(j)
                y.store8((k * d).replacing(with: k * a * d, where: negative), j)
                j += 8
            }
        case .pointwise:
            break  // the scalar loop below
        }
        while j < n {
            let v = y[j] + scalarBias(j), d = act.value(v) - t[j]
            switch act {
            case .none: y[j] = k * d
            case .relu: y[j] = v > 0 ? k * d : 0
            case .clip(let lo, let hi): y[j] = v > lo && v < hi ? k * d : 0
            case .leaky(let a): y[j] = v >= 0 ? k * d : k * a * d
            case .pointwise(let f): y[j] = k * d * f.derivative(v)
            }
            j += 1
        }
        return 0
    }
    var lanes = SIMD8<Float>()
    switch act {
    case .none:
        while j + 8 <= n { let d = y.load8(j) + bias(j) - t.load8(j); lanes += d * d; j += 8 }
    case .relu:
        while j + 8 <= n {
            let v = y.load8(j) + bias(j)
            let d = v.replacing(with: 0, where: v .< 0) - t.load8(j)
            lanes += d * d
            j += 8
        }
    case .clip(let lo, let hi):
        while j + 8 <= n {
            let v = y.load8(j) + bias(j)
            let d = v.replacing(with: lo, where: v .< lo).replacing(with: hi, where: v .> hi) - t.load8(j)
            lanes += d * d
            j += 8
        }
    case .leaky(let a):
        while j + 8 <= n {
            let v = y.load8(j) + bias(j)
            let d = v.replacing(with: a * v, where: v .< 0) - t.load8(j)
            lanes += d * d
            j += 8
        }
    case .pointwise:
        break  // the scalar loop below
    }
    var sum = Double(lanes.sum())
    while j < n {
        let d = act.value(y[j] + scalarBias(j)) - t[j]
        sum += Double(d * d)
        j += 1
    }
    return sum
}

/// The loss epilogue over one row of outputs of a single channel:
/// `y ← y + bias`, `d = act(y) − target`; returns `Σ d²` when `gradient` is
/// false, else writes `∂(scale·Σ d²)/∂y = 2·scale·d·act'(y)` over `y` and returns 0.
@inline(__always)
func lossEpilogue(_ y: UnsafeMutablePointer<Float>, _ target: UnsafePointer<Float>, _ n: Int, bias: Float,
                  _ act: ChannelActivation, scale: Float, gradient: Bool) -> Double {
    let b = SIMD8<Float>(repeating: bias)
    return epilogueLoop(y, target, n, { _ in b }, { _ in bias }, act, 2 * scale, gradient)
}

/// The same over one sample's row of channels (channels-last data): `bias[c]`
/// per channel, and the activation uniform or, for PReLU, `slopes[c]`.
@inline(__always)
func lossEpilogueChannels(_ y: UnsafeMutablePointer<Float>, _ target: UnsafePointer<Float>, _ n: Int,
                          bias: UnsafePointer<Float>, _ act: AdaRoundActivation, slopes: UnsafePointer<Float>?,
                          scale: Float, gradient: Bool) -> Double {
    let k = 2 * scale
    guard let slopes else {
        return epilogueLoop(y, target, n, { bias.load8($0) }, { bias[$0] }, act.forChannel(0), k, gradient)
    }
    // PReLU: a slope per channel.
    var sum = 0.0
    for j in 0..<n {
        let v = y[j] + bias[j], a = slopes[j]
        let d = (v >= 0 ? v : a * v) - target[j]
        if gradient {
            y[j] = v >= 0 ? k * d : k * a * d
        } else {
            sum += Double(d * d)
        }
    }
    return sum
}

// MARK: - Finding the activation in a graph

extension Graph {
    /// The activation AdaRound applies after node `index`: the op of the sole
    /// consumer of its output (looking through Identity / inference Dropout),
    /// when that is Relu, Clip, LeakyRelu, PRelu with a constant slope or a
    /// `PointwiseActivation`; or SiLU as ONNX spells it, `x · Sigmoid(x)`.
    func adaRoundActivation(after index: Int, opset: Int) -> AdaRoundActivation {
        var value = nodes[index].output
        let consumers = self.consumers
        let constants = knownValues()
        while true {
            if isSiLU(value, consumers) { return .pointwise(.silu) }
            guard let j = soleConsumer(of: value, consumers) else { return .none }
            let node = nodes[j]
            guard node.input == value, node.outputs.count == 1 else { return .none }
            guard let entry = OpCatalogue.entry(node.op) else { return PointwiseActivation(node: node).map { .pointwise($0) } ?? .none }
            if entry.equalization == .passThrough && node.inputs.count == 1 {
                value = node.output
                continue
            }
            let context = NodeContext(node: node, opset: opset, types: [:], constants: constants, used: [])
            if let activation = entry.activation { return activation(context) ?? .none }
            return PointwiseActivation(node: node).map { .pointwise($0) } ?? .none
        }
    }

    /// Whether `value`'s only readers are a Sigmoid of it and a Mul of it with
    /// that Sigmoid (torch's SiLU exported to ONNX).
    private func isSiLU(_ value: String, _ consumers: [String: [Int]]) -> Bool {
        guard !outputNames.contains(value), let readers = consumers[value], readers.count == 2,
              let s = readers.first(where: { nodes[$0].op == .sigmoid }),
              let m = readers.first(where: { nodes[$0].op == .mul }) else { return false }
        let sigmoid = nodes[s], mul = nodes[m]
        return sigmoid.inputs == [value] && sigmoid.outputs.count == 1 && soleConsumer(of: sigmoid.output, consumers) == m
            && mul.inputs.count == 2 && Set(mul.inputs) == [value, sigmoid.output] && mul.outputs.count == 1
    }
}
/// A pointwise activation other than the piecewise-linear ones, as ONNX
/// defines it, with the derivative torch's autograd uses (AIMET's loss
/// applies the module that follows the layer: Sigmoid, Tanh, Hardsigmoid,
/// Hardswish, ELU, SELU, CELU, Softplus, Softsign, GELU, Mish, ...).
public enum PointwiseActivation: Sendable, Equatable {
    /// `1 / (1 + e^-x)`
    case sigmoid
    case tanh
    /// `clamp(alpha·x + beta, 0, 1)` (torch's Hardsigmoid: alpha 1/6, beta 1/2)
    case hardSigmoid(alpha: Float, beta: Float)
    /// `x · clamp(x/6 + 1/2, 0, 1)`
    case hardSwish
    /// `x >= 0 ? x : alpha·(e^x − 1)`, times `gamma` (SELU; ELU: gamma 1)
    case elu(alpha: Float, gamma: Float)
    /// `max(0, x) + min(0, alpha·(e^(x/alpha) − 1))`
    case celu(alpha: Float)
    /// `log(1 + e^x)`
    case softplus
    /// `x / (1 + |x|)`
    case softsign
    /// `x > alpha ? x : 0`
    case thresholdedRelu(alpha: Float)
    /// `x·Φ(x)`, or its tanh approximation
    case gelu(tanhApproximation: Bool)
    /// `x · tanh(softplus(x))`
    case mish
    /// `x · sigmoid(x)` (SiLU, Swish)
    case silu

    @inline(__always)
    private static func sigmoid(_ x: Float) -> Float { 1 / (1 + expf(-x)) }

    /// `log(1 + e^x)` without overflow (torch's threshold: linear above 20).
    @inline(__always)
    private static func softplus(_ x: Float) -> Float { x > 20 ? x : log1pf(expf(x)) }

    func value(_ x: Float) -> Float {
        switch self {
        case .sigmoid: return Self.sigmoid(x)
        case .tanh: return tanhf(x)
        case .hardSigmoid(let a, let b): return Swift.min(Swift.max(a * x + b, 0), 1)
        case .hardSwish: return x * Swift.min(Swift.max(x / 6 + 0.5, 0), 1)
        case .elu(let a, let g): return g * (x >= 0 ? x : a * (expf(x) - 1))
        case .celu(let a): return Swift.max(0, x) + Swift.min(0, a * (expf(x / a) - 1))
        case .softplus: return Self.softplus(x)
        case .softsign: return x / (1 + abs(x))
        case .thresholdedRelu(let a): return x > a ? x : 0
        case .gelu(let approximate):
            if approximate {
                let k: Float = 0.797_884_56  // √(2/π)
                return 0.5 * x * (1 + tanhf(k * (x + 0.044_715 * x * x * x)))
            }
            return 0.5 * x * (1 + erff(x * 0.707_106_78))
        case .mish: return x * tanhf(Self.softplus(x))
        case .silu: return x * Self.sigmoid(x)
        }
    }

    /// `d value / dx` (torch's backward formulas, e.g. Hardsigmoid's gradient
    /// only strictly inside the ramp, Hardswish's `x/3 + 1/2` on `[−3, 3]`).
    func derivative(_ x: Float) -> Float {
        switch self {
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
                let k: Float = 0.797_884_56
                let inner = k * (x + 0.044_715 * x * x * x)
                let t = tanhf(inner)
                return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * k * (1 + 3 * 0.044_715 * x * x)
            }
            let pdf = expf(-0.5 * x * x) * 0.398_942_28  // φ(x) = e^(−x²/2)/√(2π)
            return 0.5 * (1 + erff(x * 0.707_106_78)) + x * pdf
        case .mish:
            let t = tanhf(Self.softplus(x))
            return t + x * (1 - t * t) * (x > 20 ? 1 : Self.sigmoid(x))
        case .silu:
            let s = Self.sigmoid(x)
            return s * (1 + x * (1 - s))
        }
    }
}

extension PointwiseActivation {
    /// The activation an ONNX node computes, with its attributes (ONNX defaults), if it is one of these.
    init?(node: Node) {
        switch node.op.onnxType {
        case "Sigmoid": self = .sigmoid
        case "Tanh": self = .tanh
        case "HardSigmoid": self = .hardSigmoid(alpha: node.float("alpha", default: 0.2), beta: node.float("beta", default: 0.5))
        case "HardSwish": self = .hardSwish
        case "Elu": self = .elu(alpha: node.float("alpha", default: 1), gamma: 1)
        case "Selu": self = .elu(alpha: node.float("alpha", default: 1.673_263_2), gamma: node.float("gamma", default: 1.050_701))
        case "Celu": self = .celu(alpha: node.float("alpha", default: 1))
        case "Softplus": self = .softplus
        case "Softsign": self = .softsign
        case "ThresholdedRelu": self = .thresholdedRelu(alpha: node.float("alpha", default: 1))
        case "Gelu":
            guard case .string(let approximate)? = node.attributes["approximate"] ?? .string("none"),
                  approximate == "none" || approximate == "tanh" else { return nil }
            self = .gelu(tanhApproximation: approximate == "tanh")
        case "Mish": self = .mish
        default: return nil
        }
    }
}
