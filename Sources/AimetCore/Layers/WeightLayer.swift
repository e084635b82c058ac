/// The layer types whose weights the equalization techniques rewrite.
public enum LayerKind: Sendable, Equatable, CustomStringConvertible {
    case conv1d, conv2d, convTranspose1d, convTranspose2d, linear

    public var isTransposed: Bool { self == .convTranspose1d || self == .convTranspose2d }
    public var isConv: Bool { self != .linear }

    /// The weight rank this kind stores: `[O, I/g, K]`, `[O, I/g, kH, kW]`, `[O, I]`
    /// (transposed: `[I, O/g, ...]`).
    public var weightRank: Int {
        switch self {
        case .conv1d, .convTranspose1d: return 3
        case .conv2d, .convTranspose2d: return 4
        case .linear: return 2
        }
    }

    public var description: String {
        switch self {
        case .conv1d: return "Conv1d"
        case .conv2d: return "Conv2d"
        case .convTranspose1d: return "ConvTranspose1d"
        case .convTranspose2d: return "ConvTranspose2d"
        case .linear: return "Linear"
        }
    }
}

/// A conv / transposed conv / linear layer: its weight in torch's layout, an
/// optional bias, and the attributes the techniques depend on.
public struct WeightLayer: Sendable, Equatable {
    public var name: String
    public var kind: LayerKind
    public var groups: Int
    /// Whether the layer pads its input (a BN before it then cannot be folded).
    public var padded: Bool
    public var weight: Tensor
    public var bias: [Float]?

    /// Builds a layer after checking that `weight`, `groups` and `bias` fit `kind`.
    public init(name: String, kind: LayerKind, weight: Tensor, bias: [Float]?,
                groups: Int = 1, padded: Bool = false) throws {
        try self.init(name: name, kind: kind, weight: weight, bias: bias, groups: groups, padded: padded, checked: true)
    }

    /// `checked: false` skips only the finiteness scan, for values already checked.
    init(name: String, kind: LayerKind, weight: Tensor, bias: [Float]?, groups: Int, padded: Bool, checked: Bool) throws {
        self.name = name
        self.kind = kind
        self.groups = groups
        self.padded = padded
        self.weight = weight
        self.bias = bias
        try validate(finiteness: checked)
    }

    /// `'name'` for messages.
    var label: String { name.isEmpty ? "\(kind) layer" : "\(kind) '\(name)'" }

    private func validate(finiteness: Bool) throws {
        guard weight.rank == kind.weightRank else {
            throw AimetError.shape("\(label): weight must have \(kind.weightRank) dimensions, got shape \(weight.shape)")
        }
        guard weight.shape.allSatisfy({ $0 > 0 }) else {
            throw AimetError.shape("\(label): weight shape \(weight.shape) has an empty dimension")
        }
        guard groups >= 1 else { throw AimetError.invalid("\(label): groups must be >= 1, got \(groups)") }
        if kind == .linear && groups != 1 {
            throw AimetError.invalid("\(label): a linear layer has groups 1, got \(groups)")
        }
        // Axis 0 of a conv is Cout, of a transposed conv Cin: both split into groups.
        guard weight.shape[0] % groups == 0 else {
            throw AimetError.shape("\(label): weight dimension 0 (\(weight.shape[0])) is not divisible by groups \(groups)")
        }
        if let bias, bias.count != outChannels {
            throw AimetError.shape("\(label): bias has \(bias.count) entries, the layer has \(outChannels) output channels")
        }
        guard finiteness else { return }
        if let i = weight.firstNonFinite {
            throw AimetError.numeric("\(label): weight is not finite at flat index \(i) (\(weight.data[i]))")
        }
        if let bias, let i = bias.firstNonFinite {
            throw AimetError.numeric("\(label): bias is not finite at index \(i) (\(bias[i]))")
        }
    }

    // MARK: - Channel geometry

    /// Elements of one kernel (product of the spatial dims; 1 for linear).
    var kernelSize: Int { weight.shape.dropFirst(2).reduce(1, *) }

    public var outChannels: Int {
        kind.isTransposed ? weight.shape[1] * groups : weight.shape[0]
    }

    public var inChannels: Int {
        kind.isTransposed ? weight.shape[0] : weight.shape[1] * groups
    }

    /// `groups == Cin == Cout`: every channel is filtered on its own.
    public var isDepthwise: Bool { kind.isConv && groups == inChannels && groups == outChannels }

    /// The weight as `[a, b, k]` blocks: axis 0 is the output channel of a
    /// conv / linear and the input channel of a transposed conv; axis 1 (within
    /// a group) is the other one. Every channel operation below is a tight loop
    /// over contiguous kernels, so a pass runs at memory speed.
    var layout: KernelLayout {
        KernelLayout(a: weight.shape[0], b: weight.shape[1], k: kernelSize, groups: groups)
    }

