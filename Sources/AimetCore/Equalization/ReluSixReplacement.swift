/// ReLU6 → ReLU: CLS is not valid across ReLU6, which is not
/// positively homogeneous, so auto mode turns `Clip(0, 6)` into `Relu`.
public enum ReluSixReplacement {
    /// Rewrites every `Clip` with bounds exactly (0, 6) as `Relu` and returns
    /// the rewritten node names. `region` limits it to those node indices.
    @discardableResult
    public static func apply(_ graph: inout Graph, region: Set<Int>? = nil) -> [String] {
        var replaced: [String] = []
        for i in graph.nodes.indices where region?.contains(i) ?? true {
            guard graph.nodes[i].op == .clip, let bounds = graph.clipBounds(i), bounds == (0, 6) else { continue }
            graph.nodes[i].op = .relu
            graph.nodes[i].inputs = [graph.nodes[i].input]
            graph.nodes[i].attributes = [:]
            graph.nodes[i].rewritten = true
            replaced.append(graph.nodes[i].name)
        }
        graph.removeUnused()
        return replaced
    }
}

extension Graph {
    /// The (min, max) of a Clip node, from attributes (opset < 11), parameter
    /// inputs or Constant nodes; nil where a bound is absent or computed.
    func clipBounds(_ i: Int) -> (Float, Float)? {
        let node = nodes[i]
        if let lo = node.attributes["min"]?.floatValue, let hi = node.attributes["max"]?.floatValue { return (lo, hi) }
        guard node.inputs.count == 3, let lo = scalar(node.inputs[1]), let hi = scalar(node.inputs[2]) else { return nil }
        return (lo, hi)
    }

    /// The value of a one-element float parameter or Constant node output.
    func scalar(_ value: String) -> Float? {
        if let t = params[value] { return t.count == 1 ? t.data[0] : nil }
        guard let p = producers[value], nodes[p].op == .constant else { return nil }
        if case .tensor(let t)? = nodes[p].attributes["value"], t.count == 1 { return t.data[0] }
        return nodes[p].attributes["value_float"]?.floatValue
    }
}
