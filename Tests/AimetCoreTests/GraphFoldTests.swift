import XCTest
@testable import AimetCore

/// fold_all_batch_norms on graphs and the auto mode.
final class GraphFoldTests: XCTestCase {
    func testFoldsLayerThenBNAndNamesTheNewBias() throws {
        var b = GraphBuilder()
        b.conv("features.0.weight".replacingOccurrences(of: ".weight", with: ""), "x", cin: 3, cout: 4)
        b.bn("bn", "features.0", channels: 4)
        b.op(.relu, "r", ["bn"])
        b.output("r")
        let before = try BatchNormFold.foldAll(&b.graph)
        XCTAssertEqual(before.map(\.layer), ["features.0"])
        XCTAssertEqual(before[0].position, .afterLayer)
        XCTAssertFalse(b.graph.nodes.contains { $0.op == .batchNormalization })
        XCTAssertEqual(b.graph.nodes[0].inputs, ["x", "features.0.weight", "features.0.bias"])
        XCTAssertEqual(b.graph.nodes[0].output, "bn", "the layer now produces the BN's output value")
        XCTAssertNil(b.graph.params["bn.running_var"], "the BN's parameters are gone")
        try b.graph.validate()
    }

    func testBNBeforeAnUnpaddedLayerFoldsForwardButNotBeforeAPaddedOne() throws {
        var b = GraphBuilder()
        b.bn("bn1", "x", channels: 3)
        b.conv("c1", "bn1", cin: 3, cout: 4)
        b.bn("bn2", "c1", channels: 4)
        b.conv("c2", "bn2", cin: 4, cout: 4, k: 3, pad: 1)
        b.op(.add, "sum", ["c2", "c2"])
        b.bn("bn3", "sum", channels: 4)
        b.conv("c3", "bn3", cin: 4, cout: 4, k: 3, pad: 1)
        b.output("c3")
        let folded = try BatchNormFold.foldAll(&b.graph)
        XCTAssertEqual(folded.map { "\($0.layer)<-\($0.batchNorm)" }, ["c1<-bn2", "c1<-bn1"],
                       "pass 1 (layer -> bn) first; bn3 stays: c3 pads")
        XCTAssertEqual(b.graph.nodes.filter { $0.op == .batchNormalization }.map(\.name), ["bn3"])
        try b.graph.validate()
    }

    func testBNWhoseLayerForksIsNotFolded() throws {
        var b = GraphBuilder()
        b.conv("c1", "x", cin: 3, cout: 4)
        b.bn("bn", "c1", channels: 4)
        b.op(.relu, "r", ["c1"])
        b.output("bn", "r")
        XCTAssertEqual(try BatchNormFold.foldAll(&b.graph), [])
    }

    func testGemmWithTransBZeroFoldsExactly() throws {
        var b = GraphBuilder(shape: [1, 2])
        b.gemm("fc", "x", fin: 2, fout: 2, transB: false)
        b.graph.params["fc.weight"] = try Tensor(shape: [2, 2], data: [1, 2, 3, 4])  // [in, out]
        b.bn("bn", "fc", channels: 2)
        b.graph.params["bn.weight"] = try Tensor(shape: [2], data: [2, 1])
        b.graph.params["bn.bias"] = try Tensor(shape: [2], data: [0.5, 0])
        b.graph.params["bn.running_mean"] = try Tensor(shape: [2], data: [1, 2])
        b.graph.params["bn.running_var"] = try Tensor(shape: [2], data: [4 - 1e-5, 1 - 1e-5])
        b.output("bn")
        _ = try BatchNormFold.foldAll(&b.graph)
        // s = [2/2, 1/1] = [1, 1]: W unchanged in its own [in, out] layout; b' = beta - mu*s = [-0.5, -2].
        assertClose(b.graph.params["fc.weight"]!.data, [1, 2, 3, 4])
        assertClose(b.graph.params["fc.bias"]!.data, [-0.5, -2])
    }

    func testEqualizeIsAtomic() throws {
        var b = GraphBuilder()
        b.conv("c1", "x", cin: 3, cout: 4)
        b.bn("bn", "c1", channels: 4)
        b.op(.relu, "r", ["bn"])
        b.conv("c2", "r", cin: 4, cout: 4)
        b.output("c2")
        b.graph.params["c2.weight"]!.data[3] = .nan   // discovered only when c2 is scaled
        var model = Model(graph: b.graph)
        let original = model.graph
        XCTAssertThrowsError(try Equalize.run(&model))
        XCTAssertEqual(model.graph, original)
    }

    func testEqualizeReportsFoldsScalesAndHighBiasFold() throws {
        var b = GraphBuilder()
        b.conv("c1", "x", cin: 3, cout: 4)
        b.bn("bn1", "c1", channels: 4)
        b.relu6("r", "bn1")
        b.conv("c2", "r", cin: 4, cout: 4)
        b.bn("bn2", "c2", channels: 4)
        b.output("bn2")
        var model = Model(graph: b.graph)
        let report = try Equalize.run(&model)
        XCTAssertEqual(report.folded.map(\.batchNorm), ["bn1", "bn2"])
        XCTAssertEqual(report.relu6Replaced, ["r"])
        XCTAssertEqual(report.clsSets.map(\.layers), [["c1", "c2"]])
        XCTAssertEqual(report.clsSets[0].reluBetween, [true])
        XCTAssertEqual(report.highBiasFolded, 1)
        var kept = Model(graph: b.graph)
        var options = Equalize.Options()
        options.replaceRelu6 = false
        XCTAssertEqual(try Equalize.run(&kept, options: options).clsSets, [], "CLS does not cross a kept ReLU6")
    }

    func testRegionLimitsTheWork() throws {
        var b = GraphBuilder()
        b.conv("c1", "x", cin: 3, cout: 4)
        b.bn("bn1", "c1", channels: 4)
        b.conv("c2", "bn1", cin: 4, cout: 4)
        b.bn("bn2", "c2", channels: 4)
        b.output("bn2")
        var model = Model(graph: b.graph)
        let report = try Equalize.run(&model, starts: ["c2"], outputs: ["bn2"])
        XCTAssertEqual(report.folded.map(\.batchNorm), ["bn2"])
        XCTAssertThrowsError(try Equalize.run(&model, starts: ["nope"])) { error in
            XCTAssertEqual((error as? AimetError)?.kind, .unknownName)
        }
    }
}
