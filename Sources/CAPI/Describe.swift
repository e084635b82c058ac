import AimetCore

extension Graph {
    var describeJSON: JSON {
        func attribute(_ value: Attribute) -> JSON {
            switch value {
            case .int(let v): return .int(v)
            case .ints(let v): return .ints(v)
            case .float(let v): return .double(Double(v))
            case .floats(let v): return .floats(v)
            case .string(let v): return .string(v)
            case .tensor(let t): return .object([("shape", .ints(t.shape)), ("values", .floats(Array(t.data.prefix(16))))])
            case .typedTensor(let v): return .object([("shape", .ints(v.shape)), ("values", .ints(Array(v.integers.prefix(16))))])
            case .opaque: return .null
            }
        }
        func info(_ v: ValueInfo) -> JSON {
            .object([("name", .string(v.name)), ("shape", v.shape.map { .ints($0) } ?? .null)])
        }
        return .object([
            ("inputs", .array(inputs.map(info))),
            ("outputs", .array(outputs.map(info))),
            ("nodes", .array(nodes.map { node in
                .object([("name", .string(node.name)), ("op", .string(node.op.onnxType)),
                         ("inputs", .strings(node.inputs)), ("outputs", .strings(node.outputs)),
                         ("attributes", .object(node.attributes.sorted { $0.key < $1.key }.map { ($0.key, attribute($0.value)) }))])
            })),
            ("params", .array(params.keys.sorted().map { name in
                .object([("name", .string(name)), ("shape", .ints(params[name]!.shape))])
            })),
        ])
    }
}
