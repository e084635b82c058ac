/// AIMET's QuantizationSimModel on a graph: a copy of a model
/// whose weights and op outputs pass through fake quantizers.
///
/// Placement follows a `QuantSimConfig`: a weight quantizer for each Conv /
/// ConvTranspose / Gemm / MatMul weight parameter (biases not quantized by
/// default), an output quantizer for each node output the config quantizes —
/// inside a supergroup (e.g. Conv → Relu, each feeding only the next) only the
/// last op's output — and one per model input. Weight encodings come from the
/// weights themselves; activation encodings from calibration runs
/// (`beginCalibration`, `run` on calibration data, `endCalibration`), during
/// which the weights are already quantized and the activations pass through
/// unquantized while they are observed.
public final class QuantSim {
    public struct Options: Sendable {
        public var scheme: QuantScheme = .postTrainingTFEnhanced
        public var paramBitwidth = 8
        public var activationBitwidth = 8
        /// nil: as the config says.
        public var perChannel: Bool?
        public var config = QuantSimConfig.aimetDefault
        public init() {}
    }

    /// A weight quantizer: one encoding, or one per output channel.
    public struct ParamQuantizer: Sendable {
        public var settings: EncodingSettings
        public var perChannel: Bool
        /// The output-channel axis of the weight (1 for a transposed conv).
        public var axis: Int
        public var encodings: [Encoding] = []
        public var frozen = false
    }

    public struct ActivationQuantizer: Sendable {
        public var settings: EncodingSettings
        var analyzer: EncodingAnalyzer
        public var encoding: Encoding?
    }

    public enum Phase: Sendable { case uncalibrated, calibrating, ready }

    public let model: Model
    public let options: Options
    public private(set) var params: [String: ParamQuantizer] = [:]
    public private(set) var activations: [String: ActivationQuantizer] = [:]
    /// Activation quantizers in the order their values are computed.
    public private(set) var activationOrder: [String] = []
    public private(set) var phase: Phase = .uncalibrated
    private var executor: Executor

    /// Takes a copy of `model` (without its pass-through nodes).
    public init(model: Model, options: Options = Options()) throws {
        guard Encoding.supportedBitwidths.contains(options.paramBitwidth) else {
            throw AimetError.invalid("param bitwidth \(options.paramBitwidth) is out of range (2...16)")
        }
        guard (4...16).contains(options.activationBitwidth) else {
            throw AimetError.invalid("output (activation) bitwidth \(options.activationBitwidth) is out of range (4...16)")
        }
        _ = try EncodingAnalyzer(scheme: options.scheme)
        try model.graph.validate()
        // Identity / inference Dropout compute nothing; without them a layer and
        // its activation are adjacent, as the supergroups expect.
        var simulated = model
        simulated.graph.removePassThroughNodes()
        self.model = simulated
        self.options = options
        executor = try Executor(graph: simulated.graph, opset: model.onnxOpset ?? 17)
        placeParamQuantizers()
        try placeActivationQuantizers()
        try computeParamEncodings()
    }

    // MARK: - Placement

    private func placeParamQuantizers() {
        let config = options.config
        for node in model.graph.nodes where [.conv, .convTranspose, .gemm, .matMul].contains(node.op) {
            guard node.inputs.count > 1, let weight = model.graph.params[node.inputs[1]] else { continue }
            let rule = config.paramRule("weight", op: node.op.onnxType)
            guard rule.quantized, params[node.inputs[1]] == nil else { continue }
            let transposedLayout = node.op == .convTranspose
                || (node.op == .gemm && node.int("transB", default: 0) == 0) || node.op == .matMul
            params[node.inputs[1]] = ParamQuantizer(
                settings: EncodingSettings(bitwidth: options.paramBitwidth, symmetric: rule.symmetric,
                                           strictSymmetric: config.strictSymmetric,
                                           unsignedSymmetric: config.unsignedSymmetric),
                perChannel: (options.perChannel ?? rule.perChannel) && weight.rank >= 2,
                axis: transposedLayout ? 1 : 0)
            if node.inputs.count > 2, !node.inputs[2].isEmpty, model.graph.params[node.inputs[2]] != nil {
                let bias = config.paramRule("bias", op: node.op.onnxType)
                if bias.quantized {
                    params[node.inputs[2]] = ParamQuantizer(
                        settings: EncodingSettings(bitwidth: options.paramBitwidth, symmetric: bias.symmetric,
                                                   strictSymmetric: config.strictSymmetric,
                                                   unsignedSymmetric: config.unsignedSymmetric),
                        perChannel: false, axis: 0)
                }
            }
        }
    }

