#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension EncodingsFile {
    /// Reads an encodings file (AIMET format 0.6.1 and the older 0.4 / 0.5, whose
    /// `dtype` may be missing and whose offsets may be written as `-128.0`).
    public init(contentsOf path: String) throws {
        let data = try FileIO.read(path)
        do {
            try self.init(json: data)
        } catch let error as AimetError {
            throw AimetError(error.kind, "encodings file '\(path)': \(error.message)")
        }
    }

    /// Parses and validates encodings JSON. Errors name the offending key:
    /// missing fields, wrong types, bitwidths outside 2...16, scale <= 0,
    /// min / max off the scale / offset grid. Unknown keys are ignored, as AIMET
    /// ignores them (`excluded_layers`, `quantizer_args`, ...).
    public init(json data: Data) throws {
        var parser = JSONParser(bytes: [UInt8](data))
        let root = try parser.parseDocument()
        guard case .object(let fields) = root else {
            throw AimetError.format("the top level must be a JSON object, found \(root.kind)")
        }
        var params: [Entry]?
        var activations: [Entry]?
        var version: String?
        for (key, value) in fields {
            switch key {
            case "param_encodings": params = try EncodingsFile.entries(value, section: key)
            case "activation_encodings": activations = try EncodingsFile.entries(value, section: key)
            case "version":
                guard case .string(let s) = value else {
                    throw AimetError.format("version must be a string, found \(value.kind)")
                }
                version = s
            default: continue
            }
        }
        guard let params else {
            throw AimetError.format("missing param_encodings")
        }
        self.init(paramEncodings: params, activationEncodings: activations, version: version)
    }

    private static func entries(_ value: JSONValue, section: String) throws -> [Entry] {
        guard case .object(let tensors) = value else {
            throw AimetError.format("\(section) must be an object of tensor name → list of encodings, found \(value.kind)"
                + " (the 1.0.0 format is not supported)")
        }
        var names = Set<String>()
        return try tensors.map { name, list in
            let path = "\(section)[\(quoted(name))]"
            guard names.insert(name).inserted else { throw AimetError.format("\(section) names \(quoted(name)) twice") }
            guard case .array(let items) = list else {
                throw AimetError.format("\(path) must be a list of encodings, found \(list.kind)")
            }
            guard !items.isEmpty else { throw AimetError.format("\(path) is an empty list") }
            let encodings = try items.enumerated().map { try encoding($1, path: "\(path)[\($0)]") }
            guard encodings.allSatisfy({ $0.bitwidth == encodings[0].bitwidth && $0.isSymmetric == encodings[0].isSymmetric }) else {
                throw AimetError.format("\(path): the encodings differ in bitwidth or symmetry")
            }
            return Entry(name: name, encodings: encodings)
        }
    }

    private static func encoding(_ value: JSONValue, path: String) throws -> Encoding {
        guard case .object(let pairs) = value else {
            throw AimetError.format("\(path) must be an object, found \(value.kind)")
        }
        let fields = Dictionary(pairs, uniquingKeysWith: { _, last in last })
        func field(_ key: String) throws -> JSONValue {
            guard let v = fields[key] else { throw AimetError.format("\(path) is missing \"\(key)\"") }
            return v
        }
        func integer(_ key: String) throws -> Int {
            let v = try field(key)
            guard case .number(let x, _) = v, x.isFinite, x == x.rounded(), abs(x) < 1e15 else {
                throw AimetError.format("\(path).\(key) must be an integer, found \(v.description)")
            }
            return Int(x)
        }
        func float(_ key: String) throws -> Float {
            let v = try field(key)
            guard case .number(let x, _) = v else {
                throw AimetError.format("\(path).\(key) must be a number, found \(v.kind)")
            }
            let f = Float(x)
            guard f.isFinite else { throw AimetError.format("\(path).\(key) is not a finite float32: \(v.description)") }
            return f
        }

        if let dtype = fields["dtype"] {
            guard case .string(let s) = dtype else {
                throw AimetError.format("\(path).dtype must be a string, found \(dtype.kind)")
            }
            guard s == "int" else {
                if s == "float" { throw AimetError.unsupported("\(path): float (dtype \"float\") encodings are not supported") }
                throw AimetError.format("\(path).dtype must be \"int\" or \"float\", found \(quoted(s))")
            }
        }
        let bitwidth = try integer("bitwidth")
        guard Encoding.supportedBitwidths.contains(bitwidth) else {
            throw AimetError.format("\(path).bitwidth \(bitwidth) is out of range \(Encoding.supportedBitwidths.lowerBound)...\(Encoding.supportedBitwidths.upperBound)")
        }
        let symmetric: Bool
        switch try field("is_symmetric") {
        case .string(let s) where s.lowercased() == "true": symmetric = true
        case .string(let s) where s.lowercased() == "false": symmetric = false
        case .bool(let b): symmetric = b
        case let other:
            throw AimetError.format("\(path).is_symmetric must be \"True\" or \"False\", found \(other.description)")
        }
        let scale = try float("scale")
        guard scale > 0 else { throw AimetError.format("\(path).scale must be > 0, found \(scale)") }
        let (min, max, offset) = (try float("min"), try float("max"), try integer("offset"))
        do {
            return try Encoding(bitwidth: bitwidth, isSymmetric: symmetric, min: min, max: max, scale: scale, offset: offset)
        } catch let error as AimetError {
            throw AimetError.format("\(path): \(error.message)")
        }
    }
}

