import Foundation
import XCTest
@testable import AimetCore

final class OnnxTests: XCTestCase {
    private func sampleModel() -> Model {
        var b = GraphBuilder()
        b.conv("c1", "x", cin: 3, cout: 4, k: 3, pad: 1)
        b.bn("bn", "c1", channels: 4)
        b.relu6("r6", "bn")
        b.op(.reshape, "flat", ["r6"], attributes: ["shape": .ints([1, -1])])
        b.output("flat")
        return Model(graph: b.graph)
    }

    func testRoundTripKeepsGraphAndParameters() throws {
        let model = sampleModel()
        let loaded = try Model(onnxData: model.onnxData())
        XCTAssertEqual(loaded.graph.nodes.map(\.name), ["c1", "bn", "r6", "flat"])
        XCTAssertEqual(loaded.graph.params["c1.weight"], model.graph.params["c1.weight"])
        XCTAssertEqual(loaded.graph.clipBounds(2).map { [$0.0, $0.1] }, [0, 6], "Clip bounds written as inputs (opset 17)")
        XCTAssertEqual(loaded.graph.nodes[3].inputs.count, 2, "Reshape's shape became an int64 initializer")
        XCTAssertTrue(loaded.graph.constants.contains("flat_shape"))
        XCTAssertEqual(loaded.graph.nodes[0].ints("pads"), [1, 1, 1, 1])
    }

    func testUnknownOpsAndFieldsSurviveARoundTrip() throws {
        var proto = try sampleModel().onnxProto()
        var custom = Onnx_NodeProto()
        custom.opType = "FancyOp"
        custom.domain = "com.example"
        custom.name = "fancy"
        custom.input = ["flat"]
        custom.output = ["fancy_out"]
        custom.docString = "kept"
        var attribute = Onnx_AttributeProto()
        attribute.name = "mode"
        attribute.type = .string
        attribute.s = Data("wild".utf8)
        custom.attribute = [attribute]
        proto.graph.node.append(custom)
        proto.graph.output[0].name = "fancy_out"
        proto.docString = "model doc"
        var model = try Model(onnxData: proto.serializedBytes())
        _ = try Equalize.run(&model)
        let saved = try Onnx_ModelProto(serializedBytes: model.onnxData())
        let fancy = try XCTUnwrap(saved.graph.node.first { $0.name == "fancy" })
        XCTAssertEqual(fancy, custom)
        XCTAssertEqual(saved.docString, "model doc")
        XCTAssertFalse(saved.graph.node.contains { $0.opType == "BatchNormalization" })
    }

    func testMalformedInputsAreClearErrors() throws {
        let data = try sampleModel().onnxData()
        let cases: [(Data, AimetError.Kind, String)] = [
            (Data(), .format, "empty"),
            (data.prefix(data.count / 2), .format, "decoding failed"),
            (Data("definitely not protobuf".utf8), .format, "decoding failed"),
        ]
        for (bytes, kind, phrase) in cases {
            XCTAssertThrowsError(try Model(onnxData: bytes)) { error in
                let e = error as? AimetError
                XCTAssertEqual(e?.kind, kind, "\(error)")
                XCTAssertTrue(e?.message.contains(phrase) ?? false, "\(error)")
            }
        }
        var old = try sampleModel().onnxProto()
        old.opsetImport[0].version = 3
        XCTAssertThrowsError(try Model(onnxData: old.serializedBytes())) { error in
            XCTAssertEqual((error as? AimetError)?.kind, .unsupported)
        }
        var external = try sampleModel().onnxProto()
        external.graph.initializer[0].dataLocation = .external
        XCTAssertThrowsError(try Model(onnxData: external.serializedBytes())) { error in
            XCTAssertTrue((error as? AimetError)?.message.contains("external") ?? false, "\(error)")
        }
    }

    func testSaveIsAtomicAndReportsMissingFolders() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("aimetcle-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("m.onnx").path
        try sampleModel().save(onnxFile: path)
        XCTAssertEqual(try Model.load(onnxFile: path).graph.nodes.count, 4)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["m.onnx"], "no temporary left")
        XCTAssertThrowsError(try sampleModel().save(onnxFile: dir.appendingPathComponent("no/such/dir.onnx").path)) { error in
            XCTAssertEqual((error as? AimetError)?.kind, .io)
        }
        XCTAssertThrowsError(try Model.load(onnxFile: dir.appendingPathComponent("missing.onnx").path)) { error in
            XCTAssertEqual((error as? AimetError)?.kind, .notFound)
        }
    }
}
