/// Builds the fused plan's steps from the compiled nodes. A fused step takes
/// the place of the last node it absorbs (its operands all exist by then):
///
/// - Conv [→ BatchNormalization] [→ Add of another value (a residual)] [→ activation]
///   is one `ConvKernel` (the batch norm folded into its weights, the rest its epilogue);
/// - MatMul by a constant matrix [→ Add of a constant row (a bias)] [→ activation]
///   is one `MatMulKernel` with that epilogue (a Linear layer as exporters write it);
/// - BatchNormalization → activation is one `BatchNormKernel`;
/// - an activation that an exporter spells out over several nodes is one
///   `ActivationKernel` (see `ActivationPattern`).
///
/// An "activation" here is one node of the catalogue's elementwise activations
/// (Relu, Clip with constant bounds, LeakyRelu, Sigmoid, HardSwish, Gelu, ...;
/// not PRelu) or one such pattern, when nothing else reads the value it activates.
struct Fusion {
    let nodes: [Node]
    let compiled: [Int: [CompiledStep]]
    let contexts: [Int: NodeContext]
    let types: [String: ElementType]
    let consumers: [String: [Int]]
    let outputNames: Set<String>
    /// Multi-node activations, and the one each node belongs to.
    let patterns: [ActivationPattern]
    let patternOf: [Int: Int]

    init(_ graph: Graph, _ compiled: [Int: [CompiledStep]], _ contexts: [Int: NodeContext], _ types: [String: ElementType],
         known: [String: Value]) {
        nodes = graph.nodes
        self.compiled = compiled
        self.contexts = contexts
        self.types = types
        consumers = graph.consumers
        outputNames = Set(graph.outputNames)
        let compiledAlone = Set(compiled.compactMap { index, steps in
            steps.count == 1 && steps[0].output == graph.nodes[index].output ? index : nil
        })
        patterns = ActivationPattern.find(in: graph, known: known, types: types, runs: compiledAlone)
        var patternOf: [Int: Int] = [:]
        for (p, pattern) in patterns.enumerated() {
            for j in pattern.nodes { patternOf[j] = p }
        }
        self.patternOf = patternOf
    }

    /// The single node reading `value`, when nothing else (nor the graph outputs) does.
    func soleConsumer(_ value: String) -> Int? {
        guard !outputNames.contains(value), let readers = consumers[value], readers.count == 1 else { return nil }
        return readers[0]
    }

    /// The one kernel of node `j`, when it compiled to a single runtime step producing its output.
    func kernel(_ j: Int) -> (any Kernel)? {
        guard let steps = compiled[j], steps.count == 1, steps[0].output == nodes[j].output else { return nil }
        return steps[0].kernel
    }

    /// An activation applied to `value` and to nothing else: the nodes computing it and their output.
    struct Tail {
        var activation: Activation
        var nodes: [Int]
        var output: String
        var op: String
    }

    /// The activation that the readers of `value` apply to it, when they do only that.
    func activation(after value: String, absorbed: Set<Int>) -> Tail? {
        guard !outputNames.contains(value), let readers = consumers[value], !readers.isEmpty else { return nil }
        let j = readers[0]
        if readers.count == 1, !absorbed.contains(j), nodes[j].input == value, nodes[j].outputs.count == 1,
           kernel(j) != nil, let context = contexts[j],
           case .elementwise(let a)? = OpCatalogue.entry(nodes[j].op)?.activation?(context) {
            return Tail(activation: a, nodes: [j], output: nodes[j].output, op: nodes[j].op.onnxType)
        }
        guard let p = patternOf[j], patterns[p].input == value, readers.allSatisfy({ patternOf[$0] == p }),
              patterns[p].nodes.allSatisfy({ !absorbed.contains($0) }) else { return nil }
        return Tail(activation: patterns[p].activation, nodes: patterns[p].nodes, output: patterns[p].output,
                    op: patterns[p].name)
    }

