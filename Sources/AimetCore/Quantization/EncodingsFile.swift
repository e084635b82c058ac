#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// AIMET's encodings JSON (format version 0.6.1): `param_encodings`
/// (parameter name → list of encodings: one, or one per output channel),
/// optionally `activation_encodings` (tensor name → list) and `version`.
/// The AdaRound export holds `param_encodings` only; a quantsim export adds
/// `activation_encodings` and `"version": "0.6.1"`.
///
/// Each encoding is written as AIMET writes it (`json.dump(..., sort_keys=True,
/// indent=4)`): `bitwidth` int, `dtype` "int", `is_symmetric` "True"/"False"
/// (a string), `max` / `min` / `scale` float, `offset` int. Floats are printed
/// as Python prints `float(x)` of a float32 `x` (the shortest text of the
/// float64 value), so reading gives back the same float32 bit for bit.
public struct EncodingsFile: Equatable, Sendable {
    /// The encodings of one tensor.
    public struct Entry: Equatable, Sendable {
        public var name: String
        public var encodings: [Encoding]

        public init(name: String, encodings: [Encoding]) {
            self.name = name
            self.encodings = encodings
        }
    }

    /// The version a quantsim export writes.
    public static let quantSimVersion = "0.6.1"

    /// In file order when read; written sorted by name, as AIMET does.
    public var paramEncodings: [Entry]
    /// nil: no `activation_encodings` key (the AdaRound export).
    public var activationEncodings: [Entry]?
    /// nil: no `version` key (the AdaRound export).
    public var version: String?

    public init(paramEncodings: [Entry] = [], activationEncodings: [Entry]? = nil, version: String? = nil) {
        self.paramEncodings = paramEncodings
        self.activationEncodings = activationEncodings
        self.version = version
    }

    /// The encodings of parameter `name`, if the file has them.
    public func paramEncodings(named name: String) -> [Encoding]? {
        paramEncodings.first { $0.name == name }?.encodings
    }

    /// The encodings of activation tensor `name`, if the file has them.
    public func activationEncodings(named name: String) -> [Encoding]? {
        activationEncodings?.first { $0.name == name }?.encodings
    }

    // MARK: - Writing

    /// The file's JSON text. Every entry needs at least one encoding, all of
    /// one bitwidth and symmetry, and names must be unique within a section.
    public func jsonText() throws -> String {
        var sections: [(String, Section)] = []
        if let activationEncodings {
            sections.append(("activation_encodings", .entries(try EncodingsFile.sorted(activationEncodings, "activation_encodings"))))
        }
        sections.append(("param_encodings", .entries(try EncodingsFile.sorted(paramEncodings, "param_encodings"))))
        if let version { sections.append(("version", .string(version))) }

        var out = "{"
        for (k, (key, section)) in sections.enumerated() {
            out += k == 0 ? "\n" : ",\n"
            out += "    " + EncodingsFile.quoted(key) + ": "
            switch section {
            case .string(let s): out += EncodingsFile.quoted(s)
            case .entries(let entries): EncodingsFile.write(entries, into: &out)
            }
        }
        return out + "\n}"
    }

    /// Writes the file atomically (a temporary file renamed over `path`).
    public func write(to path: String) throws {
        try FileIO.writeAtomically(Data(try jsonText().utf8), to: path)
    }

    private enum Section {
        case string(String)
        case entries([Entry])
    }

    private static func sorted(_ entries: [Entry], _ section: String) throws -> [Entry] {
        for entry in entries {
            guard let first = entry.encodings.first else {
                throw AimetError.invalid("\(section)[\(quoted(entry.name))] has no encodings")
            }
            guard entry.encodings.allSatisfy({ $0.bitwidth == first.bitwidth && $0.isSymmetric == first.isSymmetric }) else {
                throw AimetError.invalid("\(section)[\(quoted(entry.name))]: the encodings differ in bitwidth or symmetry")
            }
        }
        // Python sorts keys by code point.
        let ordered = entries.sorted { $0.name.unicodeScalars.lexicographicallyPrecedes($1.name.unicodeScalars) }
        for (a, b) in zip(ordered, ordered.dropFirst()) where a.name == b.name {
            throw AimetError.invalid("\(section) names \(quoted(a.name)) twice")
        }
        return ordered
    }

    private static func write(_ entries: [Entry], into out: inout String) {
        guard !entries.isEmpty else {
            out += "{}"
            return
        }
        out += "{"
        for (k, entry) in entries.enumerated() {
            out += k == 0 ? "\n" : ",\n"
            out += "        " + quoted(entry.name) + ": ["
            for (j, e) in entry.encodings.enumerated() {
                out += j == 0 ? "\n" : ",\n"
                let fields: [(String, String)] = [
                    ("bitwidth", String(e.bitwidth)),
                    ("dtype", "\"int\""),
                    ("is_symmetric", e.isSymmetric ? "\"True\"" : "\"False\""),
                    ("max", number(e.max)),
                    ("min", number(e.min)),
                    ("offset", String(e.offset)),
                    ("scale", number(e.scale)),
                ]
                out += "            {\n"
                out += fields.map { "                \"\($0.0)\": \($0.1)" }.joined(separator: ",\n")
                out += "\n            }"
            }
            out += "\n        ]"
        }
        out += "\n    }"
    }

    /// Python's `repr(float(x))`: the shortest text that reads back as the same
    /// float64, which is exactly the float32 `x`.
    static func number(_ x: Float) -> String {
        let d = Double(x)
        // Swift switches to exponent notation at 2^53, Python at 1e16; values in
        // between are integers.
        if abs(d) >= 0x1p53, abs(d) < 1e16 { return "\(Int64(d)).0" }
        return "\(d)"
    }

    /// A JSON string as Python's `json.dump` writes it (ASCII only, `\uXXXX` escapes).
    static func quoted(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                if scalar.value >= 0x20 && scalar.value < 0x7F {
                    out.unicodeScalars.append(scalar)
                } else {
                    for unit in String(scalar).utf16 {
                        let hex = String(unit, radix: 16)
                        out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                    }
                }
            }
        }
        return out + "\""
    }
}
