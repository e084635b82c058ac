import Glibc

/// Cross-layer scaling (Nagel et al. 2019 §4.1).
///
/// For a pair `L1 -> L2` joined through a positively homogeneous function
/// (ReLU, PReLU, nothing), rescaling channel i of L1's output by `1/S[i]` and
/// the matching input channel of L2 by `S[i]` leaves the pair's function
/// unchanged. Choosing `S[i] = r1[i] / sqrt(r1[i] * c2[i])` equalizes the
/// ranges: afterwards `r(W1') == c(W2') == sqrt(r1 * c2)` channel by channel.
public enum CrossLayerScaling {
    /// Scales a pair in place and returns `S` (one factor per channel between).
    public static func scalePair(_ l1: inout WeightLayer, _ l2: inout WeightLayer) throws -> [Float] {
        try requireConv(l1)
        try requireConv(l2)
        try requireJoined(l1, l2)
        let r1 = l1.outputChannelRanges
        let c2 = l2.inputChannelRanges
        let s = (0..<r1.count).map { i in
            sanitized(Double(r1[i]) / (Double(r1[i]) * Double(c2[i])).squareRoot())
        }
        // Every check before the first write, so a throw leaves both layers as they were.
        try requireFiniteRanges(l1, r1, dividedBy: s)
        try requireFiniteRanges(l2, c2, times: s)
        let b1 = try l1.bias.map { try scaledBias($0, l1, dividedBy: s) }
        l1.scaleOutputChannels(by: s, dividing: true)
        l1.bias = b1
        l2.scaleInputChannels(by: s)
        return s
    }

    /// Scales a depthwise-separable triplet `L1 -> DW -> L3` in place:
    /// `m = cbrt(r1 * rdw * c3)`, `S12 = r1 / m`, `S23 = m / c3`, after which
    /// all three ranges equal `m`. Returns `(S12, S23)`.
    public static func scaleTriplet(_ l1: inout WeightLayer, _ dw: inout WeightLayer,
                                    _ l3: inout WeightLayer) throws -> (s12: [Float], s23: [Float]) {
        for layer in [l1, dw, l3] { try requireConv(layer) }
        guard dw.isDepthwise else {
            throw AimetError.unsupported("\(dw.label) is the middle layer of a triplet but is not depthwise (groups \(dw.groups), \(dw.inChannels) in, \(dw.outChannels) out); a triplet needs groups == in == out channels")
        }
        try requireJoined(l1, dw)
        try requireJoined(dw, l3)
        let r1 = l1.outputChannelRanges, rdw = dw.outputChannelRanges, c3 = l3.inputChannelRanges
        var s12 = [Float](repeating: 1, count: r1.count)
        var s23 = s12
        for i in 0..<r1.count {
            let m = cbrt(Double(r1[i]) * Double(rdw[i]) * Double(c3[i]))
            s12[i] = sanitized(Double(r1[i]) / m)
            s23[i] = sanitized(m / Double(c3[i]))
        }
        let ratio = (0..<s12.count).map { s12[$0] / s23[$0] }
        try requireFiniteRanges(l1, r1, dividedBy: s12)
        try requireFiniteRanges(dw, rdw, times: ratio)
        try requireFiniteRanges(l3, c3, times: s23)
        let b1 = try l1.bias.map { try scaledBias($0, l1, dividedBy: s12) }
        let bdw = try dw.bias.map { try scaledBias($0, dw, dividedBy: s23) }
        l1.scaleOutputChannels(by: s12, dividing: true)
        l1.bias = b1
        dw.scaleOutputChannels(by: ratio)
        dw.bias = bdw
        l3.scaleInputChannels(by: s23)
        return (s12, s23)
    }

    /// Every scaled element stays within its channel's range times its factor:
    /// checking those bounds proves the result finite without another pass.
    static func requireFiniteRanges(_ layer: WeightLayer, _ ranges: [Float], times factors: [Float]) throws {
        for i in ranges.indices where !(Double(ranges[i]) * Double(factors[i]) <= Double(Float.greatestFiniteMagnitude)) {
            throw AimetError.numeric("\(layer.label): cross-layer scaling would overflow channel \(i) (range \(ranges[i]) × \(factors[i]))")
        }
    }

    static func requireFiniteRanges(_ layer: WeightLayer, _ ranges: [Float], dividedBy factors: [Float]) throws {
        try requireFiniteRanges(layer, ranges, times: factors.map { 1 / $0 })
    }

    static func scaledBias(_ bias: [Float], _ layer: WeightLayer, dividedBy s: [Float]) throws -> [Float] {
        let scaled = (0..<bias.count).map { bias[$0] / s[$0] }
        if let i = scaled.firstNonFinite {
            throw AimetError.numeric("\(layer.label): cross-layer scaling would make bias \(i) non-finite (\(bias[i]) / \(s[i]))")
        }
        return scaled
    }

    /// Scales a set of 2 (pair) or 3 (triplet) layers in place; returns one
    /// factor vector per pair of the set (`[S]` or `[S12, S23]`).
    public static func scaleSet(_ layers: inout [WeightLayer]) throws -> [[Float]] {
        var a = layers[0], b = layers[1]
        switch layers.count {
        case 2:
            let s = try scalePair(&a, &b)
            layers = [a, b]
            return [s]
        case 3:
            var c = layers[2]
            let (s12, s23) = try scaleTriplet(&a, &b, &c)
            layers = [a, b, c]
            return [s12, s23]
        default:
            throw AimetError.invalid("a CLS set has 2 layers (pair) or 3 (conv, depthwise, conv), got \(layers.count)")
        }
    }

    /// Dead or degenerate channels (0/0, x/0, 0) keep their scale: factor 1.
    static func sanitized(_ s: Double) -> Float {
        let f = Float(s)
        return f.isFinite && f != 0 ? f : 1
    }

    static func requireConv(_ layer: WeightLayer) throws {
        guard layer.kind.isConv else {
            throw AimetError.unsupported("\(layer.label) cannot be cross-layer scaled: only Conv1d, Conv2d, ConvTranspose1d and ConvTranspose2d layers can")
        }
    }

    static func requireJoined(_ first: WeightLayer, _ second: WeightLayer) throws {
        guard first.outChannels == second.inChannels else {
            throw AimetError.shape("\(first.label) has \(first.outChannels) output channels but \(second.label) has \(second.inChannels) input channels; they cannot form a CLS pair")
        }
    }
}
