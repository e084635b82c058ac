/// High-bias fold (Nagel et al. 2019 §4.2).
///
/// After CLS, layer1's bias may be large. The part of it that always passes
/// the activation unchanged can move into layer2's bias: with the BN that was
/// folded into layer1 rescaled by the pair's factor (`beta' = beta / S`,
/// `gamma' = gamma / S`), `c = max(0, beta' - 3|gamma'|)` when a ReLU is
/// between (pre-activations are assumed to stay above `beta' - 3|gamma'|`),
/// else `c = beta'`. Then `b1 -= c` and `b2 += W2.sum(k) @ c`.
public enum HighBiasFold {
    /// Folds one pair in place. Returns false (changing nothing) when either
    /// layer has no bias.
    @discardableResult
    public static func foldPair(_ l1: inout WeightLayer, _ l2: inout WeightLayer,
                                bnGamma gamma: [Float], bnBeta beta: [Float],
                                scale: [Float], reluBetween: Bool) throws -> Bool {
        let channels = l1.outChannels
        guard l2.inChannels == channels else {
            throw AimetError.shape("\(l1.label) has \(channels) output channels but \(l2.label) has \(l2.inChannels) input channels; they cannot form a high-bias-fold pair")
        }
        for (field, values) in [("BN gamma", gamma), ("BN beta", beta), ("scale factor", scale)] {
            guard values.count == channels else {
                throw AimetError.shape("\(field) has \(values.count) entries, \(l1.label) has \(channels) output channels")
            }
            if let i = values.firstNonFinite {
                throw AimetError.numeric("\(field) is not finite at index \(i) (\(values[i]))")
            }
        }
        if let i = scale.firstIndex(of: 0) {
            throw AimetError.numeric("scale factor is 0 at index \(i); CLS never returns 0")
        }
        guard let b1 = l1.bias, let b2 = l2.bias else { return false }
        let c = (0..<channels).map { i -> Float in
            let betaScaled = beta[i] / scale[i]
            let gammaScaled = gamma[i] / scale[i]
            return reluBetween ? Swift.max(0, betaScaled - 3 * abs(gammaScaled)) : betaScaled
        }
        let moved = l2.kernelSumProduct(c)
        let new1 = (0..<channels).map { b1[$0] - c[$0] }
        let new2 = (0..<b2.count).map { b2[$0] + moved[$0] }
        if let i = new1.firstNonFinite ?? new2.firstNonFinite {
            throw AimetError.numeric("high-bias fold of \(l1.label) into \(l2.label) would make a bias non-finite (index \(i))")
        }
        l1.bias = new1
        l2.bias = new2
        return true
    }
}
