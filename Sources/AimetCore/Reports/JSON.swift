/// A small JSON value that keeps the order of object keys, for the reports of
/// the C API and the command line (no Foundation encoder needed).
public indirect enum JSON: Sendable {
    case string(String)
    case int(Int)
    /// Printed in the shortest form that reads back as the same Float when it is one.
    case double(Double)
    case bool(Bool)
    case null
    case array([JSON])
    case object([(String, JSON)])

    public static func strings(_ values: [String]) -> JSON { .array(values.map { .string($0) }) }
    public static func ints(_ values: [Int]) -> JSON { .array(values.map { .int($0) }) }
    public static func floats(_ values: [Float]) -> JSON { .array(values.map { .double(Double($0)) }) }
    public static func shape(_ shape: [Int]?) -> JSON { shape.map { ints($0) } ?? .null }

    /// Compact text (`pretty`: with a space after separators).
    public func text(pretty: Bool = false) -> String {
        var out = ""
        write(&out, separator: pretty ? ", " : ",", colon: pretty ? ": " : ":")
        return out
    }

    private func write(_ out: inout String, separator: String, colon: String) {
        switch self {
        case .string(let s): JSON.quote(s, &out)
        case .int(let i): out += String(i)
        case .double(let d): out += d.isFinite ? (Float(exactly: d).map { "\($0)" } ?? "\(d)") : "null"
        case .bool(let b): out += b ? "true" : "false"
        case .null: out += "null"
        case .array(let items):
            out += "["
            for (k, item) in items.enumerated() {
                if k > 0 { out += separator }
                item.write(&out, separator: separator, colon: colon)
            }
            out += "]"
        case .object(let fields):
            out += "{"
            for (k, (key, value)) in fields.enumerated() {
                if k > 0 { out += separator }
                JSON.quote(key, &out)
                out += colon
                value.write(&out, separator: separator, colon: colon)
            }
            out += "}"
        }
    }

    private static func quote(_ s: String, _ out: inout String) {
        out += "\""
        if !s.utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
            out += s
            out += "\""
            return
        }
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
