#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import SwiftProtobuf

/// The opset written for models that were not loaded from ONNX.
let exportOpset = 17

extension Model {
    // MARK: - Saving

    /// The model as a serialized ONNX ModelProto. A model loaded from ONNX
    /// keeps everything the library did not change: unknown ops, attributes,
    /// metadata, doc strings, unknown fields.
    public func onnxData() throws -> Data {
        try graph.validate()
        return try onnxProto().serializedBytes()
    }

    /// Writes the model to `path` through a temporary file in the same folder,
    /// renamed over `path` only when complete: a failed save never leaves a
    /// half-written file, and an existing file stays intact.
    public func save(onnxFile path: String) throws {
        try FileIO.writeAtomically(onnxData(), to: path)
    }

    func onnxProto() throws -> Onnx_ModelProto {
        var proto: Onnx_ModelProto
        let opset: Int
        if let source {
            proto = source.proto
            opset = source.opset
        } else {
            proto = Onnx_ModelProto()
            proto.irVersion = 8
            proto.producerName = "aimetcle"
            var set = Onnx_OperatorSetIdProto()
            set.domain = ""
            set.version = Int64(exportOpset)
            proto.opsetImport = [set]
            proto.graph.name = "aimetcle"
            opset = exportOpset
        }
        let original = source?.proto.graph
        var g = proto.graph
        var extraInitializers: [Onnx_TensorProto] = []
        g.node = try graph.nodes.map { node in
            try nodeProto(node, original: original, opset: opset, extra: &extraInitializers)
        }

        // Initializers: the source's, updated where the graph has new values and
        // dropped where nothing reads them any more; then new parameters.
        let used = Set(graph.nodes.flatMap(\.inputs)).union(graph.outputs.map(\.name))
        var written = Set<String>()
        var initializers: [Onnx_TensorProto] = []
        for var tensor in original?.initializer ?? [] where used.contains(tensor.name) {
            if let values = graph.params[tensor.name] {
                tensor.setFloats(values)
            }
            written.insert(tensor.name)
            initializers.append(tensor)
        }
        var newNames = Set<String>()
        for node in graph.nodes {
            for input in node.inputs where graph.params[input] != nil && !written.contains(input) && newNames.insert(input).inserted {
                var tensor = Onnx_TensorProto()
                tensor.name = input
                tensor.setFloats(graph.params[input]!)
                initializers.append(tensor)
            }
        }
        // Integer constants the source does not hold (a graph built in memory): int64.
        let produced = Set(graph.nodes.flatMap(\.outputs))
        for name in graph.intConstants.keys.sorted() where used.contains(name) && !written.contains(name)
            && !produced.contains(name) && graph.params[name] == nil {
            var tensor = Onnx_TensorProto()
            tensor.name = name
            tensor.setInts(graph.intConstants[name]!)
            initializers.append(tensor)
        }
        g.initializer = initializers + extraInitializers

        // Inputs: keep the source's entries (with their types) for values still read.
        let initializerNames = Set(g.initializer.map(\.name))
        if let original {
            g.input = original.input.filter { !initializerNames.contains($0.name) || used.contains($0.name) }
                .filter { info in graph.inputs.contains { $0.name == info.name } || initializerNames.contains(info.name) }
        } else {
            g.input = graph.inputs.map { valueInfoProto($0) }
        }
        // Outputs keep their types; a renamed output keeps its position.
        let originalOutputs = original?.output ?? []
        g.output = graph.outputs.enumerated().map { index, output in
            if index < originalOutputs.count {
                var proto = originalOutputs[index]
                proto.name = output.name
                return proto
            }
            return valueInfoProto(output)
        }
        // value_info for values that no longer exist would make the model invalid.
        let values = Set(graph.nodes.flatMap(\.outputs))
        g.valueInfo = g.valueInfo.filter { values.contains($0.name) }
        proto.graph = g
        return proto
    }

