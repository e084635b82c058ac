import XCTest
@testable import AimetCore

/// Every rule of the layer-group and CLS-set search on hand-built graphs.
final class LayerGroupSearchTests: XCTestCase {
    private func sets(_ b: GraphBuilder) -> [[String]] {
        LayerGroupSearch.groups(in: b.graph).flatMap { LayerGroupSearch.clsSets($0, in: b.graph) }.map { b.names($0.layers) }
    }

    private func groups(_ b: GraphBuilder) -> [[String]] {
        LayerGroupSearch.groups(in: b.graph).map { b.names($0.layers) }
    }

    func testReluAndDirectJoinsFormOneGroupWithFlags() {
        var b = GraphBuilder()
        b.conv("c1", "x", cin: 3, cout: 4)
        b.op(.relu, "r1", ["c1"])
        b.conv("c2", "r1", cin: 4, cout: 5)
        b.conv("c3", "c2", cin: 5, cout: 2)
        b.output("c3")
        let found = LayerGroupSearch.groups(in: b.graph)
        XCTAssertEqual(found.map { b.names($0.layers) }, [["c1", "c2", "c3"]])
        XCTAssertEqual(found[0].reluBetween, [true, false])
        XCTAssertEqual(sets(b), [["c1", "c2"], ["c2", "c3"]])
    }

    func testPReluJoinsButLeakyReluAndReluSixClose() {
        var b = GraphBuilder()
        b.conv("c1", "x", cin: 3, cout: 4)
        b.graph.params["slope"] = try! Tensor(shape: [4, 1, 1], data: [0.1, 0.2, 0.3, 0.4])
        b.op(.prelu, "p", ["c1", "slope"])
        b.conv("c2", "p", cin: 4, cout: 4)
        b.op(.leakyRelu, "l", ["c2"])
        b.conv("c3", "l", cin: 4, cout: 4)
        b.relu6("r6", "c3")
        b.conv("c4", "r6", cin: 4, cout: 4)
        b.output("c4")
        XCTAssertEqual(groups(b), [["c1", "c2"]])
        ReluSixReplacement.apply(&b.graph)
        XCTAssertEqual(groups(b), [["c1", "c2"], ["c3", "c4"]], "after ReLU6 -> ReLU the pair joins")
    }

    func testForkEndsAGroupButTheForkingLayerMayEndIt() {
        var b = GraphBuilder()
        b.conv("c1", "x", cin: 3, cout: 4)
        b.conv("c2", "c1", cin: 4, cout: 4)
        b.conv("c3", "c2", cin: 4, cout: 4)   // c2 forks into c3 and c4
        b.conv("c4", "c2", cin: 4, cout: 4)
        b.op(.add, "sum", ["c3", "c4"])
        b.output("sum")
        XCTAssertEqual(groups(b), [["c1", "c2"]])
    }

    func testActivationWithTwoConsumersCloses() {
        var b = GraphBuilder()
        b.conv("c1", "x", cin: 3, cout: 4)
        b.op(.relu, "r", ["c1"])
        b.conv("c2", "r", cin: 4, cout: 4)
        b.conv("c3", "r", cin: 4, cout: 4)
        b.output("c2", "c3")
        XCTAssertEqual(groups(b), [])
    }

    func testResidualAddClosesTheGroup() {
        var b = GraphBuilder(shape: [1, 4, 8, 8])
        b.conv("c1", "x", cin: 4, cout: 4)
        b.op(.relu, "r1", ["c1"])
        b.conv("c2", "r1", cin: 4, cout: 4)
        b.op(.add, "add", ["c2", "x"])
        b.op(.relu, "r2", ["add"])
        b.conv("c3", "r2", cin: 4, cout: 4)
        b.conv("c4", "c3", cin: 4, cout: 4)
        b.output("c4")
        XCTAssertEqual(groups(b), [["c1", "c2"], ["c3", "c4"]])
    }

