import Dispatch

/// What AdaRound did to one layer.
public struct AdaRoundLayerReport: Sendable, Equatable {
    /// The node's name.
    public var name: String
    /// The weight parameter's name (the key of its encodings).
    public var weightName: String
    public var bitwidth: Int
    public var iterations: Int
    /// Wall time of the optimisation (not the caching of activations).
    public var seconds: Double
    public var iterationsPerSecond: Double
    /// Reconstruction error (mean over samples and output positions of the
    /// squared L2 norm over channels, after the activation) on all cached data,
    /// with round-to-nearest weights and with the adarounded (hard) weights.
    public var mseNearest: Double
    public var mseAdaRound: Double
    /// True when AdaRound did not beat round-to-nearest, so the layer keeps it.
    public var keptNearest: Bool
}

/// AdaRound's optimiser for one layer: learns the
/// rounding of the weight against cached inputs and float targets.
///
/// Conv (1-D / 2-D, any groups; depthwise runs a direct kernel), ConvTranspose
/// (1-D / 2-D) and linear layers (Gemm with `transA = 0`; MatMul with a
/// constant 2-D weight). The weight encodings are fixed when the optimiser is
/// built; `run` optimises and returns the hard-rounded weight, or the
/// round-to-nearest weight when that reconstructs the cached data at least as well.
public final class AdaRoundLayer {
    public let name: String
    /// The weight's encodings: one, or one per output channel.
    public let encodings: [Encoding]
    public let weightShape: [Int]
    let parameters: AdaRoundParameters
    let engine: ReconstructionEngine
    let weights: AdaRoundWeights
    /// The float weight in the engine's layout.
    let original: [Float]
    /// A linear weight stored `[in, out]` (Gemm `transB = 0`, MatMul) is optimised as `[out, in]`.
    let transposedLinear: Bool
    /// Round-to-nearest under the same encodings, in the engine's layout.
    private let nearestData: [Float]
    private var indices: [Int]
    private var permutation: [Int]

