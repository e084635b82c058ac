/// An elementwise activation that an exporter writes as several nodes, which
/// the fused plan runs as one step (and fuses into the layer before it):
///
/// - GELU, `x · 0.5 · (1 + erf(x / √2))` (torch's `nn.GELU()` before opset 20):
///   `Div(x, √2)` or `Mul(x, 1/√2)` → `Erf` → `Add(·, 1)`, then the products with
///   `x` and `0.5` in any of the orders exporters use;
/// - SiLU / Swish, `x · sigmoid(x)`: `Sigmoid(x)` → `Mul(x, ·)`;
/// - HardSwish, `x · HardSigmoid(x)` with α = 1/6, β = 0.5: `HardSigmoid(x)` → `Mul(x, ·)`.
///
/// Every value between the nodes must be read by the next node only (and be
/// no graph output). The fused step computes the function directly, so its
/// output agrees with the nodes' to float32 rounding; the exact plan (which a
/// hook watches) still runs every node.
struct ActivationPattern {
    let activation: Activation
    /// What the fused step is called in messages (`Gelu(Erf)`, `Swish`, ...).
    let name: String
    /// The value activated.
    let input: String
    /// The nodes it replaces.
    let nodes: [Int]
    let output: String

    /// The patterns of `graph`. `known`: the values known at compile time (the
    /// constants compared); `runs`: the nodes compiled to a single step of their own.
    static func find(in graph: Graph, known: [String: Value], types: [String: ElementType], runs: Set<Int>) -> [ActivationPattern] {
        let nodes = graph.nodes, producers = graph.producers, consumers = graph.consumers
        let outputNames = Set(graph.outputNames)
        /// The node reading `value`, when it is the only reader and the value no graph output.
        func next(_ value: String) -> Int? {
            guard !outputNames.contains(value), let readers = consumers[value], readers.count == 1,
                  runs.contains(readers[0]) else { return nil }
            return readers[0]
        }
        func scalar(_ name: String) -> Float? {
            guard let v = known[name], v.type == .float32, v.shape.reduce(1, *) == 1 else { return nil }
            return v.floats[0]
        }
        func near(_ name: String, _ target: Double) -> Bool {
            guard let s = scalar(name) else { return false }
            return abs(Double(s) - target) <= 1e-6 * abs(target)
        }
        /// The operand of two-input node `j` other than `value`, when `value` is one of them (once).
        func other(_ j: Int, _ value: String) -> String? {
            let inputs = nodes[j].inputs
            guard inputs.count == 2, inputs[0] != inputs[1] else { return nil }
            return inputs[0] == value ? inputs[1] : inputs[1] == value ? inputs[0] : nil
        }
        func isMul(_ j: Int) -> Bool { nodes[j].op == .mul && runs.contains(j) }

        var found: [ActivationPattern] = []
        var taken = Set<Int>()
        func add(_ activation: Activation, _ name: String, _ input: String, _ members: [Int]) {
            guard types[input] == .float32, taken.isDisjoint(with: members) else { return }
            taken.formUnion(members)
            let last = members.max()!
            found.append(ActivationPattern(activation: activation, name: name, input: input, nodes: members.sorted(),
                                           output: nodes[last].output))
        }
        for (e, node) in nodes.enumerated() where runs.contains(e) {
            switch node.op.onnxType {
            case "Erf":
                // d = x / √2 (or x · 1/√2), e = erf(d), a = e + 1
                guard let d = producers[node.input], runs.contains(d), next(node.input) == e else { continue }
                let x: String
                if nodes[d].op.onnxType == "Div", nodes[d].inputs.count == 2, near(nodes[d].inputs[1], 2.0.squareRoot()) {
                    x = nodes[d].inputs[0]
                } else if isMul(d), nodes[d].inputs.count == 2, near(nodes[d].inputs[1], 0.5.squareRoot()) {
                    x = nodes[d].inputs[0]
                } else if isMul(d), nodes[d].inputs.count == 2, near(nodes[d].inputs[0], 0.5.squareRoot()) {
                    x = nodes[d].inputs[1]
                } else {
                    continue
                }
                guard let a = next(node.output), nodes[a].op == .add, let one = other(a, node.output), near(one, 1),
                      let p = next(nodes[a].output), isMul(p), let factor = other(p, nodes[a].output) else { continue }
                if factor == x, let q = next(nodes[p].output), isMul(q), let half = other(q, nodes[p].output), near(half, 0.5) {
                    add(.gelu(tanhApproximation: false), "Gelu(Erf)", x, [d, e, a, p, q])          // (x · (1 + erf)) · 0.5
                } else if near(factor, 0.5), let q = next(nodes[p].output), isMul(q), other(q, nodes[p].output) == x {
                    add(.gelu(tanhApproximation: false), "Gelu(Erf)", x, [d, e, a, p, q])          // x · ((1 + erf) · 0.5)
                } else if let h = producers[factor], isMul(h), next(factor) == p, let half = other(h, x), near(half, 0.5) {
                    add(.gelu(tanhApproximation: false), "Gelu(Erf)", x, [h, d, e, a, p])          // (x · 0.5) · (1 + erf)
                }
            case "Sigmoid", "HardSigmoid":
                let x = node.input
                guard let m = next(node.output), isMul(m), other(m, node.output) == x else { continue }
                if node.op.onnxType == "Sigmoid" {
                    add(.swish(alpha: 1), "Swish", x, [e, m])
                } else if abs(node.float("alpha", default: 0.2) - 1 / 6) <= 1e-6, node.float("beta", default: 0.5) == 0.5 {
                    add(.hardSwish, "HardSwish", x, [e, m])
                }
            default:
                continue
            }
        }
        return found
    }
}