    private func placeActivationQuantizers() throws {
        let graph = model.graph, config = options.config
        let consumers = graph.consumers
        var quantized = Set<String>()
        var symmetric: [String: Bool] = [:]
        if config.modelInputQuantized {
            for input in graph.inputs {
                quantized.insert(input.name)
                symmetric[input.name] = config.activationSymmetric
            }
        }
        // Only float values the run computes from its inputs: not constants, shapes, or integer values.
        let computed = executor.computedFloatValues
        for node in graph.nodes where config.outputQuantized(node.op) {
            for output in node.outputs where computed.contains(output) {
                quantized.insert(output)
                symmetric[output] = config.activationSymmetric(node.op.onnxType)
            }
        }
        // The only reader of node k's output, if that output is not a model output.
        func onlyReader(_ k: Int) -> Int? {
            guard let readers = consumers[graph.nodes[k].output], readers.count == 1,
                  !graph.outputNames.contains(graph.nodes[k].output) else { return nil }
            return readers[0]
        }
        // A BatchNormalization right after a Conv / ConvTranspose / Gemm (its only reader) is
        // folded into that layer when the model is deployed, and AIMET simulates it so: the
        // layer's output gets no quantizer of its own, and a supergroup (Conv → Relu) matches
        // across the BN.
        func foldedBatchNorm(after k: Int) -> Int? {
            guard [.conv, .convTranspose, .gemm].contains(graph.nodes[k].op), let r = onlyReader(k),
                  graph.nodes[r].op == .batchNormalization else { return nil }
            return r
        }
        for k in graph.nodes.indices where foldedBatchNorm(after: k) != nil { quantized.remove(graph.nodes[k].output) }
        // A supergroup is quantized once, after its last op.
        for group in config.supergroups {
            for (i, node) in graph.nodes.enumerated() where node.op.onnxType == group[0] {
                var chain = [i], matched = 1
                for op in group.dropFirst() {
                    if let bn = foldedBatchNorm(after: chain.last!) { chain.append(bn) }
                    guard let r = onlyReader(chain.last!), graph.nodes[r].op.onnxType == op else { break }
                    chain.append(r)
                    matched += 1
                }
                guard matched == group.count else { continue }
                for k in chain.dropLast() { quantized.remove(graph.nodes[k].output) }
            }
        }
        if let outputs = config.modelOutputQuantized {
            for output in graph.outputs {
                if outputs { quantized.insert(output.name) } else { quantized.remove(output.name) }
            }
        }
        let order = graph.inputs.map(\.name) + graph.nodes.flatMap(\.outputs)
        activationOrder = order.filter { quantized.contains($0) }
        for name in activationOrder {
            activations[name] = ActivationQuantizer(
                settings: EncodingSettings(bitwidth: options.activationBitwidth, symmetric: symmetric[name] ?? false,
                                           strictSymmetric: config.strictSymmetric,
                                           unsignedSymmetric: config.unsignedSymmetric),
                analyzer: try EncodingAnalyzer(scheme: options.scheme))
        }
    }

    // MARK: - Weights

    /// Computes the encoding of every weight not frozen, and rebuilds the
    /// executor over the fake-quantized weights.
    public func computeParamEncodings() throws {
        for (name, quantizer) in params where !quantizer.frozen {
            let weight = model.graph.params[name]!
            var updated = quantizer
            if quantizer.perChannel {
                updated.encodings = try EncodingAnalyzer.computePerChannelEncodings(
                    of: weight, axis: quantizer.axis, scheme: options.scheme, settings: quantizer.settings)
            } else {
                updated.encodings = [try EncodingAnalyzer.computeEncoding(of: weight.data, scheme: options.scheme,
                                                                          settings: quantizer.settings)]
            }
            params[name] = updated
        }
        try rebuildExecutor()
    }

    /// The model's weights as the simulation sees them (quantized, dequantized).
    public func quantizedParams() throws -> [String: Tensor] {
        var result: [String: Tensor] = [:]
        for (name, quantizer) in params {
            var weight = model.graph.params[name]!
            if quantizer.perChannel {
                try Encoding.fakeQuantize(&weight, perChannel: quantizer.encodings, axis: quantizer.axis)
            } else {
                quantizer.encodings[0].fakeQuantize(&weight.data)
            }
            result[name] = weight
        }
        return result
    }

    private func rebuildExecutor() throws {
        var graph = model.graph
        for (name, tensor) in try quantizedParams() { graph.params[name] = tensor }
        executor = try Executor(graph: graph, opset: model.onnxOpset ?? 17)
    }

    // MARK: - Calibration and simulation

    /// Starts observing: following runs collect activation statistics.
    public func beginCalibration() {
        for name in activationOrder { activations[name]!.analyzer.reset() }
        phase = .calibrating
    }