// MARK: - JSON parsing

/// A parsed JSON value; objects keep their key order, numbers their text.
private indirect enum JSONValue {
    case object([(String, JSONValue)])
    case array([JSONValue])
    case string(String)
    case number(Double, text: String)
    case bool(Bool)
    case null

    var kind: String {
        switch self {
        case .object: return "an object"
        case .array: return "a list"
        case .string: return "a string"
        case .number: return "a number"
        case .bool: return "a boolean"
        case .null: return "null"
        }
    }

    var description: String {
        switch self {
        case .string(let s): return EncodingsFile.quoted(s)
        case .number(_, let text): return text
        case .bool(let b): return b ? "true" : "false"
        default: return kind
        }
    }
}

/// RFC 8259 JSON, plus Python's `NaN` / `Infinity` / `-Infinity` (which
/// `json.dump` writes for non-finite floats, so they can be reported clearly).
private struct JSONParser {
    let bytes: [UInt8]
    var pos = 0
    var depth = 0

    init(bytes: [UInt8]) {
        self.bytes = bytes
        // A UTF-8 byte order mark is allowed before the text.
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { pos = 3 }
    }

    mutating func parseDocument() throws -> JSONValue {
        let value = try parseValue()
        skipSpace()
        guard pos == bytes.count else { throw failure("unexpected text after the JSON value") }
        return value
    }

    private func failure(_ what: String) -> AimetError {
        var line = 1
        var column = 1
        for b in bytes[..<Swift.min(pos, bytes.count)] {
            if b == UInt8(ascii: "\n") { line += 1; column = 1 } else { column += 1 }
        }
        return AimetError.format("invalid JSON at line \(line), column \(column): \(what)")
    }

