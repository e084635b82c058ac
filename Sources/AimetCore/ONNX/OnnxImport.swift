#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc
import SwiftProtobuf

/// The loaded ONNX protobuf, kept beside the graph so that a save writes back
/// everything the library does not interpret.
struct OnnxSource: @unchecked Sendable {
    var proto: Onnx_ModelProto
    /// Opset of the default domain.
    var opset: Int
}

/// The opsets of the default domain whose operators the library reads.
/// (Opsets 25–28 changed the ops the executor runs only by new element types,
/// Attention's local windows, which it refuses, SpaceToDepth's CRD mode and
/// Range's stash type for 16-bit floats.)
let supportedOpsets = 7...28

extension Model {
    // MARK: - Loading

    /// Loads an ONNX file. Malformed or truncated files, external-data tensors
    /// and unsupported opsets are errors that say what is wrong.
    public static func load(onnxFile path: String) throws -> Model {
        let data = try FileIO.read(path)
        do {
            return try Model(onnxData: data)
        } catch let error as AimetError {
            throw AimetError(error.kind, "'\(path)': \(error.message)")
        }
    }

    /// The opset of the default ONNX domain the model was loaded with; nil for
    /// a model built in memory (saved with opset 17).
    public var onnxOpset: Int? { source?.opset }

    /// Parses a serialized ONNX ModelProto.
    public init(onnxData data: Data) throws {
        guard !data.isEmpty else { throw AimetError.format("the file is empty, not an ONNX model") }
        let proto: Onnx_ModelProto
        do {
            proto = try Onnx_ModelProto(serializedBytes: data)
        } catch {
            throw AimetError.format("not a valid ONNX model (protobuf decoding failed: \(error)); the file may be truncated or of another format")
        }
        guard proto.hasGraph else {
            throw AimetError.format("not an ONNX model: it has no graph (a truncated file or another protobuf?)")
        }
        guard let opset = proto.opsetImport.first(where: { $0.domain.isEmpty || $0.domain == "ai.onnx" }) else {
            throw AimetError.format("the model declares no opset for the default ONNX domain")
        }
        guard supportedOpsets.contains(Int(opset.version)) else {
            throw AimetError.unsupported("opset \(opset.version) of the default domain is not supported (aimetcle reads opsets \(supportedOpsets.lowerBound) to \(supportedOpsets.upperBound))")
        }
        graph = try Graph(onnx: proto.graph)
        source = OnnxSource(proto: proto, opset: Int(opset.version))
    }
}

extension Graph {
    init(onnx g: Onnx_GraphProto) throws {
        self.init()
        var initializerNames = Set<String>()
        for tensor in g.initializer {
            guard !tensor.name.isEmpty else { throw AimetError.format("an initializer has no name") }
            initializerNames.insert(tensor.name)
            if let values = try tensor.floatTensor() {
                params[tensor.name] = values
            } else {
                constants.insert(tensor.name)
                if let values = try tensor.intTensor() { intConstants[tensor.name] = values }
            }
        }
        for sparse in g.sparseInitializer { constants.insert(sparse.values.name) }
        // IR < 4 lists initializers among the inputs too; they are not model inputs.
        inputs = g.input.filter { !initializerNames.contains($0.name) }.map(\.valueInfo)
        outputs = g.output.map(\.valueInfo)
        var names = Set<String>()
        for (index, proto) in g.node.enumerated() {
            let defaultDomain = proto.domain.isEmpty || proto.domain == "ai.onnx"
            var name = proto.name.isEmpty ? "\(proto.opType)_\(index)" : proto.name
            if names.contains(name) { name = "\(name)_\(index)" }
            names.insert(name)
            var attributes: [String: Attribute] = [:]
            for attribute in proto.attribute { attributes[attribute.name] = try attribute.value() }
            // An integer tensor held by a Constant node (Reshape's shape): the
            // attribute stays opaque (the source node keeps it), its values go
            // to `intConstants` under the node's output.
            if defaultDomain && proto.opType == "Constant", proto.output.count == 1,
               let attribute = proto.attribute.first(where: { $0.name == "value" && $0.type == .tensor }),
               let values = try attribute.t.intTensor() {
                intConstants[proto.output[0]] = values
            }
            nodes.append(Node(name: name, op: defaultDomain ? Op(onnxType: proto.opType) : Op(customType: proto.opType),
                              inputs: proto.input, outputs: proto.output, attributes: attributes, source: index))
        }
        try validate()
        foldConstantNodes()
    }
}

extension Onnx_ValueInfoProto {
    var valueInfo: ValueInfo {
        guard hasType, case .tensorType(let t)? = type.value else { return ValueInfo(name: name, shape: nil) }
        let elementType = t.hasElemType && t.elemType != 0 ? Int(t.elemType) : 1
        guard t.hasShape else { return ValueInfo(name: name, shape: nil, elementType: elementType) }
        return ValueInfo(name: name, shape: t.shape.dim.map { dim in
            if case .dimValue(let v)? = dim.value { return Int(v) }
            return -1
        }, elementType: elementType)
    }
}

