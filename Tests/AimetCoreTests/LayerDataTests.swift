import XCTest
@testable import AimetCore

/// `LayerData` walks the model once for all layers; each layer's data must be
/// what a run from the start gives: the input from the model with every
/// earlier layer's new weights, the target from the float model.
final class LayerDataTests: XCTestCase {
    /// Two parallel branches (the second layer's input is computed before the
    /// first layer runs), a residual Add, and a Linear exported as MatMul + Add
    /// whose target is the Add's output.
    static func branchyGraph() -> Graph {
        var b = GraphBuilder(input: "x", shape: [1, 3, 6, 6])
        b.conv("stem", "x", cin: 3, cout: 4, k: 3, pad: 1, bias: true)
        b.op(.relu, "r", ["stem"])
        b.conv("left", "r", cin: 4, cout: 4, k: 3, groups: 4, pad: 1)
        b.conv("right", "r", cin: 4, cout: 4, k: 1)
        b.op(.add, "sum", ["left", "right"])
        b.op(.add, "res", ["sum", "r"])
        b.op(.globalAveragePool, "gap", ["res"])
        b.op(.flatten, "flat", ["gap"])
        var rng = TestRandom(5)
        b.graph.params["fc.weight"] = try! Tensor(shape: [4, 3], data: rng.floats(12))
        b.graph.params["fc.bias"] = try! Tensor(shape: [3], data: rng.floats(3))
        b.op(.matMul, "fc", ["flat", "fc.weight"])
        b.op(.add, "logits", ["fc", "fc.bias"])
        b.output("logits")
        return b.graph
    }

    func testEachLayerSeesTheWeightsChosenBeforeIt() throws {
        let original = Self.branchyGraph()
        var rng = TestRandom(11)
        let batches = try (0..<3).map { n in ["x": try Tensor(shape: [n + 1, 3, 6, 6], data: rng.floats((n + 1) * 108))] }
        let layers = AdaRound.findLayers(original)
        XCTAssertEqual(layers.map { original.nodes[$0.node].name }, ["stem", "left", "right", "fc"])
        XCTAssertEqual(original.nodes[layers[3].end].name, "logits")
        var data = try LayerData(graph: original, opset: 17, threads: 2, batches: batches,
                                 targets: Set(layers.map { original.nodes[$0.end].output }))
        var changed = original
        for layer in layers {
            let node = original.nodes[layer.node], targetName = original.nodes[layer.end].output
            let (input, target) = try data.layer(node: layer.node, inputName: node.input, end: layer.end,
                                                 targetName: targetName, what: node.name)
            // From the start: the changed model for the input, the float model for the target.
            var inputs: [Float] = [], targets: [Float] = []
            for batch in batches {
                let values = batch.mapValues { Value($0) }
                inputs += try Executor(graph: changed).run(values: values, hook: nil, capture: [node.input]).captured[node.input]!.floats
                targets += try Executor(graph: original).run(values: values, hook: nil, capture: [targetName]).captured[targetName]!.floats
            }
            XCTAssertEqual(input.shape[0], 6, node.name)
            XCTAssertEqual(input.data, inputs, node.name)
            XCTAssertEqual(target.data, targets, node.name)
            // "AdaRound" this layer: other weights, which the layers after it must see.
            let weight = changed.params[layer.weightName]!
            changed.params[layer.weightName] = try Tensor(shape: weight.shape, data: weight.data.map { $0 * 0.5 + 0.25 })
            try data.parametersChanged(changed)
        }
    }

    func testLayersSkippedOrIgnoredAreWalkedPast() throws {
        // Asking only for the last layer: the walks run through everything before it.
        let graph = Self.branchyGraph()
        let layers = AdaRound.findLayers(graph)
        var rng = TestRandom(3)
        let batch = ["x": try Tensor(shape: [2, 3, 6, 6], data: rng.floats(216))]
        var data = try LayerData(graph: graph, opset: 17, threads: 1, batches: [batch], targets: ["logits"])
        let last = layers[3]
        let (input, target) = try data.layer(node: last.node, inputName: "flat", end: last.end, targetName: "logits", what: "fc")
        let expected = try Executor(graph: graph).run(values: batch.mapValues { Value($0) }, hook: nil, capture: ["flat", "logits"]).captured
        XCTAssertEqual(input.data, expected["flat"]!.floats)
        XCTAssertEqual(target.data, expected["logits"]!.floats)
    }
}