    /// `r(W)[o] = max |W[o, ...]|` per output channel.
    public var outputChannelRanges: [Float] {
        weight.data.withUnsafeBufferPointer { kind.isTransposed ? layout.axis1Ranges($0) : layout.axis0Ranges($0) }
    }

    /// `c(W)[i] = max |W[:, i, ...]|` per input channel.
    public var inputChannelRanges: [Float] {
        weight.data.withUnsafeBufferPointer { kind.isTransposed ? layout.axis0Ranges($0) : layout.axis1Ranges($0) }
    }

    /// `W[o] *= factor[o]` (or `/=` with `dividing`) for every output channel o.
    mutating func scaleOutputChannels(by factor: [Float], dividing: Bool = false) {
        let layout = self.layout, transposed = kind.isTransposed
        weight.data.withUnsafeMutableBufferPointer { w in
            factor.withUnsafeBufferPointer { f in
                if transposed { layout.scaleAxis1(w, f, dividing) } else { layout.scaleAxis0(w, f, dividing) }
            }
        }
    }

    /// `W[:, i] *= factor[i]` for every input channel i.
    mutating func scaleInputChannels(by factor: [Float]) {
        let layout = self.layout, transposed = kind.isTransposed
        weight.data.withUnsafeMutableBufferPointer { w in
            factor.withUnsafeBufferPointer { f in
                if transposed { layout.scaleAxis0(w, f, false) } else { layout.scaleAxis1(w, f, false) }
            }
        }
    }

    /// `(W.sum(k) @ v)[o]`: the response of every output channel to a constant
    /// per-input-channel signal `v` (how a shift before the layer moves its bias).
    func kernelSumProduct(_ v: [Float]) -> [Float] {
        var acc = [Float](repeating: 0, count: outChannels)
        let layout = self.layout, transposed = kind.isTransposed
        weight.data.withUnsafeBufferPointer { w in
            v.withUnsafeBufferPointer { v in
                acc.withUnsafeMutableBufferPointer { acc in
                    var kernelSums = [Float](repeating: 0, count: layout.b)
                    kernelSums.withUnsafeMutableBufferPointer { sums in
                        for i in 0..<layout.a {
                            let base = layout.groupBase(i)
                            layout.kernelSums(w, row: i, into: sums)
                            if transposed {
                                let vi = v[i]
                                for j in 0..<layout.b { acc[base + j] += sums[j] * vi }
                            } else {
                                acc[i] += dot(UnsafeBufferPointer(sums), UnsafeBufferPointer(rebasing: v[base..<(base + layout.b)]))
                            }
                        }
                    }
                }
            }
        }
        return acc
    }
}

/// max |x| of finite floats, as the unsigned max of their bits without the
/// sign: for non-negative IEEE floats the integer order is the float order,
/// and the integer loop vectorizes.
@inline(__always)
func maxMagnitude(_ x: UnsafeBufferPointer<Float>) -> Float {
    x.withMemoryRebound(to: UInt32.self) { bits in
        var top: UInt32 = 0
        for word in bits { top = Swift.max(top, word & 0x7FFF_FFFF) }
        return Float(bitPattern: top)
    }
}

/// Σ a[j] * b[j] over 8 lanes (float32; the lanes keep rounding error low).
@inline(__always)
func dot(_ a: UnsafeBufferPointer<Float>, _ b: UnsafeBufferPointer<Float>) -> Float {
    var lanes = SIMD8<Float>()
    var j = 0
    let n = a.count
    while j + 8 <= n {
        lanes += UnsafeRawPointer(a.baseAddress! + j).loadUnaligned(as: SIMD8<Float>.self)
            * UnsafeRawPointer(b.baseAddress! + j).loadUnaligned(as: SIMD8<Float>.self)
        j += 8
    }
    var total = lanes.sum()
    while j < n {
        total += a[j] * b[j]
        j += 1
    }
    return total
}

/// A weight viewed as `[a, b, k]` with `groups` groups along axis 0: row `i`
/// belongs to group `i / (a / groups)`, whose axis-1 channels are
/// `group * b ..< group * b + b`.
struct KernelLayout {
    let a: Int, b: Int, k: Int, groups: Int

    @inline(__always) func groupBase(_ i: Int) -> Int { (i / (a / groups)) * b }

    /// The sum of each kernel of row `i`: `sums[j] = Σ_t w[i, j, t]`.
    @inline(__always)
    func kernelSums(_ w: UnsafeBufferPointer<Float>, row i: Int, into sums: UnsafeMutableBufferPointer<Float>) {
        let start = i * b * k
        if k == 1 {
            for j in 0..<b { sums[j] = w[start + j] }
            return
        }
        for j in 0..<b {
            var s: Float = 0
            for t in (start + j * k)..<(start + (j + 1) * k) { s += w[t] }
            sums[j] = s
        }
    }

