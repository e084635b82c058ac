import Foundation
import XCTest
@testable import AimetCore

/// AIMET's encodings JSON: exact format, bit-exact round trips, clear
/// errors for malformed files, atomic writes.
final class QuantizationEncodingsFileTests: XCTestCase {
    private var directory: String!

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "aimetcle-encodings-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: directory)
    }

    // MARK: - Format

    func testWritesAimetFormat() throws {
        let encoding = try Encoding(bitwidth: 4, isSymmetric: true, scale: 0.1, offset: -8)
        let file = EncodingsFile(paramEncodings: [.init(name: "conv1.weight", encodings: [encoding])])
        // Python's json.dump(..., sort_keys=True, indent=4) of AIMET's dict; floats
        // are float(float32), hence 0.10000000149011612 for the float32 0.1.
        XCTAssertEqual(try file.jsonText(), """
        {
            "param_encodings": {
                "conv1.weight": [
                    {
                        "bitwidth": 4,
                        "dtype": "int",
                        "is_symmetric": "True",
                        "max": \(Double(Float(7) * Float(0.1))),
                        "min": \(Double(Float(-8) * Float(0.1))),
                        "offset": -8,
                        "scale": 0.10000000149011612
                    }
                ]
            }
        }
        """)
    }

    func testFloatsArePrintedAsPythonPrintsThem() {
        // repr(float(np.float32(x))) in Python.
        XCTAssertEqual(EncodingsFile.number(0.1), "0.10000000149011612")
        XCTAssertEqual(EncodingsFile.number(-0.8), "-0.800000011920929")
        XCTAssertEqual(EncodingsFile.number(1e-5), "9.999999747378752e-06")
        XCTAssertEqual(EncodingsFile.number(Float.ulpOfOne), "1.1920928955078125e-07")
        XCTAssertEqual(EncodingsFile.number(0), "0.0")
        XCTAssertEqual(EncodingsFile.number(123456), "123456.0")
        XCTAssertEqual(EncodingsFile.number(9.5e15), "9499999507316736.0")
        XCTAssertEqual(EncodingsFile.number(2e16), "2.000000054512845e+16")
    }

    func testQuantSimExportHasActivationsAndVersionSortedByName() throws {
        let a = try Encoding(bitwidth: 8, isSymmetric: false, scale: 0.02, offset: -13)
        let w = try Encoding(bitwidth: 8, isSymmetric: true, scale: 0.001, offset: -128)
        let file = EncodingsFile(paramEncodings: [.init(name: "fc.weight", encodings: [w]), .init(name: "conv.weight", encodings: [w, w])],
                                 activationEncodings: [.init(name: "relu_out", encodings: [a]), .init(name: "input", encodings: [a])],
                                 version: EncodingsFile.quantSimVersion)
        let text = try file.jsonText()
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        XCTAssertEqual(json["version"] as? String, "0.6.1")
        XCTAssertEqual(Set(json.keys), ["activation_encodings", "param_encodings", "version"])
        let keys = ["\"activation_encodings\"", "\"input\"", "\"relu_out\"", "\"param_encodings\"", "\"conv.weight\"", "\"fc.weight\"", "\"version\""]
        let positions = keys.map { text.range(of: $0)!.lowerBound }
        XCTAssertEqual(positions, positions.sorted(), "sections and names in Python's sort_keys order")
        let params = try XCTUnwrap(json["param_encodings"] as? [String: [[String: Any]]])
        XCTAssertEqual(params["conv.weight"]?.count, 2)
        let first = try XCTUnwrap(params["fc.weight"]?.first)
        XCTAssertEqual(first["is_symmetric"] as? String, "True")
        XCTAssertEqual(first["dtype"] as? String, "int")
        XCTAssertEqual(first["offset"] as? Int, -128)
        XCTAssertEqual(first["bitwidth"] as? Int, 8)
        // AdaRound's export: param_encodings only.
        let adaround = try EncodingsFile(paramEncodings: file.paramEncodings).jsonText()
        XCTAssertFalse(adaround.contains("activation_encodings"))
        XCTAssertFalse(adaround.contains("version"))
    }

    // MARK: - Round trips

    func testRoundTripIsBitExact() throws {
        var rng = TestRandom(21)
        var params: [EncodingsFile.Entry] = []
        for bitwidth in Encoding.supportedBitwidths {
            let scale = rng.uniform(1e-6, 1)
            let per: [Encoding] = try (0..<3).map { c in
                try Encoding(bitwidth: bitwidth, isSymmetric: false, scale: scale * Float(c + 1), offset: -Int(rng.next() % UInt64(1 << bitwidth)))
            }
            params.append(.init(name: "layer\(bitwidth).weight", encodings: per))
            params.append(.init(name: "sym\(bitwidth)", encodings: [try Encoding(bitwidth: bitwidth, isSymmetric: true, scale: scale, offset: -(1 << (bitwidth - 1)))]))
            params.append(.init(name: "strict\(bitwidth)", encodings: [try Encoding(bitwidth: bitwidth, isSymmetric: true, scale: scale, offset: -((1 << (bitwidth - 1)) - 1), strictSymmetric: true)]))
            params.append(.init(name: "unsigned\(bitwidth)", encodings: [try Encoding(bitwidth: bitwidth, isSymmetric: true, scale: scale, offset: 0)]))
        }
        // Encodings computed from data, with awkward float32 values.
        for name in ["gauss", "skewed", "heavy_tail"] {
            let values = try QuantizationFixtures.tensor(name)
            for scheme in [QuantScheme.postTrainingTF, .postTrainingTFEnhanced] {
                for symmetric in [true, false] {
                    let e = try EncodingAnalyzer.computeEncoding(of: values, scheme: scheme, settings: EncodingSettings(bitwidth: 8, symmetric: symmetric))
                    params.append(.init(name: "\(name)/\(scheme.rawValue)/\(symmetric)", encodings: [e]))
                }
            }
        }
        let activations = [EncodingsFile.Entry(name: "näme \"quoted\" \\ ✓", encodings: [params[0].encodings[0]])]
        let file = EncodingsFile(paramEncodings: params, activationEncodings: activations, version: "0.6.1")
        let path = directory + "/model.encodings"
        try file.write(to: path)
        let read = try EncodingsFile(contentsOf: path)

        let sortedNames = params.map(\.name).sorted { $0.unicodeScalars.lexicographicallyPrecedes($1.unicodeScalars) }
        XCTAssertEqual(read.paramEncodings.map(\.name), sortedNames)
        XCTAssertEqual(read.activationEncodings, activations)
        XCTAssertEqual(read.version, "0.6.1")
        for entry in params {
            let back = try XCTUnwrap(read.paramEncodings(named: entry.name), entry.name)
            XCTAssertEqual(back, entry.encodings, entry.name)
            for (a, b) in zip(back, entry.encodings) {
                XCTAssertEqual(a.scale.bitPattern, b.scale.bitPattern)
                XCTAssertEqual(a.min.bitPattern, b.min.bitPattern)
                XCTAssertEqual(a.max.bitPattern, b.max.bitPattern)
                XCTAssertEqual(a.numSteps, b.numSteps)
            }
        }
        // Same quantized weights bit for bit.
        let weights = try QuantizationFixtures.tensor("heavy_tail")
        for entry in params {
            var original = weights
            var loaded = weights
            entry.encodings[0].fakeQuantize(&original)
            try XCTUnwrap(read.paramEncodings(named: entry.name))[0].fakeQuantize(&loaded)
            XCTAssertEqual(original.map(\.bitPattern), loaded.map(\.bitPattern), entry.name)
        }
        // Writing what was read gives the same text.
        XCTAssertEqual(try read.jsonText(), try file.jsonText())
    }

    func testReadsAimetWrittenFiles() throws {
        // The format's documented example (written with float64 values) and the 0.4 format's float offsets.
        let file = try EncodingsFile(json: Data("""
        {"param_encodings": {"conv1.weight": [
            {"bitwidth": 4, "dtype": "int", "is_symmetric": "True", "max": 0.7, "min": -0.8, "offset": -8, "scale": 0.1}]},
         "activation_encodings": {"20": [
            {"bitwidth": 8, "is_symmetric": "False", "max": 2.6086959838867188, "min": -2.109158515930176,
             "offset": -114.0, "scale": 0.018501389771699905}]},
         "version": "0.4.0", "excluded_layers": [], "quantizer_args": {"activation_bitwidth": 8}}
        """.utf8))
        let w = try XCTUnwrap(file.paramEncodings(named: "conv1.weight")?.first)
        XCTAssertEqual(w.bitwidth, 4)
        XCTAssertTrue(w.isSymmetric)
        XCTAssertEqual(w.scale, 0.1)
        XCTAssertEqual(w.min, -0.8)
        XCTAssertEqual(w.max, 0.7)
        XCTAssertEqual(w.offset, -8)
        XCTAssertEqual(w.quantizeDequantize(0.34), 3 * Float(0.1))
        let a = try XCTUnwrap(file.activationEncodings(named: "20")?.first)
        XCTAssertEqual(a.offset, -114)
        XCTAssertFalse(a.isSymmetric)
        XCTAssertEqual(a.scale, Float(0.018501389771699905))
        XCTAssertEqual(file.version, "0.4.0")
    }

    // MARK: - Malformed files

    func testMalformedFilesGiveClearErrors() throws {
        let good = #""bitwidth": 8, "dtype": "int", "is_symmetric": "False", "max": 2.55, "min": 0.0, "offset": 0, "scale": 0.01"#
        func check(_ json: String, _ fragment: String, kind: AimetError.Kind = .format, line: UInt = #line) {
            assertQuantizationError(kind, fragment, line: line) { _ = try EncodingsFile(json: Data(json.utf8)) }
        }
        func param(_ fields: String) -> String { #"{"param_encodings": {"w": [{"# + fields + "}]}}" }
        XCTAssertNoThrow(try EncodingsFile(json: Data(param(good).utf8)))

        check("", "invalid JSON at line 1, column 1")
        check("{\"param_encodings\": {\n  \"w\": [}", "invalid JSON at line 2")
        check("[1, 2]", "top level must be a JSON object")
        check("{}", "missing param_encodings")
        check(#"{"param_encodings": []}"#, "param_encodings must be an object")
        check(#"{"param_encodings": {"w": {}}}"#, #"param_encodings["w"] must be a list"#)
        check(#"{"param_encodings": {"w": []}}"#, #"param_encodings["w"] is an empty list"#)
        check(#"{"param_encodings": {"w": [1]}}"#, #"param_encodings["w"][0] must be an object"#)
        check(#"{"param_encodings": {}, "version": 0.6}"#, "version must be a string")
        check(#"{"param_encodings": {"w": [{"# + good + #"}], "w": [{"# + good + #"}]}}"#, #"names "w" twice"#)

        for field in ["bitwidth", "is_symmetric", "min", "max", "scale", "offset"] {
            let without = good.split(separator: ",").filter { !$0.contains("\"\(field)\"") }.joined(separator: ",")
            check(param(without), #"param_encodings["w"][0] is missing ""# + field + #"""#)
        }
        check(param(good.replacingOccurrences(of: #""bitwidth": 8"#, with: #""bitwidth": "8""#)), #"param_encodings["w"][0].bitwidth must be an integer, found "8""#)
        check(param(good.replacingOccurrences(of: #""bitwidth": 8"#, with: #""bitwidth": 8.5"#)), "bitwidth must be an integer, found 8.5")
        check(param(good.replacingOccurrences(of: #""bitwidth": 8"#, with: #""bitwidth": 32"#)), "bitwidth 32 is out of range 2...16")
        check(param(good.replacingOccurrences(of: #""bitwidth": 8"#, with: #""bitwidth": 1"#)), "bitwidth 1 is out of range")
        check(param(good.replacingOccurrences(of: #""is_symmetric": "False""#, with: #""is_symmetric": 1"#)), #"is_symmetric must be "True" or "False", found 1"#)
        check(param(good.replacingOccurrences(of: #""is_symmetric": "False""#, with: #""is_symmetric": "yes""#)), #"is_symmetric must be "True" or "False""#)
        check(param(good.replacingOccurrences(of: #""scale": 0.01"#, with: #""scale": 0"#)), "scale must be > 0, found 0.0")
        check(param(good.replacingOccurrences(of: #""scale": 0.01"#, with: #""scale": -0.01"#)), "scale must be > 0")
        check(param(good.replacingOccurrences(of: #""scale": 0.01"#, with: #""scale": "0.01""#)), "scale must be a number, found a string")
        check(param(good.replacingOccurrences(of: #""max": 2.55"#, with: #""max": NaN"#)), "max is not a finite float32: NaN")
        check(param(good.replacingOccurrences(of: #""max": 2.55"#, with: #""max": 1e39"#)), "max is not a finite float32")
        check(param(good.replacingOccurrences(of: #""offset": 0"#, with: #""offset": -0.5"#)), "offset must be an integer, found -0.5")
        check(param(good.replacingOccurrences(of: #""max": 2.55"#, with: #""max": 5.0"#)), "span")
        check(param(good.replacingOccurrences(of: #""offset": 0"#, with: #""offset": -3"#)), "is not offset -3 * scale")
        check(param(good.replacingOccurrences(of: #""dtype": "int""#, with: #""dtype": "float""#)), "float (dtype \"float\") encodings are not supported", kind: .unsupported)
        check(param(good.replacingOccurrences(of: #""dtype": "int""#, with: #""dtype": 3"#)), "dtype must be a string")
        check(#"{"param_encodings": {"w": [{"# + good + #"}, {"# + good.replacingOccurrences(of: #""bitwidth": 8"#, with: #""bitwidth": 4"#)
                .replacingOccurrences(of: #""max": 2.55"#, with: #""max": 0.15"#) + #"}]}}"#,
              "differ in bitwidth or symmetry")
    }

    func testFileErrorsNameThePath() throws {
        let missing = directory + "/missing.encodings"
        assertQuantizationError(.notFound, "missing.encodings") { _ = try EncodingsFile(contentsOf: missing) }
        let bad = directory + "/bad.encodings"
        try Data("{\"param_encodings\": 3}".utf8).write(to: URL(fileURLWithPath: bad))
        assertQuantizationError(.format, "encodings file '\(bad)': param_encodings must be an object") { _ = try EncodingsFile(contentsOf: bad) }
    }

    // MARK: - Writing

    func testWriteIsAtomicAndReportsIOErrors() throws {
        let e = try Encoding(bitwidth: 8, isSymmetric: false, scale: 0.5, offset: -3)
        let path = directory + "/out.encodings"
        try Data("old".utf8).write(to: URL(fileURLWithPath: path))
        try EncodingsFile(paramEncodings: [.init(name: "w", encodings: [e])]).write(to: path)
        XCTAssertEqual(try EncodingsFile(contentsOf: path).paramEncodings(named: "w"), [e])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory), ["out.encodings"], "no temporary file left behind")

        assertQuantizationError(.io, "cannot write") {
            try EncodingsFile(paramEncodings: [.init(name: "w", encodings: [e])]).write(to: self.directory + "/no/such/dir/x.encodings")
        }
        // Invalid content is refused before anything is written.
        let refused = directory + "/refused.encodings"
        assertQuantizationError(.invalidArgument, "has no encodings") {
            try EncodingsFile(paramEncodings: [.init(name: "w", encodings: [])]).write(to: refused)
        }
        assertQuantizationError(.invalidArgument, "names \"w\" twice") {
            try EncodingsFile(paramEncodings: [.init(name: "w", encodings: [e]), .init(name: "w", encodings: [e])]).write(to: refused)
        }
        let e4 = try Encoding(bitwidth: 4, isSymmetric: false, scale: 0.5, offset: -3)
        assertQuantizationError(.invalidArgument, "differ in bitwidth") {
            try EncodingsFile(paramEncodings: [.init(name: "w", encodings: [e, e4])]).write(to: refused)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: refused))
    }
}
