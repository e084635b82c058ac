/// Turns graph nodes into kernels: reads their attributes, resolves the
/// inputs that must be constant (weights, batch-norm statistics, Clip bounds,
/// Reshape's shape) and names the runtime operands.
struct NodeCompiler {
    let graph: Graph
    let opset: Int
    /// Float constants by value name: parameters and float `Constant` outputs.
    private(set) var floats: [String: Tensor]
    /// Integer constants by value name: integer initializers and `Constant` outputs.
    private(set) var ints: [String: IntTensor]
    /// `Constant` outputs the executor cannot represent, with the reason.
    private(set) var unreadable: [String: String] = [:]

    init(graph: Graph, opset: Int) throws {
        self.graph = graph
        self.opset = opset
        floats = graph.params
        ints = graph.intConstants
        for node in graph.nodes where node.op == .constant {
            guard node.outputs.count == 1 else { continue }
            let out = node.output
            let a = node.attributes
            if case .tensor(let t)? = a["value"] {
                floats[out] = t
            } else if ints[out] != nil {
                continue
            } else if let v = a["value_float"]?.floatValue, case .float? = a["value_float"] {
                floats[out] = try Tensor(shape: [], data: [v])
            } else if case .floats(let v)? = a["value_floats"] {
                floats[out] = try Tensor(shape: [v.count], data: v)
            } else if case .int(let v)? = a["value_int"] {
                ints[out] = IntTensor(shape: [], values: [v])
            } else if case .ints(let v)? = a["value_ints"] {
                ints[out] = IntTensor(shape: [v.count], values: v)
            } else {
                unreadable[out] = "Constant node '\(node.name)' holds a value the executor cannot read (only float32 and integer tensors)"
            }
        }
    }

    /// Whether a value is known at compile time.
    func isConstant(_ name: String) -> Bool { floats[name] != nil || ints[name] != nil }

    /// The kernel for `node` and the names of its runtime operands (in the
    /// order the kernel reads them). Throws `.unsupported` naming the node and
    /// op for anything the executor does not run.
    func compile(_ node: Node) throws -> (kernel: any Kernel, operands: [String]) {
        let what = "node '\(node.name)' (\(node.op))"
        let inputs = node.inputs
        func input(_ i: Int, _ role: String) throws -> String {
            guard i < inputs.count, !inputs[i].isEmpty else { throw AimetError.invalid("\(what) has no \(role) input") }
            return try floatOperand(inputs[i], node)
        }
        func optional(_ i: Int) -> String? { i < inputs.count && !inputs[i].isEmpty ? inputs[i] : nil }
        switch node.op {
        case .conv:
            let w = try constant(node, 1, "weight")
            let b = try optional(2).map { _ in try constant(node, 2, "bias") }
            return (try ConvKernel(node: node, weight: w, bias: b), [try input(0, "data")])
        case .convTranspose:
            let w = try constant(node, 1, "weight")
            let b = try optional(2).map { _ in try constant(node, 2, "bias") }
            return (try ConvTransposeKernel(node: node, weight: w, bias: b), [try input(0, "data")])
        case .gemm:
            var operands = [try input(0, "A"), try input(1, "B")]
            if let c = optional(2) { operands.append(try floatOperand(c, node)) }
            return (GemmKernel(node: node), operands)
        case .matMul:
            return (MatMulKernel(), [try input(0, "A"), try input(1, "B")])
        case .add, .sub, .mul, .other("Div"):
            let operation: BinaryKernel.Operation
            switch node.op {
            case .add: operation = .add
            case .sub: operation = .sub
            case .mul: operation = .mul
            default: operation = .div
            }
            return (BinaryKernel(operation), [try input(0, "A"), try input(1, "B")])
        case .prelu:
            return (BinaryKernel(.prelu), [try input(0, "X"), try input(1, "slope")])
        case .batchNormalization:
            try requireUnused(node.outputs.dropFirst(), node, "the training outputs (running mean / var)")
            let kernel = try BatchNormKernel(node: node, gamma: constant(node, 1, "scale"), beta: constant(node, 2, "B"),
                                             mean: constant(node, 3, "mean"), variance: constant(node, 4, "var"))
            return (kernel, [try input(0, "X")])
        case .relu:
            return (ActivationKernel(.relu), [try input(0, "X")])
        case .leakyRelu:
            return (ActivationKernel(.leakyRelu(node.float("alpha", default: 0.01))), [try input(0, "X")])
        case .sigmoid:
            return (ActivationKernel(.sigmoid), [try input(0, "X")])
        case .clip:
            return (ActivationKernel(try clipActivation(node)), [try input(0, "input")])
        case .softmax:
            return (SoftmaxKernel(node: node, opset: opset), [try input(0, "input")])
        case .maxPool, .averagePool:
            return (try PoolKernel(node: node, kind: node.op == .maxPool ? .max : .average), [try input(0, "X")])
        case .globalAveragePool:
            return (GlobalAveragePoolKernel(), [try input(0, "X")])
        case .flatten:
            return (try ViewKernel(.flatten(axis: node.int("axis", default: 1))), [try input(0, "input")])
        case .reshape:
            let shape: [Int]
            if let name = optional(1) {
                guard let t = ints[name] else {
                    if floats[name] != nil { throw AimetError.unsupported("\(what): the shape input '\(name)' is a float tensor, not int64") }
                    throw AimetError.unsupported("\(what): the shape input '\(name)' is computed at run time; the executor needs a constant shape (an int64 initializer or Constant node)")
                }
                guard t.shape.count == 1 else { throw AimetError.invalid("\(what): the shape input '\(name)' is not 1-D (shape \(t.shape))") }
                shape = t.values
            } else if let attribute = node.ints("shape") {
                shape = attribute
            } else {
                throw AimetError.invalid("\(what) has neither a shape input nor a shape attribute")
            }
            do {
                return (try ViewKernel(.reshape(shape: shape, allowZero: node.int("allowzero", default: 0) != 0)), [try input(0, "data")])
            } catch let error as AimetError {
                throw AimetError(error.kind, "\(what): \(error.message)")
            }
        case .concat:
            let operands = try inputs.filter { !$0.isEmpty }.map { try floatOperand($0, node) }
            guard !operands.isEmpty else { throw AimetError.invalid("\(what) has no inputs") }
            return (try ConcatKernel(node: node), operands)
        case .identity:
            return (try ViewKernel(.identity), [try input(0, "input")])
        case .dropout:
            try requireUnused(node.outputs.dropFirst(), node, "the mask output")
            // Opset 12+: training_mode (input 2) must be a constant false (or absent).
            if let name = optional(2) {
                guard let t = ints[name], t.values.count == 1 else {
                    throw AimetError.unsupported("\(what): training_mode '\(name)' is not a constant; the executor runs inference only")
                }
                guard t.values[0] == 0 else {
                    throw AimetError.unsupported("\(what): training_mode = 1 (the executor runs inference only)")
                }
            }
            return (try ViewKernel(.identity), [try input(0, "data")])
        default:
            throw AimetError.unsupported("\(what): the executor does not run '\(node.op)' nodes")
        }
    }