    /// Max |w| of each axis-0 row (contiguous).
    func axis0Ranges(_ w: UnsafeBufferPointer<Float>) -> [Float] {
        let row = b * k
        return (0..<a).map { i in maxMagnitude(UnsafeBufferPointer(rebasing: w[(i * row)..<((i + 1) * row)])) }
    }

    /// Max |w| of each axis-1 channel, across rows and kernels.
    func axis1Ranges(_ w: UnsafeBufferPointer<Float>) -> [Float] {
        var r = [Float](repeating: 0, count: b * groups)
        if k == 1 {
            // 1x1 kernels / linear: an element-wise max of rows, on the bits as above.
            r.withUnsafeMutableBufferPointer { r in
                r.withMemoryRebound(to: UInt32.self) { top in
                    w.withMemoryRebound(to: UInt32.self) { bits in
                        for i in 0..<a {
                            let base = groupBase(i), row = i * b
                            for j in 0..<b { top[base + j] = Swift.max(top[base + j], bits[row + j] & 0x7FFF_FFFF) }
                        }
                    }
                }
            }
            return r
        }
        r.withUnsafeMutableBufferPointer { r in
            for i in 0..<a {
                let base = groupBase(i)
                for j in 0..<b {
                    let start = (i * b + j) * k
                    r[base + j] = Swift.max(r[base + j], maxMagnitude(UnsafeBufferPointer(rebasing: w[start..<(start + k)])))
                }
            }
        }
        return r
    }

    func scaleAxis0(_ w: UnsafeMutableBufferPointer<Float>, _ f: UnsafeBufferPointer<Float>, _ dividing: Bool) {
        let row = b * k
        for i in 0..<a {
            let s = f[i]
            if dividing {
                for t in (i * row)..<((i + 1) * row) { w[t] /= s }
            } else {
                for t in (i * row)..<((i + 1) * row) { w[t] *= s }
            }
        }
    }

    func scaleAxis1(_ w: UnsafeMutableBufferPointer<Float>, _ f: UnsafeBufferPointer<Float>, _ dividing: Bool) {
        if k == 1 && !dividing {
            for i in 0..<a {
                let base = groupBase(i), row = i * b
                for j in 0..<b { w[row + j] *= f[base + j] }
            }
            return
        }
        for i in 0..<a {
            let base = groupBase(i)
            for j in 0..<b {
                let s = f[base + j], start = (i * b + j) * k
                if dividing {
                    for t in start..<(start + k) { w[t] /= s }
                } else {
                    for t in start..<(start + k) { w[t] *= s }
                }
            }
        }
    }
}

/// BatchNorm parameters in inference form.
public struct BatchNormParams: Sendable, Equatable {
    public var name: String
    public var gamma: [Float]
    public var beta: [Float]
    public var runningMean: [Float]
    public var runningVar: [Float]
    public var eps: Float

    public init(name: String = "", gamma: [Float], beta: [Float],
                runningMean: [Float], runningVar: [Float], eps: Float) throws {
        self.name = name
        self.gamma = gamma
        self.beta = beta
        self.runningMean = runningMean
        self.runningVar = runningVar
        self.eps = eps
        try validate()
    }

    public var numFeatures: Int { gamma.count }

    var label: String { name.isEmpty ? "BatchNorm" : "BatchNorm '\(name)'" }

    private func validate() throws {
        let n = gamma.count
        for (field, values) in [("beta", beta), ("running_mean", runningMean), ("running_var", runningVar)]
        where values.count != n {
            throw AimetError.shape("\(label): \(field) has \(values.count) entries, weight (gamma) has \(n)")
        }
        for (field, values) in [("weight (gamma)", gamma), ("bias (beta)", beta),
                                ("running_mean", runningMean), ("running_var", runningVar)] {
            if let i = values.firstNonFinite {
                throw AimetError.numeric("\(label): \(field) is not finite at index \(i) (\(values[i]))")
            }
        }
        guard eps.isFinite, eps >= 0 else { throw AimetError.numeric("\(label): eps must be finite and >= 0, got \(eps)") }
        if let i = runningVar.firstIndex(where: { $0 < 0 }) {
            throw AimetError.numeric("\(label): running_var is negative at index \(i) (\(runningVar[i]))")
        }
    }

    /// `s = gamma / sqrt(var + eps)`; a zero sigma is an error, not a NaN.
    public func scale() throws -> [Float] {
        var s = [Float](repeating: 0, count: numFeatures)
        for c in 0..<numFeatures {
            let sigma = (runningVar[c] + eps).squareRoot()
            guard sigma > 0 else {
                throw AimetError.numeric("\(label): sigma = sqrt(running_var + eps) is 0 at channel \(c) (running_var \(runningVar[c]), eps \(eps))")
            }
            s[c] = gamma[c] / sigma
            guard s[c].isFinite else {
                throw AimetError.numeric("\(label): gamma / sigma overflows at channel \(c) (gamma \(gamma[c]), sigma \(sigma))")
            }
        }
        return s
    }
}
