#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// AIMET's quantsim configuration (the JSON file users keep per target): which
/// tensors get quantizers and how. Keys and semantics follow AIMET's
/// `default_config.json`: `defaults` (ops / params / strict_symmetric /
/// unsigned_symmetric / per_channel_quantization), `params` overrides by
/// parameter kind (`weight`, `bias`), `op_type` overrides by op type (ONNX
/// names: Conv, Gemm, Relu, ...), `supergroups` (op chains quantized once, at
/// the end), `model_input` / `model_output`. Booleans may be JSON booleans or
/// AIMET's strings "True" / "False".
public struct QuantSimConfig: Equatable, Sendable {
    public struct ParamRule: Equatable, Sendable {
        public var isQuantized: Bool?
        public var isSymmetric: Bool?
    }

    public struct OpRule: Equatable, Sendable {
        public var isOutputQuantized: Bool?
        public var isInputQuantized: Bool?
        public var isSymmetric: Bool?
        public var perChannel: Bool?
        public var params: [String: ParamRule] = [:]
    }

    public var outputQuantized = true
    public var activationSymmetric = false
    public var paramQuantized = true
    public var paramSymmetric = true
    public var strictSymmetric = false
    public var unsignedSymmetric = true
    public var perChannel = false
    public var params: [String: ParamRule] = ["bias": ParamRule(isQuantized: false)]
    public var opTypes: [String: OpRule] = [:]
    public var supergroups: [[String]] = []
    public var modelInputQuantized = true
    public var modelOutputQuantized: Bool?

    /// AIMET's classic default configuration: per-tensor symmetric weights,
    /// asymmetric activations, biases not quantized, Conv/ConvTranspose/Gemm
    /// followed by Relu/Clip and Add followed by Relu quantized once after the
    /// activation, model inputs quantized. Ops that only move data (the
    /// catalogue's `.dataMovement`: Reshape, Transpose, Slice, Gather, ...) and
    /// ops producing no float activation get no output quantizer.
    public static let aimetDefault: QuantSimConfig = {
        var config = QuantSimConfig()
        config.supergroups = [["Conv", "Relu"], ["Conv", "Clip"], ["ConvTranspose", "Relu"], ["ConvTranspose", "Clip"],
                              ["Add", "Relu"], ["Gemm", "Relu"], ["Gemm", "Clip"]]
        return config
    }()

    public init() {}

    /// Parses AIMET's JSON; unknown keys are ignored as AIMET does, wrong
    /// types are errors that name the key.
    public init(json data: Data) throws {
        let file: ConfigFile
        do {
            file = try JSONDecoder().decode(ConfigFile.self, from: data)
        } catch let error as DecodingError {
            throw AimetError.format("quantsim config: \(ConfigFile.describe(error))")
        } catch {
            throw AimetError.format("quantsim config: \(error)")
        }
        self = QuantSimConfig.aimetDefault
        supergroups = []
        if let defaults = file.defaults {
            outputQuantized = defaults.ops?.is_output_quantized?.value ?? outputQuantized
            activationSymmetric = defaults.ops?.is_symmetric?.value ?? activationSymmetric
            paramQuantized = defaults.params?.is_quantized?.value ?? paramQuantized
            paramSymmetric = defaults.params?.is_symmetric?.value ?? paramSymmetric
            strictSymmetric = defaults.strict_symmetric?.value ?? strictSymmetric
            unsignedSymmetric = defaults.unsigned_symmetric?.value ?? unsignedSymmetric
            perChannel = defaults.per_channel_quantization?.value ?? perChannel
        }
        if let p = file.params { params = p.mapValues { $0.rule } }
        for (op, rule) in file.op_type ?? [:] {
            var parsed = opTypes[op] ?? OpRule()
            parsed.isOutputQuantized = rule.is_output_quantized?.value ?? parsed.isOutputQuantized
            parsed.isInputQuantized = rule.is_input_quantized?.value
            parsed.isSymmetric = rule.is_symmetric?.value
            parsed.perChannel = rule.per_channel_quantization?.value
            for (name, p) in rule.params ?? [:] { parsed.params[name] = p.rule }
            opTypes[op] = parsed
        }
        supergroups = try (file.supergroups ?? []).enumerated().map { k, group in
            guard group.op_list.count >= 2 else {
                throw AimetError.format("quantsim config: supergroups[\(k)].op_list needs at least 2 op types")
            }
            return group.op_list
        }
        if let input = file.model_input { modelInputQuantized = input.is_input_quantized?.value ?? false }
        modelOutputQuantized = file.model_output?.is_output_quantized?.value
    }

