#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// NumPy's `.npy` format (versions 1–3): a float32 or float64 array in C
/// order, little-endian, read as a float32 `Tensor`.
public enum NPY {
    /// Reads `path`; anything else than a C-ordered little-endian float array
    /// (another dtype, Fortran order, a truncated file) is a `.format` error.
    public static func read(_ path: String) throws -> Tensor {
        do {
            return try parse(try FileIO.read(path))
        } catch let error as AimetError where error.kind == .format {
            throw AimetError(.format, "'\(path)': \(error.message)")
        }
    }

    /// Parses the bytes of a `.npy` file.
    public static func parse(_ data: Data) throws -> Tensor {
        let bytes = [UInt8](data)
        let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]  // \x93NUMPY
        guard bytes.count >= 10, Array(bytes[0..<6]) == magic else { throw bad("not a .npy file (no \\x93NUMPY magic)") }
        let major = bytes[6]
        let headerLength: Int, headerStart: Int
        switch major {
        case 1:
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            headerStart = 10
        case 2, 3:
            guard bytes.count >= 12 else { throw bad("truncated header") }
            headerLength = (0..<4).reduce(0) { $0 | Int(bytes[8 + $1]) << (8 * $1) }
            headerStart = 12
        default:
            throw bad(".npy format version \(major) is not supported (1 to 3 are)")
        }
        guard headerStart + headerLength <= bytes.count,
              let header = String(bytes: bytes[headerStart..<(headerStart + headerLength)], encoding: .utf8) else {
            throw bad("truncated or unreadable header")
        }
        let descr = try field("descr", in: header)
        let fortran = try field("fortran_order", in: header)
        let shapeText = try field("shape", in: header)
        guard fortran == "False" else { throw bad("Fortran-ordered arrays are not supported (save with np.ascontiguousarray)") }
        let width: Int
        switch descr {
        case "'<f4'", "'=f4'": width = 4
        case "'<f8'", "'=f8'": width = 8
        default: throw bad("dtype \(descr) is not supported: save float32 or float64 (little-endian)")
        }
        let shape = try parseShape(shapeText)
        var count = 1
        for d in shape {
            let (product, overflow) = count.multipliedReportingOverflow(by: d)
            guard !overflow, product <= 1 << 40 else { throw bad("shape \(shape) is too large") }
            count = product
        }
        let start = headerStart + headerLength
        guard bytes.count - start == count * width else {
            throw bad("shape \(shape) needs \(count * width) bytes of data, the file has \(bytes.count - start)")
        }
        var values = [Float](repeating: 0, count: count)
        bytes.withUnsafeBytes { raw in
            let base = raw.baseAddress! + start
            for i in 0..<count {
                if width == 4 {
                    values[i] = Float(bitPattern: UInt32(littleEndian: base.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))
                } else {
                    values[i] = Float(Double(bitPattern: UInt64(littleEndian: base.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self))))
                }
            }
        }
        return try Tensor(shape: shape, data: values)
    }

    private static func bad(_ message: String) -> AimetError { AimetError(.format, message) }

    /// The text of `'key': value` in the header dict (up to the next `,` at depth 0 or `}`).
    private static func field(_ key: String, in header: String) throws -> String {
        guard let range = header.firstRange(of: "'\(key)':") else { throw bad("the header has no '\(key)'") }
        var depth = 0
        var value = ""
        for c in header[range.upperBound...] {
            if c == "(" { depth += 1 }
            if c == ")" { depth -= 1 }
            if depth == 0 && (c == "," || c == "}") { break }
            value.append(c)
        }
        return String(trimmed(value[...]))
    }

    /// `text` without the spaces and tabs at either end.
    private static func trimmed(_ text: Substring) -> Substring {
        let isBlank: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        guard let first = text.firstIndex(where: { !isBlank($0) }), let last = text.lastIndex(where: { !isBlank($0) }) else {
            return ""
        }
        return text[first...last]
    }

    private static func parseShape(_ text: String) throws -> [Int] {
        guard text.hasPrefix("("), text.hasSuffix(")") else { throw bad("cannot read the shape \(text)") }
        let inner = text.dropFirst().dropLast()
        return try inner.split(separator: ",").map { trimmed($0) }.filter { !$0.isEmpty }.map {
            guard let d = Int($0), d >= 0 else { throw bad("cannot read the shape \(text)") }
            return d
        }
    }
}
