/// The operator kinds the library understands, by ONNX op type. Anything else
/// is `.other` and passes through every transform untouched (it only ends a
/// CLS group).
public enum Op: Hashable, Sendable, CustomStringConvertible {
    case conv, convTranspose, gemm, matMul
    case add, sub, mul
    case batchNormalization
    case relu, clip, prelu, leakyRelu, sigmoid
    case maxPool, averagePool, globalAveragePool
    case flatten, reshape, concat, identity, dropout, softmax, constant
    case other(String)

    private static let byName: [String: Op] = [
        "Conv": .conv, "ConvTranspose": .convTranspose, "Gemm": .gemm, "MatMul": .matMul,
        "Add": .add, "Sub": .sub, "Mul": .mul, "BatchNormalization": .batchNormalization,
        "Relu": .relu, "Clip": .clip, "PRelu": .prelu, "LeakyRelu": .leakyRelu, "Sigmoid": .sigmoid,
        "MaxPool": .maxPool, "AveragePool": .averagePool, "GlobalAveragePool": .globalAveragePool,
        "Flatten": .flatten, "Reshape": .reshape, "Concat": .concat, "Identity": .identity,
        "Dropout": .dropout, "Softmax": .softmax, "Constant": .constant,
    ]

    /// The op for an ONNX op type of the default domain.
    public init(onnxType: String) {
        self = Op.byName[onnxType] ?? .other(onnxType)
    }

    /// The ONNX op type.
    public var onnxType: String {
        if case .other(let name) = self { return name }
        return Op.byName.first { $0.value == self }!.key
    }

    public var description: String { onnxType }
}

/// An attribute value (ONNX's attribute kinds that the library reads or writes).
public enum Attribute: Equatable, Sendable {
    case int(Int)
    case ints([Int])
    case float(Float)
    case floats([Float])
    case string(String)
    case tensor(Tensor)
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