    /// - Parameters:
    ///   - node: the Conv / ConvTranspose / Gemm / MatMul node (attributes and op).
    ///   - weight: its weight (input 1); `bias`: its bias (input 2), if any.
    ///   - input: the cached layer input `[N, ...]` (all samples, any number).
    ///   - target: the float layer's output on the same samples (before the activation).
    ///   - activation: the activation after the layer, applied to both outputs in the loss.
    ///   - encodings: the weight's encodings (see `weightEncodings`).
    public init(node: Node, weight: Tensor, bias: Tensor?, input: Tensor, target: consuming Tensor,
                activation: AdaRoundActivation, encodings: [Encoding], parameters: AdaRoundParameters) throws {
        try parameters.validate()
        name = node.name
        self.encodings = encodings
        self.parameters = parameters
        weightShape = weight.shape
        let what = "layer '\(node.name)' (\(node.op))"
        guard !encodings.isEmpty, encodings.allSatisfy({ $0.numSteps == encodings[0].numSteps }) else {
            throw AimetError.invalid("\(what): the weight needs one encoding, or one per channel, all of one bitwidth")
        }
        if let i = weight.firstNonFinite { throw AimetError.numeric("\(what): the weight is not finite at flat index \(i)") }
        guard input.rank >= 2, target.rank >= 2, input.shape[0] == target.shape[0], input.shape[0] >= 1 else {
            throw AimetError.shape("\(what): cached input \(input.shape) and target \(target.shape) must hold the same samples along axis 0")
        }
        let workers = parameters.threads == 0 ? Parallel.processorCount : parameters.threads
        let samples = input.shape[0]
        let targetShape = target.shape
        func checkTarget(_ expected: [Int]) throws {
            guard targetShape == expected else {
                throw AimetError.shape("\(what): the cached target has shape \(targetShape), the layer computes \(expected)")
            }
        }
        func biasValues(_ count: Int, scale: Float = 1) throws -> [Float] {
            guard let bias else { return [Float](repeating: 0, count: count) }
            guard bias.count == count || bias.count == 1 else {
                throw AimetError.shape("\(what): the bias has \(bias.count) values for \(count) output channels")
            }
            return (0..<count).map { bias.data[bias.count == 1 ? 0 : $0] * scale }
        }
        var channelLayout: (inner: Int, channels: Int)
        var targets: [Float]
        switch node.op {
        case .conv:
            guard weight.rank == 3 || weight.rank == 4 else {
                throw AimetError.unsupported("\(what): AdaRound supports 1-D and 2-D convolutions, the weight has shape \(weight.shape)")
            }
            let groups = node.int("group", default: 1)
            let m = weight.shape[0], cg = weight.shape[1]
            guard groups >= 1, m % groups == 0 else {
                throw AimetError.invalid("\(what): \(m) output channels do not split into group = \(groups)")
            }
            let window = try WindowAttributes(node: node, kernel: Array(weight.shape.dropFirst(2)), rank: weight.rank - 2)
            guard input.rank == weight.rank, input.shape[1] == cg * groups else {
                throw AimetError.shape("\(what): the cached input has shape \(input.shape), the weight \(weight.shape) with group \(groups) expects [N, \(cg * groups), ...]")
            }
            let g = try window.geometry(input: Array(input.shape.dropFirst(2)))
            try checkTarget(weight.rank == 4 ? [samples, m, g.outH, g.outW] : [samples, m, g.outW])
            try activation.check(channels: m, layer: node.name)
            targets = Self.activated(&target, activation, channels: m, inner: g.outCount)
            let b = try biasValues(m)
            let sampled = parameters.positionSamples.map { $0 < min(parameters.batchSize, samples) * g.outCount } ?? false
            if cg == 1 && groups > 1 && m == groups && sampled {
                // Depthwise, the estimator: a direct kernel on the sampled positions.
                engine = DepthwisePositionsEngine(geometry: g, channels: m, samples: samples, inputs: input.data,
                                                  targets: targets, bias: b, activation: activation, workers: workers)
            } else if cg == 1 && groups > 1 {
                // Depthwise: the direct kernel on whole images.
                engine = DepthwiseEngine(geometry: g, channels: groups, outChannels: m, samples: samples, inputs: input.data,
                                         targets: targets, bias: b, activation: activation, workers: workers)
            } else if sampled {
                // The estimator, where it samples fewer positions than a mini-batch of whole images holds.
                engine = ConvPositionsEngine(geometry: g, groups: groups, inPerGroup: cg, outChannels: m, samples: samples,
                                             inputs: input.data, targets: targets, bias: b, activation: activation, workers: workers)
            } else {
                engine = ConvGEMMEngine(geometry: g, groups: groups, inPerGroup: cg, outChannels: m, samples: samples,
                                        inputs: input.data, targets: targets, bias: b, activation: activation, workers: workers)
            }
            channelLayout = (weight.count / m, m)
            transposedLinear = false
            original = weight.data
        case .convTranspose:
            guard weight.rank == 3 || weight.rank == 4 else {
                throw AimetError.unsupported("\(what): AdaRound supports 1-D and 2-D transposed convolutions, the weight has shape \(weight.shape)")
            }
            let groups = node.int("group", default: 1)
            let c = weight.shape[0], mg = weight.shape[1], rank = weight.rank - 2
            guard groups >= 1, c % groups == 0 else {
                throw AimetError.invalid("\(what): \(c) input channels do not split into group = \(groups)")
            }
            let window = try WindowAttributes(node: node, kernel: Array(weight.shape.dropFirst(2)), rank: rank)
            let padding = node.ints("output_padding") ?? [Int](repeating: 0, count: rank)
            guard padding.count == rank else {
                throw AimetError.invalid("\(what): output_padding \(padding) must have \(rank) values")
            }
            let outputShape = node.ints("output_shape").map { Array($0.suffix(rank)) }
            guard input.rank == weight.rank, input.shape[1] == c else {
                throw AimetError.shape("\(what): the cached input has shape \(input.shape), the weight \(weight.shape) expects [N, \(c), ...]")
            }
            let g = try window.transposedGeometry(input: Array(input.shape.dropFirst(2)), outputPadding: padding,
                                                   outputShape: outputShape)
            let m = mg * groups
            try checkTarget(rank == 2 ? [samples, m, g.inH, g.inW] : [samples, m, g.inW])
            try activation.check(channels: m, layer: node.name)
            targets = Self.activated(&target, activation, channels: m, inner: g.inCount)
            engine = ConvTransposeEngine(geometry: g, groups: groups, inChannels: c, outPerGroup: mg, samples: samples,
                                         inputs: input.data, targets: targets, bias: try biasValues(m), activation: activation,
                                         workers: workers)
            channelLayout = (g.kernelCount, mg)
            transposedLinear = false
            original = weight.data
        case .gemm, .matMul:
            guard weight.rank == 2 else {
                throw AimetError.unsupported("\(what): AdaRound supports 2-D linear weights, the weight has shape \(weight.shape)")
            }
            let transB = node.op == .gemm && node.int("transB", default: 0) != 0
            if node.op == .gemm && node.int("transA", default: 0) != 0 {
                throw AimetError.unsupported("\(what): Gemm with transA = 1 is not supported by AdaRound")
            }
            let fout = transB ? weight.shape[0] : weight.shape[1], fin = transB ? weight.shape[1] : weight.shape[0]
            guard input.shape.last == fin, node.op == .matMul || input.rank == 2 else {
                throw AimetError.shape("\(what): the cached input has shape \(input.shape), the weight \(weight.shape) expects [N, \(fin)]")
            }
            let rows = input.shape.dropFirst().dropLast().reduce(1, *)
            try checkTarget(Array(input.shape.dropLast()) + [fout])
            try activation.check(channels: fout, layer: node.name)
            targets = Self.activated(&target, activation, channels: fout, inner: 1)
            let alpha = node.op == .gemm ? node.float("alpha", default: 1) : 1
            let beta = node.op == .gemm ? node.float("beta", default: 1) : 1
            engine = LinearEngine(inFeatures: fin, outFeatures: fout, rows: rows, alpha: alpha, samples: samples,
                                  inputs: input.data, targets: targets, bias: try biasValues(fout, scale: beta),
                                  activation: activation, workers: workers)
            channelLayout = (fin, fout)
            transposedLinear = !transB
            original = transB ? weight.data : weight.transposed2D().data
        default:
            throw AimetError.unsupported("\(what): AdaRound supports Conv, ConvTranspose, Gemm and MatMul layers")
        }
        guard encodings.count == 1 || encodings.count == channelLayout.channels else {
            throw AimetError.shape("\(what): \(encodings.count) encodings for \(channelLayout.channels) output channels (expected 1 or \(channelLayout.channels))")
        }
        weights = AdaRoundWeights(weight: original, encodings: encodings, channelLayout: channelLayout, workers: workers)
        var nearest = Tensor(validShape: transposedLinear ? [weightShape[1], weightShape[0]] : weightShape, data: original)
        if encodings.count == 1 {
            encodings[0].fakeQuantize(&nearest.data)
        } else {
            try Encoding.fakeQuantize(&nearest, perChannel: encodings, axis: engine is ConvTransposeEngine ? 1 : 0)
        }
        nearestData = nearest.data
        let capacity = max(parameters.batchSize, parameters.positionSamples ?? 0, Self.evaluationChunk)
        indices = [Int](repeating: 0, count: capacity)
        permutation = Array(0..<samples)
    }