    private mutating func skipSpace() {
        while pos < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[pos]) { pos += 1 }
    }

    private mutating func consume(_ literal: String) -> Bool {
        let utf8 = Array(literal.utf8)
        guard bytes.count - pos >= utf8.count, Array(bytes[pos..<(pos + utf8.count)]) == utf8 else { return false }
        pos += utf8.count
        return true
    }

    private mutating func parseValue() throws -> JSONValue {
        skipSpace()
        guard pos < bytes.count else { throw failure("unexpected end of the text") }
        switch bytes[pos] {
        case UInt8(ascii: "{"): return try nested { try $0.parseObject() }
        case UInt8(ascii: "["): return try nested { try $0.parseArray() }
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t") where consume("true"): return .bool(true)
        case UInt8(ascii: "f") where consume("false"): return .bool(false)
        case UInt8(ascii: "n") where consume("null"): return .null
        case UInt8(ascii: "N") where consume("NaN"): return .number(.nan, text: "NaN")
        case UInt8(ascii: "I") where consume("Infinity"): return .number(.infinity, text: "Infinity")
        case UInt8(ascii: "-") where consume("-Infinity"): return .number(-.infinity, text: "-Infinity")
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
        default: throw failure("unexpected character '\(Character(UnicodeScalar(bytes[pos])))'")
        }
    }

    private mutating func nested(_ body: (inout JSONParser) throws -> JSONValue) throws -> JSONValue {
        depth += 1
        defer { depth -= 1 }
        guard depth <= 100 else { throw failure("nesting deeper than 100 levels") }
        return try body(&self)
    }

    private mutating func parseObject() throws -> JSONValue {
        pos += 1
        var fields: [(String, JSONValue)] = []
        skipSpace()
        if pos < bytes.count, bytes[pos] == UInt8(ascii: "}") { pos += 1; return .object(fields) }
        while true {
            skipSpace()
            guard pos < bytes.count, bytes[pos] == UInt8(ascii: "\"") else { throw failure("expected a key string") }
            let key = try parseString()
            skipSpace()
            guard pos < bytes.count, bytes[pos] == UInt8(ascii: ":") else { throw failure("expected ':' after a key") }
            pos += 1
            fields.append((key, try parseValue()))
            skipSpace()
            guard pos < bytes.count else { throw failure("unexpected end of the text in an object") }
            if bytes[pos] == UInt8(ascii: ",") { pos += 1; continue }
            if bytes[pos] == UInt8(ascii: "}") { pos += 1; return .object(fields) }
            throw failure("expected ',' or '}' in an object")
        }
    }

    private mutating func parseArray() throws -> JSONValue {
        pos += 1
        var items: [JSONValue] = []
        skipSpace()
        if pos < bytes.count, bytes[pos] == UInt8(ascii: "]") { pos += 1; return .array(items) }
        while true {
            items.append(try parseValue())
            skipSpace()
            guard pos < bytes.count else { throw failure("unexpected end of the text in a list") }
            if bytes[pos] == UInt8(ascii: ",") { pos += 1; continue }
            if bytes[pos] == UInt8(ascii: "]") { pos += 1; return .array(items) }
            throw failure("expected ',' or ']' in a list")
        }
    }

    private mutating func parseString() throws -> String {
        pos += 1
        var utf8: [UInt8] = []
        var pendingHigh: UInt16?
        while true {
            guard pos < bytes.count else { throw failure("unterminated string") }
            let b = bytes[pos]
            pos += 1
            if b == UInt8(ascii: "\"") { break }
            if b < 0x20 { throw failure("control character in a string") }
            guard b == UInt8(ascii: "\\") else {
                utf8.append(b)
                continue
            }
            guard pos < bytes.count else { throw failure("unterminated escape") }
            let e = bytes[pos]
            pos += 1
            switch e {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): utf8.append(e)
            case UInt8(ascii: "b"): utf8.append(0x08)
            case UInt8(ascii: "f"): utf8.append(0x0C)
            case UInt8(ascii: "n"): utf8.append(0x0A)
            case UInt8(ascii: "r"): utf8.append(0x0D)
            case UInt8(ascii: "t"): utf8.append(0x09)
            case UInt8(ascii: "u"):
                guard bytes.count - pos >= 4, let unit = UInt16(String(decoding: bytes[pos..<(pos + 4)], as: UTF8.self), radix: 16) else {
                    throw failure("bad \\u escape")
                }
                pos += 4
                var scalar: UnicodeScalar?
                if let high = pendingHigh {
                    pendingHigh = nil
                    guard (0xDC00...0xDFFF).contains(unit) else { throw failure("unpaired surrogate in \\u escape") }
                    scalar = UnicodeScalar(0x10000 + (UInt32(high - 0xD800) << 10) + UInt32(unit - 0xDC00))
                } else if (0xD800...0xDBFF).contains(unit) {
                    pendingHigh = unit
                    guard consume("\\u") else { throw failure("unpaired surrogate in \\u escape") }
                    pos -= 2
                    continue
                } else {
                    scalar = UnicodeScalar(unit)
                }
                guard let scalar else { throw failure("unpaired surrogate in \\u escape") }
                utf8.append(contentsOf: Array(String(Character(scalar)).utf8))
            default: throw failure("bad escape '\\\(Character(UnicodeScalar(e)))'")
            }
        }
        guard pendingHigh == nil else { throw failure("unpaired surrogate in \\u escape") }
        guard let s = String(validating: utf8, as: UTF8.self) else { throw failure("string is not valid UTF-8") }
        return s
    }

    private mutating func parseNumber() throws -> JSONValue {
        let start = pos
        func digits() -> Int {
            let from = pos
            while pos < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[pos]) { pos += 1 }
            return pos - from
        }
        if bytes[pos] == UInt8(ascii: "-") { pos += 1 }
        let leadingZero = pos < bytes.count && bytes[pos] == UInt8(ascii: "0")
        let whole = digits()
        guard whole > 0, !(leadingZero && whole > 1) else { throw failure("malformed number") }
        if pos < bytes.count, bytes[pos] == UInt8(ascii: ".") {
            pos += 1
            guard digits() > 0 else { throw failure("malformed number") }
        }
        if pos < bytes.count, bytes[pos] == UInt8(ascii: "e") || bytes[pos] == UInt8(ascii: "E") {
            pos += 1
            if pos < bytes.count, bytes[pos] == UInt8(ascii: "+") || bytes[pos] == UInt8(ascii: "-") { pos += 1 }
            guard digits() > 0 else { throw failure("malformed number") }
        }
        let text = String(decoding: bytes[start..<pos], as: UTF8.self)
        guard let value = Double(text) else { throw failure("malformed number") }
        return .number(value, text: text)
    }
}
