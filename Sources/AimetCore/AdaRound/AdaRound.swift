/// AIMET's `Adaround.apply_adaround` on a graph: learns, layer by
/// layer in model order, whether each weight rounds up or down.
///
/// For each Conv / ConvTranspose / Gemm / MatMul layer with a constant weight
/// (not shared with another node, not ignored):
/// 1. its weight encoding from the scheme, fixed (`AdaRoundLayer.weightEncodings`);
/// 2. its input, for every cached batch, from the model whose earlier layers
///    already carry their adarounded weights (activations in float), and its
///    target output from the original float model (`LayerData`: one pass over
///    the model for all layers);
/// 3. `AdaRoundLayer`: V, soft rounding, the loss with the activation that
///    follows the layer, Adam, hard rounding; nearest rounding when that is
///    not beaten on the cached data;
/// 4. the weight replaced by the chosen dequantized values.
///
/// Returns the model with adarounded weights, the weight encodings (AIMET's
/// JSON, `param_encodings` only) and a report per layer.
public enum AdaRound {
    public struct Result: Sendable {
        public var model: Model
        public var encodings: EncodingsFile
        public var report: [AdaRoundLayerReport]
    }

    /// Called after each layer: (layer name, index, layer count, report); an
    /// error it throws stops AdaRound and is rethrown.
    public typealias Progress = (String, Int, Int, AdaRoundLayerReport) throws -> Void

    /// A layer AdaRound optimises.
    struct Candidate {
        var node: Int
        var weightName: String
        var biasName: String?
        /// The node whose output is the layer's output: the layer itself, or
        /// the Add of a bias after a MatMul (a Linear exported as MatMul + Add).
        var end: Int
    }

    /// Runs AdaRound on `model` with the first `parameters.numBatches` batches
    /// of `inputs` (each batch: graph input name → tensor, batch axis 0).
    ///
    /// Throws `.invalidArgument` for no batches, fewer batches than
    /// `numBatches`, a bitwidth outside 2...16 or an unsupported scheme, and
    /// `.unknownName` for an ignore-list or override name that is no layer of the model.
    public static func apply(model: Model, inputs: [[String: Tensor]], parameters: AdaRoundParameters,
                             progress: Progress? = nil) throws -> Result {
        try parameters.validate()
        guard !inputs.isEmpty else {
            throw AimetError.invalid("AdaRound needs calibration data: the data loader is empty")
        }
        guard parameters.numBatches <= inputs.count else {
            throw AimetError.invalid("AdaRound needs num_batches = \(parameters.numBatches) batches, but the data loader has only \(inputs.count)")
        }
        // The cached activations and the reconstruction loss need finite data.
        for (b, batch) in inputs.prefix(parameters.numBatches).enumerated() {
            for (name, tensor) in batch.sorted(by: { $0.key < $1.key }) {
                if let i = tensor.firstNonFinite {
                    throw AimetError.numeric("input '\(name)' of batch \(b) holds \(tensor.data[i]) at index \(i); AdaRound's data must be finite")
                }
            }
        }
        var graph = model.graph
        try graph.validate()
        let candidates = findLayers(graph)
        let (ignored, overrides) = try resolveNames(graph, candidates, parameters)
        let selected = candidates.filter { !ignored.contains($0.node) }
        let bitwidths = selected.map { overrides[$0.node] ?? parameters.paramBitwidth }
        let iterations = parameters.resolvedIterations(bitwidths: bitwidths)
        let opset = model.onnxOpset ?? exportOpset
        var data = try LayerData(graph: graph, opset: opset, threads: parameters.threads,
                                 batches: Array(inputs.prefix(parameters.numBatches)),
                                 targets: Set(selected.map { graph.nodes[$0.end].output }))
        var entries: [EncodingsFile.Entry] = []
        var reports: [AdaRoundLayerReport] = []

        for (k, layer) in selected.enumerated() {
            let node = graph.nodes[layer.node]
            let weight = graph.params[layer.weightName]!
            let (input, target) = try data.layer(node: layer.node, inputName: node.input, end: layer.end,
                                                 targetName: graph.nodes[layer.end].output, what: "layer '\(node.name)'")
            let rule = parameters.config.paramRule("weight", op: node.op.onnxType)
            let settings = EncodingSettings(bitwidth: bitwidths[k], symmetric: rule.symmetric,
                                            strictSymmetric: parameters.config.strictSymmetric,
                                            unsignedSymmetric: parameters.config.unsignedSymmetric)
            let encodings: [Encoding]
            do {
                encodings = try AdaRoundLayer.weightEncodings(node: node, weight: weight, scheme: parameters.scheme,
                                                              settings: settings,
                                                              perChannel: parameters.perChannel ?? rule.perChannel)
            } catch let error as AimetError {
                throw AimetError(error.kind, "layer '\(node.name)', weight '\(layer.weightName)': \(error.message)")
            }
            var activation = graph.adaRoundActivation(after: layer.end, opset: opset)
            if case .prelu(let slopes) = activation, slopes.count != 1, slopes.count != outputChannels(node, weight) {
                activation = .none  // a PRelu broadcasting along another axis: not a per-channel activation
            }
            let optimiser = try AdaRoundLayer(node: node, weight: weight, bias: layer.biasName.map { graph.params[$0]! },
                                              input: input, target: consume target, activation: activation,
                                              encodings: encodings, parameters: parameters)
            let (rounded, report) = optimiser.run(iterations: iterations, weightName: layer.weightName)
            graph.params[layer.weightName] = rounded
            if k + 1 < selected.count { try data.parametersChanged(graph) }
            entries.append(EncodingsFile.Entry(name: layer.weightName, encodings: encodings))
            reports.append(report)
            try progress?(node.name, k, selected.count, report)
        }
        var result = model
        result.graph = graph
        return Result(model: result, encodings: EncodingsFile(paramEncodings: entries), report: reports)
    }