    // MARK: - Decisions

    /// Whether the output of a node of `op` gets a quantizer (before
    /// supergroups): as the config's `op_type` says, else the default for
    /// ops the catalogue quantizes (and for ops it does not know).
    func outputQuantized(_ op: Op) -> Bool {
        if let rule = opTypes[op.onnxType]?.isOutputQuantized { return rule }
        return outputQuantized && (OpCatalogue.entry(op)?.quantization ?? .quantized) == .quantized
    }

    func activationSymmetric(_ op: String) -> Bool { opTypes[op]?.isSymmetric ?? activationSymmetric }

    /// Quantized?, symmetric? and per-channel? for parameter kind `kind`
    /// (`weight`, `bias`) of an op.
    func paramRule(_ kind: String, op: String) -> (quantized: Bool, symmetric: Bool, perChannel: Bool) {
        let specific = opTypes[op]?.params[kind]
        let general = params[kind]
        return (specific?.isQuantized ?? general?.isQuantized ?? paramQuantized,
                specific?.isSymmetric ?? general?.isSymmetric ?? paramSymmetric,
                opTypes[op]?.perChannel ?? perChannel)
    }
}

/// The JSON shape of AIMET's config file (snake_case keys as AIMET writes them).
private struct ConfigFile: Decodable {
    struct Flag: Decodable {
        let value: Bool
        init(from decoder: Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let b = try? container.decode(Bool.self) {
                value = b
                return
            }
            let s = try container.decode(String.self)
            guard ["True", "true", "False", "false"].contains(s) else {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "expected \"True\" or \"False\", got \"\(s)\"")
            }
            value = s.lowercased() == "true"
        }
    }
    struct Ops: Decodable { let is_output_quantized: Flag?; let is_symmetric: Flag? }
    struct Params: Decodable {
        let is_quantized: Flag?
        let is_symmetric: Flag?
        var rule: QuantSimConfig.ParamRule { .init(isQuantized: is_quantized?.value, isSymmetric: is_symmetric?.value) }
    }
    struct Defaults: Decodable {
        let ops: Ops?
        let params: Params?
        let strict_symmetric: Flag?
        let unsigned_symmetric: Flag?
        let per_channel_quantization: Flag?
    }
    struct OpType: Decodable {
        let is_output_quantized: Flag?
        let is_input_quantized: Flag?
        let is_symmetric: Flag?
        let per_channel_quantization: Flag?
        let params: [String: Params]?
    }
    struct Supergroup: Decodable { let op_list: [String] }
    struct ModelInput: Decodable { let is_input_quantized: Flag? }
    struct ModelOutput: Decodable { let is_output_quantized: Flag? }

    let defaults: Defaults?
    let params: [String: Params]?
    let op_type: [String: OpType]?
    let supergroups: [Supergroup]?
    let model_input: ModelInput?
    let model_output: ModelOutput?

    static func describe(_ error: DecodingError) -> String {
        func path(_ keys: [CodingKey]) -> String { keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".") }
        switch error {
        case .typeMismatch(_, let c), .valueNotFound(_, let c), .dataCorrupted(let c):
            return c.codingPath.isEmpty ? "not valid JSON (\(c.debugDescription))" : "\(path(c.codingPath)): \(c.debugDescription)"
        case .keyNotFound(let key, let c):
            return "\(path(c.codingPath + [key])) is missing"
        @unknown default:
            return "\(error)"
        }
    }
}