    /// The activation of a Clip node: bounds from inputs 1 and 2 (opset 11+,
    /// float scalars from initializers or Constant nodes; empty = unbounded) or
    /// from the `min` / `max` attributes (opset < 11, and graphs built in memory).
    func clipActivation(_ node: Node) throws -> Activation {
        func bound(_ index: Int, _ key: String, _ fallback: Float) throws -> Float {
            if index < node.inputs.count, !node.inputs[index].isEmpty {
                let name = node.inputs[index]
                guard let t = floats[name] else {
                    throw AimetError.unsupported("node '\(node.name)' (Clip): the \(key) bound '\(name)' is not a float constant")
                }
                guard t.count == 1 else {
                    throw AimetError.invalid("node '\(node.name)' (Clip): the \(key) bound '\(name)' has \(t.count) values, expected 1")
                }
                return t.data[0]
            }
            return node.attributes[key]?.floatValue ?? fallback
        }
        let lo = try bound(1, "min", -.greatestFiniteMagnitude)
        let hi = try bound(2, "max", .greatestFiniteMagnitude)
        if lo == 0 && hi == .greatestFiniteMagnitude { return .relu }
        return .clip(lo, hi)
    }

    /// The float constant at input `index` of `node`.
    func constant(_ node: Node, _ index: Int, _ role: String) throws -> Tensor {
        let what = "node '\(node.name)' (\(node.op))"
        guard index < node.inputs.count, !node.inputs[index].isEmpty else {
            throw AimetError.invalid("\(what) has no \(role) input")
        }
        let name = node.inputs[index]
        guard let t = floats[name] else {
            if ints[name] != nil { throw AimetError.unsupported("\(what): the \(role) '\(name)' is an integer tensor; the executor computes in float32") }
            if let reason = unreadable[name] { throw AimetError.unsupported("\(what): \(reason)") }
            throw AimetError.unsupported("\(what): the \(role) '\(name)' is computed at run time; the executor needs it constant (an initializer)")
        }
        return t
    }

    /// Checks that a runtime operand is a float value.
    private func floatOperand(_ name: String, _ node: Node) throws -> String {
        if ints[name] != nil && floats[name] == nil {
            throw AimetError.unsupported("node '\(node.name)' (\(node.op)) reads the integer tensor '\(name)'; the executor computes in float32")
        }
        if let reason = unreadable[name] { throw AimetError.unsupported("node '\(node.name)' (\(node.op)): \(reason)") }
        return name
    }

    /// Throws when any of `outputs` is read by a node or is a graph output.
    private func requireUnused(_ outputs: ArraySlice<String>, _ node: Node, _ what: String) throws {
        let graphOutputs = graph.outputNames
        for out in outputs where !out.isEmpty {
            if graphOutputs.contains(out) || graph.nodes.contains(where: { $0.inputs.contains(out) }) {
                throw AimetError.unsupported("node '\(node.name)' (\(node.op)): \(what) ('\(out)') is used; the executor runs inference only and does not produce it")
            }
        }
    }
}
