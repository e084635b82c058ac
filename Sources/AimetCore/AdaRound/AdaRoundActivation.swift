/// The activation that follows a layer (its output's sole consumer), applied
/// to both the quantized and the float output inside AdaRound's
/// reconstruction loss: one `Activation` for every output channel, or PReLU's
/// slope per channel.
public enum AdaRoundActivation: Sendable, Equatable {
    /// The same elementwise function on every channel (`.none`: nothing follows).
    case elementwise(Activation)
    /// `y >= 0 ? y : slope[c] · y`, one slope per output channel (or one for all)
    case prelu([Float])

    /// No activation.
    public static let none = AdaRoundActivation.elementwise(.none)

    /// The activation of output channel `channel` (PReLU's slope resolved).
    func forChannel(_ channel: Int) -> Activation {
        switch self {
        case .elementwise(let f): return f
        case .prelu(let slopes): return .leakyRelu(slopes.count == 1 ? slopes[0] : slopes[channel])
        }
    }

    /// `act(y)` (for targets and tests).
    func apply(_ y: Float, channel: Int) -> Float {
        forChannel(channel).value(y)
    }

    /// Applies the activation in place to `count` values of channel `channel`.
    func apply(_ y: UnsafeMutablePointer<Float>, _ count: Int, channel: Int) {
        let act = forChannel(channel)
        if act == .none { return }
        for i in 0..<count { y[i] = act.value(y[i]) }
    }

    /// PReLU slopes must be one per channel or one in all.
    func check(channels: Int, layer: String) throws {
        if case .prelu(let slopes) = self, slopes.count != 1, slopes.count != channels {
            throw AimetError.shape("layer '\(layer)': the PRelu after it has \(slopes.count) slopes for \(channels) channels")
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
                          _ act: Activation, _ k: Float, _ gradient: Bool) -> Double {
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
        case .leakyRelu(let a):
            while j + 8 <= n {
                let v = y.load8(j) + bias(j)
                let negative = v .< 0
                let d = v.replacing(with: a * v, where: negative) - t.load8(j)
                y.store8((k * d).replacing(with: k * a * d, where: negative), j)
                j += 8
            }
        default:
            break  // the scalar loop below
        }
        while j < n {
            let v = y[j] + scalarBias(j), d = act.value(v) - t[j]
            switch act {
            case .none: y[j] = k * d
            case .relu: y[j] = v > 0 ? k * d : 0
            case .clip(let lo, let hi): y[j] = v > lo && v < hi ? k * d : 0
            case .leakyRelu(let a): y[j] = v >= 0 ? k * d : k * a * d
            default: y[j] = k * d * act.derivative(v)
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
    case .leakyRelu(let a):
        while j + 8 <= n {
            let v = y.load8(j) + bias(j)
            let d = v.replacing(with: a * v, where: v .< 0) - t.load8(j)
            lanes += d * d
            j += 8
        }
    default:
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
                  _ act: Activation, scale: Float, gradient: Bool) -> Double {
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
    /// when its catalogue entry says it is an activation (Relu, Clip with
    /// constant bounds, LeakyRelu, PRelu with a constant slope, Sigmoid, Tanh,
    /// Gelu, ...); or SiLU as ONNX spells it, `x · Sigmoid(x)`.
    func adaRoundActivation(after index: Int, opset: Int) -> AdaRoundActivation {
        var value = nodes[index].output
        let consumers = self.consumers
        let constants = knownValues()
        while true {
            if isSiLU(value, consumers) { return .elementwise(.silu) }
            guard let j = soleConsumer(of: value, consumers) else { return .none }
            let node = nodes[j]
            guard node.input == value, node.outputs.count == 1 else { return .none }
            guard let entry = OpCatalogue.entry(node.op) else { return .none }
            if entry.equalization == .passThrough && node.inputs.count == 1 {
                value = node.output
                continue
            }
            let context = NodeContext(node: node, opset: opset, types: [:], constants: constants, used: [])
            return entry.activation?(context) ?? .none
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