    /// Computes every activation encoding from the observed runs.
    public func endCalibration() throws {
        guard phase == .calibrating else {
            throw AimetError.invalid("end_calibration without begin_calibration")
        }
        var computed: [String: Encoding] = [:]
        for name in activationOrder {
            let quantizer = activations[name]!
            guard quantizer.analyzer.hasStatistics else {
                throw AimetError.invalid("no calibration data reached '\(name)': run the model on calibration data between begin and end of calibration")
            }
            do {
                computed[name] = try quantizer.analyzer.computeEncoding(quantizer.settings)
            } catch let error as AimetError {
                throw AimetError(error.kind, "activation '\(name)': \(error.message)")
            }
        }
        for (name, encoding) in computed { activations[name]!.encoding = encoding }
        phase = .ready
    }

    /// Runs the simulation on float32 inputs (or, while calibrating, the
    /// observing pass); outputs as float32 tensors (see `run(values:hook:)`).
    public func run(_ inputs: [String: Tensor], hook: ((String, inout Tensor) throws -> Void)? = nil) throws -> [String: Tensor] {
        try run(values: inputs.mapValues { Value($0) }, hook: hook).mapValues { $0.tensor ?? Tensor(validShape: $0.shape, data: $0.floats) }
    }

    /// Runs the simulation (or, while calibrating, the observing pass) on
    /// inputs of the graph's element types.
    public func run(values inputs: [String: Value], hook: ((String, inout Tensor) throws -> Void)? = nil) throws -> [String: Value] {
        try run(values: inputs, hook: hook, capture: []).outputs
    }

    /// The same, also returning the values named in `capture` as the simulation computes them.
    public func run(values inputs: [String: Value], hook: ((String, inout Tensor) throws -> Void)? = nil,
                    capture: Set<String>) throws -> (outputs: [String: Value], captured: [String: Value]) {
        // Calibration statistics and fake quantization need finite activations.
        for (name, value) in inputs where value.type == .float32 {
            if let i = value.slots.firstNonFinite {
                throw AimetError.numeric("input '\(name)' holds \(value.slots[i]) at index \(i); a quantization simulation needs finite inputs")
            }
        }
        switch phase {
        case .uncalibrated:
            throw AimetError.invalid("the activation encodings are not computed yet: call compute_encodings (begin_calibration, runs, end_calibration) first")
        case .calibrating:
            return try executor.run(values: inputs, hook: { name, tensor in
                if self.activations[name] != nil {
                    try tensor.data.withUnsafeBufferPointer { try self.activations[name]!.analyzer.update($0) }
                }
                try hook?(name, &tensor)
            }, capture: capture)
        case .ready:
            return try executor.run(values: inputs, hook: { name, tensor in
                if let encoding = self.activations[name]?.encoding { encoding.fakeQuantize(&tensor.data) }
                try hook?(name, &tensor)
            }, capture: capture)
        }
    }

    // MARK: - Encodings files

    /// Uses the file's param encodings (by parameter name); with `freeze`,
    /// later `computeParamEncodings` calls keep them. All or nothing.
    public func setParamEncodings(_ file: EncodingsFile, freeze: Bool) throws {
        var updated = params
        for entry in file.paramEncodings {
            guard var quantizer = updated[entry.name] else {
                if model.graph.params[entry.name] != nil {
                    throw AimetError.invalid("the encodings file quantizes '\(entry.name)', which this simulation does not quantize")
                }
                throw AimetError.unknownName("the encodings file names parameter '\(entry.name)', which this model does not have (an encodings file for another model?)")
            }
            let weight = model.graph.params[entry.name]!
            let channels = weight.shape.indices.contains(quantizer.axis) ? weight.shape[quantizer.axis] : 1
            guard entry.encodings.count == 1 || entry.encodings.count == channels else {
                throw AimetError.shape("the encodings file has \(entry.encodings.count) encodings for '\(entry.name)', which has \(channels) output channels (expected 1 or \(channels))")
            }
            quantizer.encodings = entry.encodings
            quantizer.perChannel = entry.encodings.count > 1
            quantizer.frozen = quantizer.frozen || freeze
            updated[entry.name] = quantizer
        }
        params = updated
        try rebuildExecutor()
    }

    /// All encodings in AIMET's file format.
    public func encodingsFile() -> EncodingsFile {
        let paramEntries = params.keys.sorted().map { EncodingsFile.Entry(name: $0, encodings: params[$0]!.encodings) }
        let activationEntries = activationOrder.compactMap { name in
            activations[name]!.encoding.map { EncodingsFile.Entry(name: name, encodings: [$0]) }
        }
        return EncodingsFile(paramEncodings: paramEntries, activationEncodings: activationEntries,
                             version: EncodingsFile.quantSimVersion)
    }
}