    // MARK: - Layers

    /// The output channels of a layer (the activation's channel axis).
    static func outputChannels(_ node: Node, _ weight: Tensor) -> Int {
        switch node.op {
        case .convTranspose: return weight.shape[1] * node.int("group", default: 1)
        case .gemm: return node.int("transB", default: 0) != 0 ? weight.shape[0] : weight.shape[weight.rank - 1]
        case .matMul: return weight.shape[weight.rank - 1]
        default: return weight.shape[0]
        }
    }

    /// The layers AdaRound can optimise, in model order.
    static func findLayers(_ graph: Graph) -> [Candidate] {
        let uses = graph.paramUseCounts
        var found: [Candidate] = []
        for (i, node) in graph.nodes.enumerated() {
            guard [.conv, .convTranspose, .gemm, .matMul].contains(node.op), node.inputs.count >= 2,
                  let weight = graph.params[node.inputs[1]], uses[node.inputs[1]] == 1,
                  graph.params[node.input] == nil, !graph.constants.contains(node.input) else { continue }
            var biasName: String?
            if node.inputs.count > 2, !node.inputs[2].isEmpty {
                guard let bias = graph.params[node.inputs[2]] else { continue }
                biasName = node.inputs[2]
                if node.op == .gemm {
                    let out = node.int("transB", default: 0) != 0 ? weight.shape.first : weight.shape.last
                    guard bias.count == 1 || bias.count == out else { continue }
                }
            }
            switch node.op {
            case .conv, .convTranspose:
                guard weight.rank == 3 || weight.rank == 4 else { continue }
            case .gemm:
                guard weight.rank == 2, node.int("transA", default: 0) == 0 else { continue }
            default:
                guard weight.rank == 2 else { continue }
            }
            var end = i
            if node.op == .matMul, let j = graph.soleConsumer(of: node.output), graph.nodes[j].op == .add,
               graph.nodes[j].inputs.count == 2, graph.nodes[j].outputs.count == 1 {
                let other = graph.nodes[j].inputs[0] == node.output ? graph.nodes[j].inputs[1] : graph.nodes[j].inputs[0]
                if other != node.output, let bias = graph.params[other], uses[other] == 1,
                   bias.count == weight.shape[weight.rank - 1], bias.shape.dropLast().allSatisfy({ $0 == 1 }) {
                    biasName = other
                    end = j
                }
            }
            found.append(Candidate(node: i, weightName: node.inputs[1], biasName: biasName, end: end))
        }
        return found
    }

    /// Resolves the ignore list and the bitwidth overrides to node indices. A
    /// name is a node's name, or a layer's weight name, with or without `.weight`.
    static func resolveNames(_ graph: Graph, _ candidates: [Candidate],
                             _ parameters: AdaRoundParameters) throws -> (ignored: Set<Int>, overrides: [Int: Int]) {
        var aliases: [String: Int] = [:]
        for (i, node) in graph.nodes.enumerated() where !node.name.isEmpty { aliases[node.name] = i }
        for layer in candidates {
            aliases[layer.weightName] = layer.node
            if layer.weightName.hasSuffix(".weight") { aliases[String(layer.weightName.dropLast(7))] = layer.node }
        }
        func lookup(_ name: String, _ what: String) throws -> Int {
            guard let i = aliases[name] else {
                let known = candidates.prefix(8).map { "'\(graph.nodes[$0.node].name)'" }.joined(separator: ", ")
                throw AimetError.unknownName("\(what) names '\(name)', which is not a layer of the model (its layers: \(known)\(candidates.count > 8 ? ", ..." : ""))")
            }
            return i
        }
        var ignored = Set<Int>()
        for name in parameters.ignore { ignored.insert(try lookup(name, "the ignore list")) }
        var overrides: [Int: Int] = [:]
        for (name, bits) in parameters.paramBitwidthOverrides.sorted(by: { $0.key < $1.key }) {
            overrides[try lookup(name, "the bitwidth override list")] = bits
        }
        return (ignored, overrides)
    }
}
