import XCTest
import Foundation
@testable import AimetCore

/// `.npy` reading (the CLI's calibration data) and writing several files at once.
final class NPYTests: XCTestCase {
    /// A version-1 `.npy` file as NumPy writes it (header padded to 64 bytes).
    private func npy(descr: String, fortran: Bool = false, shape: String, payload: [UInt8]) -> Data {
        var header = "{'descr': '\(descr)', 'fortran_order': \(fortran ? "True" : "False"), 'shape': \(shape), }"
        while (10 + header.utf8.count + 1) % 64 != 0 { header += " " }
        header += "\n"
        var bytes: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0]
        bytes += [UInt8(header.utf8.count & 0xFF), UInt8(header.utf8.count >> 8)]
        return Data(bytes + Array(header.utf8) + payload)
    }

    private func bytes<T>(_ values: [T]) -> [UInt8] { values.withUnsafeBytes { Array($0) } }

    func testFloat32AndFloat64() throws {
        let t = try NPY.parse(npy(descr: "<f4", shape: "(2, 3)", payload: bytes([Float](arrayLiteral: 1, 2, 3, 4, 5, -6.5))))
        XCTAssertEqual(t.shape, [2, 3])
        XCTAssertEqual(t.data, [1, 2, 3, 4, 5, -6.5])
        let d = try NPY.parse(npy(descr: "<f8", shape: "(3,)", payload: bytes([Double](arrayLiteral: 0.5, 1e-3, -2))))
        XCTAssertEqual(d.shape, [3])
        XCTAssertEqual(d.data, [0.5, Float(1e-3), -2])
        let scalar = try NPY.parse(npy(descr: "<f4", shape: "()", payload: bytes([Float(7)])))
        XCTAssertEqual(scalar.shape, [])
        XCTAssertEqual(scalar.data, [7])
    }

    func testBadFilesAreFormatErrors() {
        let cases: [(Data, String)] = [
            (Data([1, 2, 3]), "not a .npy file"),
            (npy(descr: "<i8", shape: "(1,)", payload: bytes([Int64(1)])), "dtype"),
            (npy(descr: ">f4", shape: "(1,)", payload: bytes([Float(1)])), "dtype"),
            (npy(descr: "<f4", fortran: true, shape: "(1, 1)", payload: bytes([Float(1)])), "Fortran"),
            (npy(descr: "<f4", shape: "(2, 2)", payload: bytes([Float](arrayLiteral: 1, 2, 3))), "needs 16 bytes"),
            (npy(descr: "<f4", shape: "(a,)", payload: []), "shape"),
            (npy(descr: "<f4", shape: "(-1,)", payload: []), "shape"),
            (npy(descr: "<f4", shape: "(4294967296, 4294967296)", payload: []), "too large"),
        ]
        for (data, phrase) in cases {
            XCTAssertThrowsError(try NPY.parse(data), phrase) { error in
                guard let e = error as? AimetError else { return XCTFail("\(error)") }
                XCTAssertEqual(e.kind, .format, e.message)
                XCTAssertTrue(e.message.contains(phrase), "'\(e.message)' lacks '\(phrase)'")
            }
        }
        // Truncated at every length: an error, never a crash.
        let good = npy(descr: "<f4", shape: "(2,)", payload: bytes([Float](arrayLiteral: 1, 2)))
        for n in 0..<good.count {
            XCTAssertThrowsError(try NPY.parse(good.prefix(n)))
        }
    }

    func testMissingFile() {
        XCTAssertThrowsError(try NPY.read("/no/such/file.npy")) { error in
            XCTAssertEqual((error as? AimetError)?.kind, .notFound)
        }
    }

    func testWritingSeveralFilesIsAllOrNothing() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("aimetcle-fileio-\(getpid())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let a = dir + "/a.txt", b = dir + "/b.txt"
        try FileIO.writeAtomically([(Data("one".utf8), a), (Data("two".utf8), b)])
        XCTAssertEqual(try String(contentsOfFile: a, encoding: .utf8), "one")
        XCTAssertEqual(try String(contentsOfFile: b, encoding: .utf8), "two")
        // The second cannot be written: the first keeps its old content, no temporary files remain.
        XCTAssertThrowsError(try FileIO.writeAtomically([(Data("new".utf8), a), (Data("x".utf8), dir + "/missing/b.txt")]))
        XCTAssertEqual(try String(contentsOfFile: a, encoding: .utf8), "one")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir).sorted(), ["a.txt", "b.txt"])
    }
}
