/// How cross-layer equalization treats an op found between two layers.
public enum EqualizationRole: Sendable, Equatable {
    /// A layer whose weights CLS rescales (Conv, ConvTranspose, Gemm).
    case weightLayer
    /// Positively homogeneous, `f(s·x) = s·f(x)` for `s > 0` (Relu, PRelu,
    /// LeakyRelu): a group of layers continues through it.
    case scaleEquivariant
    /// Computes nothing (Identity, inference Dropout): removed before the search.
    case passThrough
    /// Anything else closes a group.
    case endsGroup
}

/// Where quantization simulation puts a quantizer for an op's output, as
/// AIMET's default configuration does.
public enum QuantizationClass: Sendable, Equatable {
    /// The output gets a quantizer (unless a supergroup continues after the op).
    case quantized
    /// The op only moves, selects or reshapes data (Reshape, Transpose, Slice,
    /// Gather, ...): its output keeps its input's encoding, no quantizer of its own.
    case dataMovement
    /// The op produces no activation to quantize (constants, shapes, integer
    /// or boolean values).
    case none
}

/// Everything the library knows about one ONNX op type of the default
/// domain: how the executor runs it (the kernel, which carries the shape and
/// type rules), its role for equalization, its quantization class, and for
/// an activation the elementwise function AdaRound's loss applies after a layer.
struct OpEntry: Sendable {
    let type: String
    let equalization: EqualizationRole
    let quantization: QuantizationClass
    /// The activation a node of this op computes, with its attributes and
    /// constant inputs resolved; nil when the node is not a plain elementwise
    /// activation of its first input (a PRelu with a computed slope).
    let activation: (@Sendable (NodeContext) -> AdaRoundActivation?)?
    /// The executor's steps for a node (one per output it computes).
    let compile: @Sendable (NodeContext) throws -> [CompiledStep]

    init(_ type: String, equalization: EqualizationRole = .endsGroup, quantization: QuantizationClass = .quantized,
         activation: (@Sendable (NodeContext) -> AdaRoundActivation?)? = nil,
         compile: @escaping @Sendable (NodeContext) throws -> [CompiledStep]) {
        self.type = type
        self.equalization = equalization
        self.quantization = quantization
        self.activation = activation
        self.compile = compile
    }
}

/// One executor step of a compiled node: a kernel, the values it reads, the value it writes.
struct CompiledStep {
    let kernel: any Kernel
    let operands: [String]
    let output: String
}

/// The op catalogue: one entry per ONNX op type the library knows, gathered
/// from the families (`OpCatalogue+Layers.swift`, `+Elementwise`, ...).
enum OpCatalogue {
    /// Every family's entries, in order (`OpCatalogueTests` checks that no type appears twice).
    static let families = [layers, normalization, elementwise, activations, shapes, movement, pooling, reductions]

    static let entries: [String: OpEntry] = Dictionary(families.joined().map { ($0.type, $0) },
                                                       uniquingKeysWith: { first, _ in first })

    /// The entry of a default-domain op, nil for an op the library does not know.
    static func entry(_ op: Op) -> OpEntry? { op.isDefaultDomain ? entries[op.onnxType] : nil }
}
