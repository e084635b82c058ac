import XCTest
@testable import AimetCore

/// The fused plan (`Fusion`, `ActivationPattern`): which node chains become one
/// step, and that each fused step computes what the exact plan (one step per
/// node, run with a hook) computes, on a float64 reference of the activation.
final class FusionTests: XCTestCase {
    private func random(_ shape: [Int], seed: UInt64) -> Tensor {
        var rng = TestRandom(seed)
        return try! Tensor(shape: shape, data: rng.floats(shape.reduce(1, *), -3, 3))
    }

    private func scalar(_ v: Float) -> Tensor { try! Tensor(shape: [], data: [v]) }

    private func node(_ name: String, _ op: String, _ inputs: [String], _ output: String? = nil,
                      _ attributes: [String: Attribute] = [:]) -> Node {
        Node(name: name, op: Op(onnxType: op), inputs: inputs, outputs: [output ?? name], attributes: attributes)
    }

    /// A graph `x [N, K] → MatMul(W) → Add(b) → ... → y`, with `tail` the nodes after the Add (reading "h").
    private func linear(_ tail: [Node], output: String, extraOutputs: [String] = [], k: Int = 12, n: Int = 20) -> Graph {
        var g = Graph()
        g.inputs = [ValueInfo(name: "x", shape: [3, k])]
        g.params = ["W": random([k, n], seed: 1), "b": random([n], seed: 2), "sqrt2": scalar(Float(2.0.squareRoot())),
                    "rsqrt2": scalar(Float(0.5.squareRoot())), "one": scalar(1), "half": scalar(0.5)]
        g.nodes = [node("mm", "MatMul", ["x", "W"]), node("h", "Add", ["b", "mm"])] + tail
        g.outputs = ([output] + extraOutputs).map { ValueInfo(name: $0, shape: nil) }
        return g
    }

    /// The fused plan's ops, and a check that the fused and exact plans agree and match `reference` applied to "h".
    @discardableResult
    private func fusedOps(_ g: Graph, reference: ((Double) -> Double)? = nil, output: String,
                          file: StaticString = #filePath, line: UInt = #line) throws -> [String] {
        let executor = try Executor(graph: g, threads: 2)
        let x = random([3, g.inputs[0].shape![1]], seed: 3)
        let fused = try XCTUnwrap(executor.run(["x": x])[output], file: file, line: line)
        var h: Tensor?
        let exact = try XCTUnwrap(executor.run(["x": x]) { name, value in if name == "h" { h = value } }[output], file: file, line: line)
        assertClose(fused.data, exact.data, tolerance: 1e-5, file: file, line: line)
        if let reference, let h {
            assertClose(fused.data, h.data.map { Float(reference(Double($0))) }, tolerance: 1e-5, file: file, line: line)
        }
        return executor.program.fused.steps.map(\.op)
    }

    private func gelu(_ v: Double) -> Double { v / 2 * (1 + erf(v / 2.0.squareRoot())) }

    func testTheErfGeluOfEveryExporterOrderFusesIntoTheMatMul() throws {
        let start = [node("d", "Div", ["h", "sqrt2"]), node("e", "Erf", ["d"]), node("a", "Add", ["e", "one"])]
        let orders: [(String, [Node])] = [
            ("(x·(1+erf))·0.5", start + [node("p", "Mul", ["h", "a"]), node("y", "Mul", ["p", "half"])]),
            ("x·((1+erf)·0.5)", start + [node("p", "Mul", ["a", "half"]), node("y", "Mul", ["h", "p"])]),
            ("(x·0.5)·(1+erf)", [node("q", "Mul", ["h", "half"])] + start + [node("y", "Mul", ["q", "a"])]),
            ("x·(1/√2) form", [node("d", "Mul", ["rsqrt2", "h"]), node("e", "Erf", ["d"]), node("a", "Add", ["one", "e"]),
                               node("p", "Mul", ["a", "h"]), node("y", "Mul", ["half", "p"])]),
        ]
        for (what, tail) in orders {
            let ops = try fusedOps(linear(tail, output: "y"), reference: gelu, output: "y")
            XCTAssertEqual(ops, ["MatMul+Add+Gelu(Erf)"], what)
        }
    }