    func testModelOutputEndsAGroup() {
        var b = GraphBuilder()
        b.conv("c1", "x", cin: 3, cout: 4)
        b.conv("c2", "c1", cin: 4, cout: 4)
        b.output("c1", "c2")
        XCTAssertEqual(groups(b), [])
    }

    func testConvDepthwiseConvIsATripletAndTheThirdStartsTheNext() {
        var b = GraphBuilder()
        b.conv("c1", "x", cin: 3, cout: 8)
        b.op(.relu, "r1", ["c1"])
        b.conv("dw1", "r1", cin: 8, cout: 8, k: 3, groups: 8, pad: 1)
        b.op(.relu, "r2", ["dw1"])
        b.conv("c2", "r2", cin: 8, cout: 6)
        b.conv("dw2", "c2", cin: 6, cout: 6, k: 3, groups: 6, pad: 1)
        b.conv("c3", "dw2", cin: 6, cout: 4)
        b.conv("c4", "c3", cin: 4, cout: 4)
        b.output("c4")
        XCTAssertEqual(sets(b), [["c1", "dw1", "c2"], ["c2", "dw2", "c3"], ["c3", "c4"]])
        let triplet = LayerGroupSearch.clsSets(LayerGroupSearch.groups(in: b.graph)[0], in: b.graph)[0]
        XCTAssertEqual(triplet.reluBetween, [true, true])
    }

    func testDepthwiseThenConvIsAPair() {
        var b = GraphBuilder(shape: [1, 4, 8, 8])
        b.conv("dw", "x", cin: 4, cout: 4, k: 3, groups: 4)
        b.op(.relu, "r", ["dw"])
        b.conv("pw", "r", cin: 4, cout: 6)
        b.output("pw")
        XCTAssertEqual(sets(b), [["dw", "pw"]])
    }

    func testGroupedConvThatIsNotDepthwiseRestartsTheScanAfterIt() {
        var b = GraphBuilder()
        b.conv("c1", "x", cin: 3, cout: 8)
        b.conv("g", "c1", cin: 8, cout: 8, groups: 2)
        b.conv("c2", "g", cin: 8, cout: 4)
        b.conv("c3", "c2", cin: 4, cout: 4)
        b.output("c3")
        XCTAssertEqual(groups(b), [["c1", "g", "c2", "c3"]])
        XCTAssertEqual(sets(b), [["c2", "c3"]])
    }

    func testLinearLayersAreFoldableButNotScaled() {
        var b = GraphBuilder(shape: [1, 6])
        b.gemm("fc1", "x", fin: 6, fout: 4)
        b.op(.relu, "r", ["fc1"])
        b.gemm("fc2", "r", fin: 4, fout: 3)
        b.output("fc2")
        XCTAssertEqual(groups(b), [])
    }

    func testConvTransposeJoinsAGroup() {
        var b = GraphBuilder()
        b.conv("c1", "x", cin: 3, cout: 4)
        b.op(.relu, "r", ["c1"])
        b.conv("t", "r", cin: 4, cout: 2, k: 2, transposed: true)
        b.output("t")
        XCTAssertEqual(sets(b), [["c1", "t"]])
    }

    func testUnfoldedBatchNormAndPoolingClose() {
        var b = GraphBuilder()
        b.conv("c1", "x", cin: 3, cout: 4)
        b.op(.maxPool, "pool", ["c1"])
        b.conv("c2", "pool", cin: 4, cout: 4)
        b.bn("bn", "c2", channels: 4)
        b.graph.nodes[b.graph.nodes.count - 1].attributes["training_mode"] = .int(1)
        b.conv("c3", "bn", cin: 4, cout: 4)
        b.output("c3")
        XCTAssertEqual(groups(b), [])
    }

    func testSharedWeightsAreLeftAlone() {
        var b = GraphBuilder(shape: [1, 4, 8, 8])
        b.conv("c1", "x", cin: 4, cout: 4)
        b.op(.conv, "c2", ["c1", "c1.weight"])
        b.output("c2")
        XCTAssertEqual(groups(b), [])
    }
}
