#if canImport(Glibc)
import Glibc
#endif

/// NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss over scores
/// `x [N, C, d1, ..., dk]` and int64 targets `t [N, d1, ..., dk]`:
///
///     lp[n, c, d] = x[n, c, d]                               (NLL: x holds log-probabilities)
///     lp[n, c, d] = x[n, c, d] − log Σ_c' exp(x[n, c', d])   (SCE: log-softmax over C)
///     loss[n, d]  = −lp[n, t, d] · w[t],   w = weight input or 1
///
/// A target equal to `ignore_index` gives loss 0 and weight 0. `reduction`:
/// `none` → `loss` (shape of t); `sum` → Σ loss; `mean` → Σ loss / Σ w[t] (scalars).
/// SCE's optional second output is `lp` itself (shape of x). A target outside
/// `[0, C)` (and not ignored) is an error. Sums in float64.
final class LossKernel: Kernel {
    enum Kind: Sendable { case negativeLogLikelihood, softmaxCrossEntropy }
    enum Reduction: Sendable { case none, sum, mean }
    enum Output: Sendable { case loss, logProbability }
    let kind: Kind
    let reduction: Reduction
    let ignoreIndex: Int?
    let output: Output
    /// "node 'name' (Op)", for the error of a target out of range (found while running).
    let what: String

    init(_ kind: Kind, reduction: Reduction, ignoreIndex: Int?, output: Output = .loss, what: String) {
        self.what = what
        self.kind = kind
        self.reduction = reduction
        self.ignoreIndex = ignoreIndex
        self.output = output
    }

    func outputType(_ types: [ElementType]) throws -> ElementType {
        guard types[0] == .float32 else { throw AimetError.unsupported("scores of type \(types[0]) are not supported (float32 only)") }
        guard types[1] == .int64 else { throw AimetError.invalid("the target is \(types[1]), expected an integer tensor") }
        guard types.count < 3 || types[2] == .float32 else { throw AimetError.unsupported("weights of type \(types[2]) are not supported (float32 only)") }
        return .float32
    }

    func outputShape(_ shapes: [[Int]]) throws -> [Int] {
        let x = shapes[0], t = shapes[1]
        guard x.count >= 2 else { throw AimetError.shape("scores of shape \(x) have no class axis (rank >= 2 expected)") }
        let expected = [x[0]] + x.dropFirst(2)
        guard t == expected else { throw AimetError.shape("target of shape \(t) does not match scores \(x) (expected \(expected))") }
        if shapes.count > 2 {
            guard shapes[2] == [x[1]] else { throw AimetError.shape("weight of shape \(shapes[2]) is not [\(x[1])] (one per class)") }
        }
        if output == .logProbability { return x }
        return reduction == .none ? t : []
    }

    func isBatchSeparable(_ shapes: [[Int]]) -> Bool { output == .logProbability || reduction == .none }

    func run(_ args: KernelArgs) throws {
        let x = args.shapes[0]
        let n = x[0], classes = x[1], inner = Shapes.product(x, 2..<x.count)
        let scores = args.inputs[0], target = Int64Pointer(args.inputs[1])
        let weights: UnsafePointer<Float>? = args.inputs.count > 2 ? args.inputs[2] : nil
        // Log-probabilities: the scores themselves (NLL) or their log-softmax over the class axis.
        var logSoftmax: [Float] = []
        if kind == .softmaxCrossEntropy {
            logSoftmax = [Float](repeating: 0, count: n * classes * inner)
            logSoftmax.withUnsafeMutableBufferPointer { out in
                for line in 0..<(n * inner) {
                    let base = (line / inner) * classes * inner + line % inner
                    var top = -Float.infinity
                    for c in 0..<classes { top = max(top, scores[base + c * inner]) }
                    var sum: Double = 0
                    for c in 0..<classes { sum += exp(Double(scores[base + c * inner] - top)) }
                    let shift = Double(top) + log(sum)
                    for c in 0..<classes { out[base + c * inner] = Float(Double(scores[base + c * inner]) - shift) }
                }
            }
            if output == .logProbability {
                args.output.update(from: logSoftmax, count: logSoftmax.count)
                return
            }
        }
        var total: Double = 0, weightSum: Double = 0
        try logSoftmax.withUnsafeBufferPointer { buffer in
            let lp = kind == .softmaxCrossEntropy ? (buffer.baseAddress ?? scores) : scores
            for i in 0..<(n * inner) {
                let t = Int(target[i])
                var loss: Double = 0, w: Double = 0
                if t != ignoreIndex {
                    guard t >= 0 && t < classes else {
                        throw AimetError.invalid("\(what): target \(t) at index \(i) is outside the \(classes) classes")
                    }
                    w = weights.map { Double($0[t]) } ?? 1
                    loss = -Double(lp[(i / inner) * classes * inner + t * inner + i % inner]) * w
                }
                if reduction == .none { args.output[i] = Float(loss) }
                total += loss
                weightSum += w
            }
        }
        switch reduction {
        case .none: break
        case .sum: args.output[0] = Float(total)
        case .mean: args.output[0] = Float(total / weightSum)
        }
    }
}