    /// Positions per evaluation chunk of a position-sampling engine.
    static let evaluationChunk = 4096

    /// `act(target)` channel by channel (`[N, channels, inner]`, or `[rows, channels]` with `inner` 1),
    /// the values taken out of `target` (in place when nothing else holds them: the targets of
    /// early layers are the largest arrays AdaRound keeps).
    private static func activated(_ target: inout Tensor, _ activation: AdaRoundActivation, channels: Int, inner: Int) -> [Float] {
        var out = target.data
        target.data = []
        guard activation != .none else { return out }
        out.withUnsafeMutableBufferPointer { buffer in
            let base = buffer.baseAddress!
            if inner == 1 {
                for r in 0..<(buffer.count / channels) {
                    for c in 0..<channels { base[r * channels + c] = activation.apply(base[r * channels + c], channel: c) }
                }
            } else {
                for plane in 0..<(buffer.count / inner) {
                    activation.apply(base + plane * inner, inner, channel: plane % channels)
                }
            }
        }
        return out
    }

    // MARK: - Encodings

    /// The output-channel axis of a layer's weight: 1 for ConvTranspose and for
    /// a linear weight stored `[in, out]`, else 0 (as QuantSim).
    public static func channelAxis(of node: Node) -> Int {
        switch node.op {
        case .convTranspose, .matMul: return 1
        case .gemm: return node.int("transB", default: 0) == 0 ? 1 : 0
        default: return 0
        }
    }