extension Onnx_AttributeProto {
    func value() throws -> Attribute {
        switch type {
        case .float: return .float(f)
        case .int: return .int(Int(i))
        case .string: return .string(String(decoding: s, as: UTF8.self))
        case .floats: return .floats(floats)
        case .ints: return .ints(ints.map { Int($0) })
        case .tensor:
            if let values = try t.floatTensor() { return .tensor(values) }
            guard let ints = try t.intTensor() else { return .opaque }
            if t.dataType == Int32(Onnx_TensorProto.DataType.bool.rawValue) {
                return .typedTensor(try Value(bool: ints.values.map { $0 != 0 }, shape: ints.shape))
            }
            return .typedTensor(Value(ints))
        default:
            // Attributes written without a type (old exporters) still carry one field.
            if type == .undefined {
                if hasF { return .float(f) }
                if hasI { return .int(Int(i)) }
                if !ints.isEmpty { return .ints(ints.map { Int($0) }) }
                if !floats.isEmpty { return .floats(floats) }
            }
            return .opaque
        }
    }
}

extension Onnx_TensorProto {
    /// The values of an integer (or bool) tensor widened to `Int`, nil for
    /// other element types. Data in `raw_data` is little-endian.
    func intTensor() throws -> IntTensor? {
        typealias T = Onnx_TensorProto.DataType
        let width: Int
        switch Int(dataType) {
        case T.int64.rawValue: width = 8
        case T.int32.rawValue: width = 4
        case T.int16.rawValue, T.uint16.rawValue: width = 2
        case T.int8.rawValue, T.uint8.rawValue, T.bool.rawValue: width = 1
        default: return nil
        }
        let (shape, count) = try checkedShape()
        var values: [Int]
        if hasRawData {
            guard rawData.count == count * width else {
                throw AimetError.format("tensor '\(name)' of shape \(dims) needs \(count * width) bytes of raw data, has \(rawData.count) (truncated?)")
            }
            let signed = Int(dataType) != T.uint8.rawValue && Int(dataType) != T.uint16.rawValue && Int(dataType) != T.bool.rawValue
            values = rawData.withUnsafeBytes { raw in
                (0..<count).map { i in
                    var v: UInt64 = 0
                    for b in 0..<width { v |= UInt64(raw[i * width + b]) << (8 * UInt64(b)) }
                    if signed && width < 8 && v & (1 << (8 * UInt64(width) - 1)) != 0 { v |= ~0 << (8 * UInt64(width)) }
                    return Int(Int64(bitPattern: v))
                }
            }
        } else if width == 8 {
            values = int64Data.map { Int($0) }
        } else {
            values = int32Data.map { Int($0) }
        }
        guard values.count == count else {
            throw AimetError.format("tensor '\(name)' of shape \(dims) has \(values.count) integer values, needs \(count)")
        }
        return IntTensor(shape: shape, values: values, elementType: Int(dataType))
    }

    /// The shape and element count of a tensor stored in this file, or why
    /// the library cannot read it (external data, impossible dimensions).
    private func checkedShape() throws -> (shape: [Int], count: Int) {
        if dataLocation == .external {
            throw AimetError.unsupported("tensor '\(name)' keeps its data in an external file; aimetcle reads self-contained models (re-save it with onnx.save_model(model, path, save_as_external_data=False))")
        }
        guard dims.allSatisfy({ $0 >= 0 }) else { throw AimetError.format("tensor '\(name)' has a negative dimension \(dims)") }
        let shape = dims.map { Int($0) }
        var count = 1
        for d in shape {
            let (product, overflow) = count.multipliedReportingOverflow(by: d)
            guard !overflow, product < 1 << 40 else { throw AimetError.format("tensor '\(name)' has an impossible shape \(dims)") }
            count = product
        }
        return (shape, count)
    }

    /// The values of a float32 tensor, nil for other element types.
    func floatTensor() throws -> Tensor? {
        guard dataType == Int32(Onnx_TensorProto.DataType.float.rawValue) else { return nil }
        let (shape, count) = try checkedShape()
        let values: [Float]
        if hasRawData {
            guard rawData.count == count * 4 else {
                throw AimetError.format("tensor '\(name)' of shape \(dims) needs \(count * 4) bytes of raw data, has \(rawData.count) (truncated?)")
            }
            values = [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
                rawData.withUnsafeBytes { raw in
                    if count > 0 { memcpy(buffer.baseAddress!, raw.baseAddress!, count * 4) }
                }
                initialized = count
            }
        } else {
            guard floatData.count == count else {
                throw AimetError.format("tensor '\(name)' of shape \(dims) has \(floatData.count) float values, needs \(count)")
            }
            values = floatData
        }
        return try Tensor(shape: shape, data: values)
    }
}
