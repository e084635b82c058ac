/// An ONNX operator type. What the library knows about each type lives in
/// its `OpCatalogue` entry; the names below are the ones the transforms
/// match on. An op of another domain (or an unknown type) passes through
/// every transform untouched and only ends a CLS group.
public struct Op: Hashable, Sendable, CustomStringConvertible {
    /// The ONNX op type.
    public let onnxType: String
    /// Whether the op belongs to ONNX's default domain.
    public let isDefaultDomain: Bool

    /// The op for an ONNX op type of the default domain.
    public init(onnxType: String) {
        self.onnxType = onnxType
        isDefaultDomain = true
    }

    /// An op of a custom domain (never matched by the catalogue).
    public init(customType: String) {
        onnxType = customType
        isDefaultDomain = false
    }

    public var description: String { onnxType }

    public static let conv = Op(onnxType: "Conv"), convTranspose = Op(onnxType: "ConvTranspose")
    public static let gemm = Op(onnxType: "Gemm"), matMul = Op(onnxType: "MatMul")
    public static let add = Op(onnxType: "Add"), sub = Op(onnxType: "Sub"), mul = Op(onnxType: "Mul")
    public static let batchNormalization = Op(onnxType: "BatchNormalization")
    public static let relu = Op(onnxType: "Relu"), clip = Op(onnxType: "Clip"), prelu = Op(onnxType: "PRelu")
    public static let sigmoid = Op(onnxType: "Sigmoid"), leakyRelu = Op(onnxType: "LeakyRelu")
    public static let maxPool = Op(onnxType: "MaxPool"), averagePool = Op(onnxType: "AveragePool")
    public static let globalAveragePool = Op(onnxType: "GlobalAveragePool"), softmax = Op(onnxType: "Softmax")
    public static let flatten = Op(onnxType: "Flatten"), concat = Op(onnxType: "Concat")
    public static let identity = Op(onnxType: "Identity"), dropout = Op(onnxType: "Dropout")
    public static let reshape = Op(onnxType: "Reshape"), constant = Op(onnxType: "Constant")
}
/// An attribute value (ONNX's attribute kinds that the library reads or writes).
public enum Attribute: Equatable, Sendable {
    case int(Int)
    case ints([Int])
    case float(Float)
    case floats([Float])
    case string(String)
    case tensor(Tensor)
    /// An integer or bool tensor (ConstantOfShape's value, a Constant's
    /// value): integers widened to int64.
    case typedTensor(Value)
    /// A kind the library does not interpret (graphs, sparse tensors, ...); kept
    /// only through the source ONNX node.
    case opaque

    public var intValue: Int? { if case .int(let v) = self { return v } else { return nil } }
    public var intsValue: [Int]? { if case .ints(let v) = self { return v } else { return nil } }
    public var floatValue: Float? {
        switch self {
        case .float(let v): return v
        case .int(let v): return Float(v)
        default: return nil
        }
    }
}
