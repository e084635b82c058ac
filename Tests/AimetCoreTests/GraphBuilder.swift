@testable import AimetCore

/// Builds small graphs for the graph-search tests: each node's output value is
/// named like the node, parameters `<node>.weight` / `.bias` get seeded values.
struct GraphBuilder {
    var graph = Graph()
    var seed: UInt64 = 1

    init(input: String = "x", shape: [Int] = [1, 3, 8, 8]) {
        graph.inputs = [ValueInfo(name: input, shape: shape)]
    }

    private mutating func param(_ name: String, _ shape: [Int], lo: Float = -1, hi: Float = 1) -> String {
        seed += 1
        var rng = TestRandom(seed)
        graph.params[name] = try! Tensor(shape: shape, data: rng.floats(shape.reduce(1, *), lo, hi))
        return name
    }

    @discardableResult
    mutating func conv(_ name: String, _ from: String, cin: Int, cout: Int, k: Int = 1, groups: Int = 1,
                       pad: Int = 0, bias: Bool = false, transposed: Bool = false) -> String {
        let shape = transposed ? [cin, cout / groups, k, k] : [cout, cin / groups, k, k]
        var inputs = [from, param("\(name).weight", shape)]
        if bias { inputs.append(param("\(name).bias", [cout])) }
        graph.nodes.append(Node(name: name, op: transposed ? .convTranspose : .conv, inputs: inputs, outputs: [name],
                                attributes: ["group": .int(groups), "pads": .ints([pad, pad, pad, pad]),
                                             "kernel_shape": .ints([k, k])]))
        return name
    }

    @discardableResult
    mutating func bn(_ name: String, _ from: String, channels: Int) -> String {
        let inputs = [from, param("\(name).weight", [channels], lo: 0.5, hi: 2), param("\(name).bias", [channels]),
                      param("\(name).running_mean", [channels]), param("\(name).running_var", [channels], lo: 0.5, hi: 2)]
        graph.nodes.append(Node(name: name, op: .batchNormalization, inputs: inputs, outputs: [name],
                                attributes: ["epsilon": .float(1e-5)]))
        return name
    }

    @discardableResult
    mutating func gemm(_ name: String, _ from: String, fin: Int, fout: Int, transB: Bool = true) -> String {
        let inputs = [from, param("\(name).weight", transB ? [fout, fin] : [fin, fout])]
        graph.nodes.append(Node(name: name, op: .gemm, inputs: inputs, outputs: [name],
                                attributes: ["transB": .int(transB ? 1 : 0)]))
        return name
    }

    @discardableResult
    mutating func op(_ op: Op, _ name: String, _ inputs: [String], attributes: [String: Attribute] = [:]) -> String {
        graph.nodes.append(Node(name: name, op: op, inputs: inputs, outputs: [name], attributes: attributes))
        return name
    }

    @discardableResult
    mutating func relu6(_ name: String, _ from: String) -> String {
        op(.clip, name, [from], attributes: ["min": .float(0), "max": .float(6)])
    }

    mutating func output(_ names: String...) {
        graph.outputs += names.map { ValueInfo(name: $0, shape: nil) }
    }

    func names(_ indices: [Int]) -> [String] { indices.map { graph.nodes[$0].name } }
}