    private func nodeProto(_ node: Node, original: Onnx_GraphProto?, opset: Int,
                           extra: inout [Onnx_TensorProto]) throws -> Onnx_NodeProto {
        var proto: Onnx_NodeProto
        if let index = node.source, let original, index < original.node.count {
            proto = original.node[index]
            if node.rewritten {
                proto.attribute = []
                proto.opType = node.op.onnxType
            }
        } else {
            proto = Onnx_NodeProto()
            proto.opType = node.op.onnxType
        }
        proto.name = node.name
        proto.input = node.inputs
        proto.output = node.outputs
        if node.source == nil || node.rewritten {
            var attributes = node.attributes
            // Attribute forms that later opsets moved to inputs.
            if node.op == .clip && opset >= 11 && (attributes["min"] != nil || attributes["max"] != nil) {
                var inputs = [node.input]
                for bound in ["min", "max"] {
                    if let value = attributes.removeValue(forKey: bound)?.floatValue {
                        let name = "\(node.name)_\(bound)"
                        var tensor = Onnx_TensorProto()
                        tensor.name = name
                        tensor.setFloats(try Tensor(shape: [], data: [value]))
                        extra.append(tensor)
                        inputs.append(name)
                    } else {
                        inputs.append("")
                    }
                }
                while inputs.last == "" { inputs.removeLast() }
                proto.input = inputs
            }
            if node.op == .reshape && opset >= 5, let shape = attributes.removeValue(forKey: "shape")?.intsValue {
                var tensor = Onnx_TensorProto()
                tensor.name = "\(node.name)_shape"
                tensor.dataType = Int32(Onnx_TensorProto.DataType.int64.rawValue)
                tensor.dims = [Int64(shape.count)]
                tensor.int64Data = shape.map { Int64($0) }
                extra.append(tensor)
                proto.input = [node.input, tensor.name]
            }
            proto.attribute = attributes.sorted { $0.key < $1.key }.compactMap { key, value in attributeProto(key, value) }
            // A Constant holding an integer tensor keeps it in `intConstants`.
            if node.op == .constant, node.outputs.count == 1, let values = graph.intConstants[node.output],
               !proto.attribute.contains(where: { $0.name.hasPrefix("value") || $0.name == "sparse_value" }) {
                var attribute = Onnx_AttributeProto()
                attribute.name = "value"
                attribute.type = .tensor
                attribute.t.setInts(values)
                proto.attribute.append(attribute)
            }
        }
        return proto
    }

    private func attributeProto(_ name: String, _ value: Attribute) -> Onnx_AttributeProto? {
        var proto = Onnx_AttributeProto()
        proto.name = name
        switch value {
        case .int(let v): proto.type = .int; proto.i = Int64(v)
        case .ints(let v): proto.type = .ints; proto.ints = v.map { Int64($0) }
        case .float(let v): proto.type = .float; proto.f = v
        case .floats(let v): proto.type = .floats; proto.floats = v
        case .string(let v): proto.type = .string; proto.s = Data(v.utf8)
        case .tensor(let t): proto.type = .tensor; proto.t.setFloats(t)
        case .typedTensor(let v):
            proto.type = .tensor
            proto.t.setInts(IntTensor(shape: v.shape, values: v.integers))
            if v.type == .bool {
                proto.t.dataType = Int32(Onnx_TensorProto.DataType.bool.rawValue)
                proto.t.int32Data = v.integers.map { Int32($0) }
                proto.t.int64Data = []
            }
        case .opaque: return nil
        }
        return proto
    }

    private func valueInfoProto(_ info: ValueInfo) -> Onnx_ValueInfoProto {
        var proto = Onnx_ValueInfoProto()
        proto.name = info.name
        var tensorType = Onnx_TypeProto.Tensor()
        tensorType.elemType = Int32(info.elementType)
        if let shape = info.shape {
            tensorType.shape.dim = shape.enumerated().map { axis, d in
                var dim = Onnx_TensorShapeProto.Dimension()
                if d >= 0 { dim.dimValue = Int64(d) } else { dim.dimParam = axis == 0 ? "N" : "d\(axis)" }
                return dim
            }
        }
        proto.type.tensorType = tensorType
        return proto
    }
}

extension Onnx_TensorProto {
    /// Stores integer values as int64 data, replacing any others.
    mutating func setInts(_ tensor: IntTensor) {
        typealias T = Onnx_TensorProto.DataType
        dims = tensor.shape.map { Int64($0) }
        clearRawData()
        int32Data = []
        int64Data = []
        switch tensor.elementType {
        case T.int32.rawValue, T.int16.rawValue, T.int8.rawValue, T.uint16.rawValue, T.uint8.rawValue, T.bool.rawValue:
            // ONNX keeps these types' values in int32_data.
            dataType = Int32(tensor.elementType)
            int32Data = tensor.values.map { Int32(truncatingIfNeeded: $0) }
        default:
            dataType = Int32(T.int64.rawValue)
            int64Data = tensor.values.map { Int64($0) }
        }
    }

    /// Stores float32 values as raw little-endian data, replacing any others.
    mutating func setFloats(_ tensor: Tensor) {
        dataType = Int32(Onnx_TensorProto.DataType.float.rawValue)
        dims = tensor.shape.map { Int64($0) }
        floatData = []
        rawData = tensor.data.withUnsafeBytes { Data($0) }
    }
}