    func steps(_ id: (String) -> Int) throws -> [Step] {
        var placed: [Int: [Step]] = [:]   // node index -> steps emitted at that position
        var absorbed = Set<Int>()
        func place(_ kernel: any Kernel, ops: [String], operands: [String], last: Int, output: String) {
            placed[last] = [Step(node: nodes[last].name, op: ops.joined(separator: "+"), kernel: kernel,
                                 operands: operands.map(id), output: id(output))]
        }
        for (i, node) in nodes.enumerated() {
            guard let steps = compiled[i], !absorbed.contains(i) else { continue }
            if let conv = kernel(i) as? ConvKernel, let context = contexts[i] {
                var chain = [node.op.onnxType]
                var value = node.output, last = i
                var batchNorm: BatchNormKernel?
                var residual: String?
                var act = Activation.none
                if let j = soleConsumer(value), !absorbed.contains(j), nodes[j].op == .batchNormalization, nodes[j].input == value,
                   let bn = kernel(j) as? BatchNormKernel, bn.scale.count == conv.outChannels {
                    batchNorm = bn
                    value = nodes[j].output; last = j; absorbed.insert(j); chain.append("BatchNormalization")
                }
                if let j = soleConsumer(value), !absorbed.contains(j), nodes[j].op == .add, nodes[j].inputs.count == 2, kernel(j) != nil,
                   nodes[j].inputs[0] != nodes[j].inputs[1], nodes[j].inputs.contains(value) {
                    let other = nodes[j].inputs[0] == value ? nodes[j].inputs[1] : nodes[j].inputs[0]
                    if !other.isEmpty && types[other] == .float32 {
                        residual = other
                        value = nodes[j].output; last = j; absorbed.insert(j); chain.append("Add")
                    }
                }
                if let tail = activation(after: value, absorbed: absorbed) {
                    act = tail.activation
                    value = tail.output; last = tail.nodes.max()!; absorbed.formUnion(tail.nodes); chain.append(tail.op)
                }
                if chain.count > 1 {
                    let fusedKernel = try ConvKernel(node: node, weight: context.floatConstant(1, "weight"),
                                                     bias: context.optional(2) != nil ? context.floatConstant(2, "bias") : nil,
                                                     batchNorm: batchNorm, activation: act, residual: residual != nil)
                    place(fusedKernel, ops: chain, operands: [steps[0].operands[0]] + (residual.map { [$0] } ?? []),
                          last: last, output: value)
                    continue
                }
            }
            if let matMul = kernel(i) as? MatMulKernel, let context = contexts[i], let b = context.constant(1),
               b.type == .float32, b.shape.count == 2 {
                var chain = [node.op.onnxType]
                var value = node.output, last = i
                var bias: [Float]?
                var act = Activation.none
                if let j = soleConsumer(value), !absorbed.contains(j), nodes[j].op == .add, nodes[j].inputs.count == 2,
                   kernel(j) != nil, let jContext = contexts[j] {
                    let other = nodes[j].inputs[0] == value ? 1 : 0
                    if let row = jContext.constant(other), row.type == .float32, row.shape == [b.shape[1]] {
                        bias = row.floats
                        value = nodes[j].output; last = j; absorbed.insert(j); chain.append("Add")
                    }
                }
                if let tail = activation(after: value, absorbed: absorbed) {
                    act = tail.activation
                    value = tail.output; last = tail.nodes.max()!; absorbed.formUnion(tail.nodes); chain.append(tail.op)
                }
                if chain.count > 1 {
                    place(matMul.with(bias: bias, activation: act), ops: chain, operands: steps[0].operands, last: last,
                          output: value)
                    continue
                }
            }
            if let bn = kernel(i) as? BatchNormKernel, let tail = activation(after: node.output, absorbed: absorbed) {
                absorbed.formUnion(tail.nodes)
                place(bn.with(tail.activation), ops: ["BatchNormalization", tail.op], operands: steps[0].operands,
                      last: tail.nodes.max()!, output: tail.output)
                continue
            }
            if let p = patternOf[i], patterns[p].nodes.allSatisfy({ !absorbed.contains($0) }) {
                let pattern = patterns[p]
                absorbed.formUnion(pattern.nodes)
                place(ActivationKernel(pattern.activation), ops: [pattern.name], operands: [pattern.input],
                      last: pattern.nodes.max()!, output: pattern.output)
                continue
            }
            placed[i] = steps.map { Step(node: node.name, op: node.op.onnxType, kernel: $0.kernel, operands: $0.operands.map(id), output: id($0.output)) }
        }
        return placed.keys.sorted().flatMap { placed[$0]! }
    }
}