    func testSwishAndHardSwishPatternsFuse() throws {
        let swish = [node("s", "Sigmoid", ["h"]), node("y", "Mul", ["h", "s"])]
        XCTAssertEqual(try fusedOps(linear(swish, output: "y"), reference: { $0 / (1 + exp(-$0)) }, output: "y"),
                       ["MatMul+Add+Swish"])
        let hard = [node("s", "HardSigmoid", ["h"], "s", ["alpha": .float(1.0 / 6), "beta": .float(0.5)]),
                    node("y", "Mul", ["s", "h"])]
        XCTAssertEqual(try fusedOps(linear(hard, output: "y"), reference: { $0 * min(max($0 / 6 + 0.5, 0), 1) }, output: "y"),
                       ["MatMul+Add+HardSwish"])
        // Another HardSigmoid slope is no HardSwish: nothing past the bias fuses.
        let other = [node("s", "HardSigmoid", ["h"], "s", ["alpha": .float(0.2), "beta": .float(0.5)]),
                     node("y", "Mul", ["s", "h"])]
        XCTAssertEqual(try fusedOps(linear(other, output: "y"), output: "y"), ["MatMul+Add", "HardSigmoid", "Mul"])
    }

    func testAPatternIsNotFusedWhenAnInnerValueIsReadElsewhere() throws {
        // "e" is also a graph output: the chain must stay as nodes (the output needs its value).
        let tail = [node("d", "Div", ["h", "sqrt2"]), node("e", "Erf", ["d"]), node("a", "Add", ["e", "one"]),
                    node("p", "Mul", ["h", "a"]), node("y", "Mul", ["p", "half"])]
        let ops = try fusedOps(linear(tail, output: "y", extraOutputs: ["e"]), output: "y")
        XCTAssertEqual(ops, ["MatMul+Add", "Div", "Erf", "Add", "Mul", "Mul"])
        // The activated value is read by another node too: the pattern runs on its own, after the MatMul.
        let shared = [node("s", "Sigmoid", ["h"]), node("y", "Mul", ["h", "s"]), node("z", "Neg", ["h"])]
        XCTAssertEqual(try fusedOps(linear(shared, output: "y", extraOutputs: ["z"]), output: "y"),
                       ["MatMul+Add", "Swish", "Neg"])
        // A Sigmoid multiplied by something else is no Swish.
        let gate = [node("s", "Sigmoid", ["h"]), node("y", "Mul", ["x2", "s"])]
        var g = linear(gate, output: "y")
        g.params["x2"] = random([3, 20], seed: 9)
        XCTAssertEqual(try fusedOps(g, output: "y"), ["MatMul+Add+Sigmoid", "Mul"])
    }

    func testMatMulBiasOnlyFusesAConstantRowOfTheOutputWidth() throws {
        // A bias of the output width fuses; a [3, 20] addend (not a row) stays an Add.
        XCTAssertEqual(try fusedOps(linear([node("y", "Relu", ["h"])], output: "y"), reference: { max($0, 0) }, output: "y"),
                       ["MatMul+Add+Relu"])
        var g = linear([node("y", "Relu", ["h"])], output: "y")
        g.params["b"] = random([3, 20], seed: 4)
        XCTAssertEqual(try fusedOps(g, output: "y"), ["MatMul", "Add", "Relu"])
    }

    func testConvFusesASwishSpelledAsSigmoidTimesInput() throws {
        var g = Graph()
        g.inputs = [ValueInfo(name: "x", shape: [2, 3, 9, 9])]
        g.params = ["W": random([6, 3, 3, 3], seed: 5), "B": random([6], seed: 6)]
        g.nodes = [node("c", "Conv", ["x", "W", "B"], "c", ["pads": .ints([1, 1, 1, 1])]),
                   node("s", "Sigmoid", ["c"]), node("y", "Mul", ["c", "s"])]
        g.outputs = [ValueInfo(name: "y", shape: nil)]
        let executor = try Executor(graph: g, threads: 2)
        XCTAssertEqual(executor.program.fused.steps.map(\.op), ["Conv+Swish"])
        let x = random([2, 3, 9, 9], seed: 7)
        let fused = try XCTUnwrap(executor.run(["x": x])["y"])
        let exact = try XCTUnwrap(executor.run(["x": x]) { _, _ in }["y"])
        assertClose(fused.data, exact.data, tolerance: 1e-5)
    }
}