    /// The weight encodings of a layer: from `scheme`, per
    /// tensor or one per output channel.
    public static func weightEncodings(node: Node, weight: Tensor, scheme: QuantScheme, settings: EncodingSettings,
                                       perChannel: Bool) throws -> [Encoding] {
        if perChannel && weight.rank >= 2 {
            return try EncodingAnalyzer.computePerChannelEncodings(of: weight, axis: channelAxis(of: node), scheme: scheme,
                                                                   settings: settings)
        }
        return [try EncodingAnalyzer.computeEncoding(of: weight.data, scheme: scheme, settings: settings)]
    }

    // MARK: - Optimisation

    /// Optimises `V` for `iterations` steps: the whole
    /// schedule (warm start, β annealing, a fresh Adam state and mini-batch
    /// sequence from the seed), starting from the current `V` (the
    /// initialisation, for a new optimiser).
    public func optimize(iterations n: Int) {
        let p = parameters
        func rounding(_ it: Int) -> AdaRoundWeights.Rounding? {
            guard AdaRoundMath.roundingActive(iteration: it, iterations: n, warmStart: p.warmStart) else { return nil }
            return .init(beta: AdaRoundMath.beta(iteration: it, iterations: n, warmStart: p.warmStart, range: p.betaRange),
                         regParam: p.regParam)
        }
        guard n > 0 else { return }
        weights.adamM.update(repeating: 0)
        weights.adamV.update(repeating: 0)
        weights.prepare(rounding(0))
        var rng = SplitMix64(seed: p.seed)
        let adam = AdamSchedule(learningRate: p.learningRate)
        let positions = engine.takesPositions
        let samples = engine.sampleCount, perSample = engine.positionsPerSample
        let count = positions ? p.positionSamples! : min(p.batchSize, samples)
        let scale = 1 / Float(positions ? count : count * perSample)
        BLAS.singleThreaded {
            indices.withUnsafeMutableBufferPointer { idx in
                permutation.withUnsafeMutableBufferPointer { perm in
                    let batch = UnsafeBufferPointer(rebasing: idx[0..<count])
                    for it in 0..<n {
                        if positions {
                            let total = UInt64(samples * perSample)
                            for j in 0..<count { idx[j] = Int(rng.below(total)) }
                        } else {
                            // A uniform random subset (AIMET: randperm(N)[:batch]): partial Fisher–Yates.
                            for j in 0..<count {
                                let k = j + Int(rng.below(UInt64(samples - j)))
                                perm.swapAt(j, k)
                                idx[j] = perm[j]
                            }
                        }
                        let next = it + 1 < n ? rounding(it + 1) : nil
                        if let fused = engine as? GradientRowsEngine {
                            let plan = weights.stepPlan(t: it + 1, adam: adam, next: next, prepareNext: it + 1 < n)
                            _ = fused.run(batch, weight: weights.soft.baseAddress!, gradient: weights.gradient.baseAddress!,
                                          scale: scale) { self.weights.step(plan, elements: $0) }
                            weights.finish(plan)
                        } else {
                            _ = engine.run(batch, weight: weights.soft.baseAddress!, gradient: weights.gradient.baseAddress!,
                                           scale: scale)
                            weights.step(t: it + 1, adam: adam, next: next, prepareNext: it + 1 < n)
                        }
                    }
                }
            }
        }
    }

    /// The reconstruction error of `weight` (the layer's layout) on all cached
    /// data: the mean over samples and output positions of the squared L2 norm
    /// over channels of `act(out) − act(target)`.
    public func reconstructionError(_ weight: Tensor) throws -> Double {
        guard weight.shape == weightShape else {
            throw AimetError.shape("layer '\(name)': weight of shape \(weight.shape), expected \(weightShape)")
        }
        return reconstructionError(engineLayout: transposedLinear ? weight.transposed2D().data : weight.data)
    }

