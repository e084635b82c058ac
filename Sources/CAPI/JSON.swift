import AimetCore

/// A minimal JSON writer for the report and describe texts (no Foundation
/// encoder needed; floats print in Swift's shortest round-trip form).
indirect enum JSON {
    case string(String)
    case number(Double)
    case float(Float)
    case bool(Bool)
    case null
    case array([JSON])
    case object([(String, JSON)])

    var text: String {
        var out = ""
        write(&out)
        return out
    }

    func write(_ out: inout String) {
        switch self {
        case .string(let s): JSON.quote(s, &out)
        case .number(let d): out += d.isFinite ? (d == d.rounded() && abs(d) < 1e15 ? String(Int64(d)) : "\(d)") : "null"
        case .float(let f): out += f.isFinite ? "\(f)" : "null"
        case .bool(let b): out += b ? "true" : "false"
        case .null: out += "null"
        case .array(let items):
            out += "["
            for (k, item) in items.enumerated() {
                if k > 0 { out += "," }
                item.write(&out)
            }
            out += "]"
        case .object(let fields):
            out += "{"
            for (k, (key, value)) in fields.enumerated() {
                if k > 0 { out += "," }
                JSON.quote(key, &out)
                out += ":"
                value.write(&out)
            }
            out += "}"
        }
    }

    static func quote(_ s: String, _ out: inout String) {
        out += "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        out += "\""
    }
}

extension JSON {
    static func strings(_ values: [String]) -> JSON { .array(values.map { .string($0) }) }
    static func ints(_ values: [Int]) -> JSON { .array(values.map { .number(Double($0)) }) }
    static func floats(_ values: [Float]) -> JSON { .array(values.map { .float($0) }) }
}

extension EqualizeReport {
    var json: JSON {
        .object([
            ("folded", .array(folded.map { pair in
                .object([("layer", .string(pair.layer)), ("batchnorm", .string(pair.batchNorm)),
                         ("position", .string(pair.position == .afterLayer ? "after" : "before"))])
            })),
            ("relu6_replaced", .strings(relu6Replaced)),
            ("cls_sets", .array(clsSets.map { set in
                .object([("layers", .strings(set.layers)), ("scales", .array(set.scales.map { .floats($0) })),
                         ("relu_between", .array(set.reluBetween.map { .bool($0) }))])
            })),
            ("high_bias_folded", .number(Double(highBiasFolded))),
        ])
    }
}

extension Graph {
    var describeJSON: JSON {
        func attribute(_ value: Attribute) -> JSON {
            switch value {
            case .int(let v): return .number(Double(v))
            case .ints(let v): return .ints(v)
            case .float(let v): return .float(v)
            case .floats(let v): return .floats(v)
            case .string(let v): return .string(v)
            case .tensor(let t): return .object([("shape", .ints(t.shape)), ("values", .floats(Array(t.data.prefix(16))))])
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
