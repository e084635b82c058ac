/// Where a BatchNorm sits relative to the layer it is folded into.
public enum BatchNormPosition: Sendable, Equatable {
    /// `layer -> bn` (AIMET's fold *backward*).
    case afterLayer
    /// `bn -> layer` (AIMET's fold *forward*).
    case beforeLayer
}

/// Batch-norm folding.
///
/// With `sigma = sqrt(var + eps)` and `s = gamma / sigma`:
/// - BN after the layer:  `W'[o] = W[o] * s[o]`,  `b' = beta + (b - mu) * s`.
/// - BN before the layer: `W'[:, i] = W[:, i] * s[i]`,
///   `b' = b + W.sum(k) @ (beta - mu * s)`.
/// Both are exact in real arithmetic; the folded layer computes `bn(layer(x))`
/// (resp. `layer(bn(x))`) to float32 rounding.
public enum BatchNormFold {
    /// Nil when `bn` at `position` can be folded into `layer`, else the reason.
    public static func unfoldableReason(_ layer: WeightLayer, _ bn: BatchNormParams,
                                        _ position: BatchNormPosition) -> String? {
        switch position {
        case .afterLayer:
            if layer.kind.isTransposed && layer.groups != 1 && layer.groups != layer.inChannels {
                return "\(layer.label) is a transposed conv with groups \(layer.groups) (neither 1 nor its \(layer.inChannels) input channels); a following BN cannot be folded into it"
            }
        case .beforeLayer:
            if layer.kind.isTransposed {
                return "\(layer.label) is transposed; a BN before it cannot be folded into it"
            }
            if layer.groups != 1 {
                return "\(layer.label) has groups \(layer.groups); a BN before it folds only into a layer with groups 1"
            }
            if layer.padded {
                return "\(layer.label) pads its input; the padding would see the BN shift as zeros, so a BN before it cannot be folded"
            }
        }
        return nil
    }

    /// Checks channel counts and foldability without changing anything.
    public static func check(_ layer: WeightLayer, _ bn: BatchNormParams,
                             _ position: BatchNormPosition) throws -> Bool {
        let channels = position == .afterLayer ? layer.outChannels : layer.inChannels
        guard bn.numFeatures == channels else {
            let side = position == .afterLayer ? "output" : "input"
            throw AimetError.shape("\(bn.label) has \(bn.numFeatures) features but \(layer.label) has \(channels) \(side) channels")
        }
        return unfoldableReason(layer, bn, position) == nil
    }

    /// Folds `bn` into `layer`. A layer without bias gains one. Throws (leaving
    /// `layer` unchanged) when the pair does not fit or cannot be folded.
    public static func fold(_ bn: BatchNormParams, into layer: inout WeightLayer,
                            position: BatchNormPosition) throws {
        guard try check(layer, bn, position) else {
            throw AimetError.unsupported(unfoldableReason(layer, bn, position)!)
        }
        let s = try bn.scale()
        let bias = layer.bias ?? [Float](repeating: 0, count: layer.outChannels)
        // Compute the new bias and bound the new weights first: a throw leaves the layer as it was.
        let newBias: [Float]
        switch position {
        case .afterLayer:
            try requireFinite(layer, ranges: layer.outputChannelRanges, s, bn)
            newBias = (0..<layer.outChannels).map { o in bn.beta[o] + (bias[o] - bn.runningMean[o]) * s[o] }
        case .beforeLayer:
            try requireFinite(layer, ranges: layer.inputChannelRanges, s, bn)
            let shift = (0..<bn.numFeatures).map { i in bn.beta[i] - bn.runningMean[i] * s[i] }
            let moved = layer.kernelSumProduct(shift)
            newBias = (0..<layer.outChannels).map { o in bias[o] + moved[o] }
        }
        if let i = newBias.firstNonFinite {
            throw AimetError.numeric("\(layer.label): folding \(bn.label) would make bias \(i) non-finite")
        }
        if position == .afterLayer { layer.scaleOutputChannels(by: s) } else { layer.scaleInputChannels(by: s) }
        layer.bias = newBias
    }

    private static func requireFinite(_ layer: WeightLayer, ranges: [Float], _ s: [Float], _ bn: BatchNormParams) throws {
        for c in ranges.indices where !(Double(ranges[c]) * Double(abs(s[c])) <= Double(Float.greatestFiniteMagnitude)) {
            throw AimetError.numeric("\(layer.label): folding \(bn.label) would overflow channel \(c) (range \(ranges[c]) × \(s[c]))")
        }
    }
}