    func reconstructionError(engineLayout weight: [Float]) -> Double {
        let samples = engine.sampleCount, perSample = engine.positionsPerSample
        let positions = engine.takesPositions
        let total = positions ? samples * perSample : samples
        let chunk = positions ? Self.evaluationChunk : max(1, parameters.batchSize)
        var sum = 0.0
        BLAS.singleThreaded {
            weight.withUnsafeBufferPointer { w in
                indices.withUnsafeMutableBufferPointer { idx in
                    var start = 0
                    while start < total {
                        let end = min(total, start + chunk)
                        for j in start..<end { idx[j - start] = j }
                        sum += engine.run(UnsafeBufferPointer(rebasing: idx[0..<(end - start)]), weight: w.baseAddress!,
                                          gradient: nil, scale: 1)
                        start = end
                    }
                }
            }
        }
        return sum / Double(samples * perSample)
    }

    /// The total loss (reconstruction mean on `samples` — sample or position
    /// indices, as the engine takes — plus the rounding loss) and its gradient
    /// with respect to `V` (engine layout), at `v`. For gradient checks.
    func objective(v: [Float], samples: [Int], rounding: AdaRoundWeights.Rounding?) -> (loss: Double, gradient: [Float]) {
        for e in 0..<weights.count { weights.v[e] = v[e] }
        weights.prepare(rounding)
        let perSample = engine.takesPositions ? 1 : engine.positionsPerSample
        let scale = 1 / Float(samples.count * perSample)
        var loss = 0.0
        BLAS.singleThreaded {
            samples.withUnsafeBufferPointer { idx in
                loss = engine.run(idx, weight: weights.soft.baseAddress!, gradient: nil, scale: 1) * Double(scale)
                _ = engine.run(idx, weight: weights.soft.baseAddress!, gradient: weights.gradient.baseAddress!, scale: scale)
            }
        }
        if let rounding { loss += AdaRoundMath.roundingLoss(v, beta: rounding.beta, regParam: rounding.regParam) }
        let gradient = (0..<weights.count).map { weights.gradient[$0] * weights.chain[$0] + weights.roundGrad[$0] }
        return (loss, gradient)
    }

    /// The hard-rounded weight of the current `V`, in the layer's layout.
    public var hardWeight: Tensor { layerLayout(weights.hardWeights()) }

    /// The round-to-nearest weight under the same encodings.
    public var nearestWeight: Tensor { layerLayout(nearest()) }

    private func nearest() -> [Float] { nearestData }

    private func layerLayout(_ data: [Float]) -> Tensor {
        if transposedLinear { return Tensor(validShape: [weightShape[1], weightShape[0]], data: data).transposed2D() }
        return Tensor(validShape: weightShape, data: data)
    }

    /// Optimises, then picks the weight: hard-rounded when it reconstructs the
    /// cached data strictly better than round-to-nearest, else round-to-nearest.
    public func run(iterations: Int, weightName: String = "") -> (weight: Tensor, report: AdaRoundLayerReport) {
        let nearestData = nearest()
        let mseNearest = reconstructionError(engineLayout: nearestData)
        let start = DispatchTime.now().uptimeNanoseconds
        optimize(iterations: iterations)
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        let hard = weights.hardWeights()
        let mseAdaRound = reconstructionError(engineLayout: hard)
        let keep = !(mseAdaRound < mseNearest)
        let report = AdaRoundLayerReport(name: name, weightName: weightName, bitwidth: encodings[0].bitwidth,
                                         iterations: iterations, seconds: seconds,
                                         iterationsPerSecond: seconds > 0 ? Double(iterations) / seconds : 0,
                                         mseNearest: mseNearest, mseAdaRound: mseAdaRound, keptNearest: keep)
        return (layerLayout(keep ? nearestData : hard), report)
    }
}

/// SplitMix64: the seeded generator of the mini-batch draws.
struct SplitMix64 {
    private var state: UInt64
    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in `0 ..< bound` (multiply-high; bias below 2^-40 for the bounds used here).
    mutating func below(_ bound: UInt64) -> UInt64 {
        next().multipliedFullWidth(by: bound).high
    }
}
