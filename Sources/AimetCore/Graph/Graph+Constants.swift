extension Graph {
    /// Turns the nodes that only restate a constant into constants: an
    /// Identity of a parameter or integer constant (the classic PyTorch
    /// exporter writes `b2 = Identity(b1)` where two initializers are equal),
    /// and a Constant node holding a float32 or integer tensor. Their outputs
    /// become parameters (a copy-on-write view of the same values) or integer
    /// constants, so that BN folding, scaling and the executor see constants
    /// where the file had nodes. Outputs that are graph outputs stay nodes.
    /// Returns the names of the removed nodes.
    @discardableResult
    mutating func foldConstantNodes() -> [String] {
        let graphOutputs = outputNames
        var removed: [String] = []
        var kept: [Node] = []
        for node in nodes {
            guard node.outputs.count == 1, !graphOutputs.contains(node.output), node.op.isDefaultDomain else {
                kept.append(node)
                continue
            }
            let out = node.output
            switch node.op {
            case .identity where node.inputs.count == 1 && params[node.input] != nil:
                params[out] = params[node.input]
            case .identity where node.inputs.count == 1 && intConstants[node.input] != nil && !kept.contains(where: { $0.outputs.contains(node.input) }):
                intConstants[out] = intConstants[node.input]
                constants.insert(out)
            case .constant where node.inputs.isEmpty:
                if case .tensor(let t)? = node.attributes["value"] {
                    params[out] = t
                } else if case .float(let v)? = node.attributes["value_float"] {
                    params[out] = Tensor(validShape: [], data: [v])
                } else if case .floats(let v)? = node.attributes["value_floats"] {
                    params[out] = Tensor(validShape: [v.count], data: v)
                } else if intConstants[out] != nil {
                    constants.insert(out)
                } else if case .int(let v)? = node.attributes["value_int"] {
                    intConstants[out] = IntTensor(shape: [], values: [v])
                    constants.insert(out)
                } else if case .ints(let v)? = node.attributes["value_ints"] {
                    intConstants[out] = IntTensor(shape: [v.count], values: v)
                    constants.insert(out)
                } else {
                    kept.append(node)
                    continue
                }
            default:
                kept.append(node)
                continue
            }
            removed.append(node.name)
        }
        nodes = kept
        return removed
    }
}
