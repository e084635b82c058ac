/// A graph compiled for the executor: value ids, constants, and two plans —
/// `exact`, one step per node (used when a hook watches every value), and
/// `fused`, where a conv absorbs a following BatchNormalization, residual Add
/// and Relu/Clip (and a batch norm its activation), and nodes that feed no
/// graph output are dropped.
struct Program: Sendable {
    /// Value names by id.
    let names: [String]
    let ids: [String: Int]
    /// Float constants by id (parameters, Constant nodes).
    let constants: [(id: Int, tensor: Tensor)]
    /// Graph inputs: id, name, declared shape (nil or -1 dims = free).
    let inputs: [(id: Int, name: String, shape: [Int]?)]
    /// Graph outputs: id and name.
    let outputs: [(id: Int, name: String)]
    let exact: Plan
    let fused: Plan

    init(graph: Graph, opset: Int) throws {
        try graph.validate()
        let compiler = try NodeCompiler(graph: graph, opset: opset)
        var names: [String] = []
        var ids: [String: Int] = [:]
        func id(_ name: String) -> Int {
            if let i = ids[name] { return i }
            ids[name] = names.count
            names.append(name)
            return names.count - 1
        }
        inputs = graph.inputs.map { (id($0.name), $0.name, $0.shape) }
        var constants: [(id: Int, tensor: Tensor)] = []
        for (name, tensor) in compiler.floats.sorted(by: { $0.key < $1.key }) {
            constants.append((id(name), tensor))
        }
        self.constants = constants

        // Compile every node (even those feeding nothing: an unsupported op anywhere is an error).
        var kernels: [Int: (kernel: any Kernel, operands: [String])] = [:]
        for (i, node) in graph.nodes.enumerated() where node.op != .constant {
            kernels[i] = try compiler.compile(node)
        }
        for output in graph.outputs where compiler.ints[output.name] != nil && compiler.floats[output.name] == nil {
            throw AimetError.unsupported("graph output '\(output.name)' is an integer tensor; the executor computes in float32")
        }
        outputs = graph.outputs.map { (id($0.name), $0.name) }
        let keep = Set(outputs.map(\.id))

        // Exact plan: one step per node.
        var exactSteps: [Step] = []
        for (i, node) in graph.nodes.enumerated() {
            guard let (kernel, operands) = kernels[i] else { continue }
            exactSteps.append(Step(node: node.name, op: node.op.onnxType, kernel: kernel,
                                   operands: operands.map(id), output: id(node.output)))
        }
        exact = Plan(steps: exactSteps, keep: keep)

        // Fused plan.
        var fusedSteps = try Program.fuse(graph, compiler, kernels, id)
        // Drop steps whose value nothing needs.
        var needed = keep
        var live: [Bool] = Array(repeating: false, count: fusedSteps.count)
        for i in stride(from: fusedSteps.count - 1, through: 0, by: -1) where needed.contains(fusedSteps[i].output) {
            live[i] = true
            needed.formUnion(fusedSteps[i].operands)
        }
        fusedSteps = fusedSteps.enumerated().filter { live[$0.offset] }.map(\.element)
        fused = Plan(steps: fusedSteps, keep: keep)
        self.names = names
        self.ids = ids
    }

    /// Builds the fused steps in node order; a fused step takes the place of
    /// the last node it absorbs (its operands all exist by then).
    private static func fuse(_ graph: Graph, _ compiler: NodeCompiler,
                             _ kernels: [Int: (kernel: any Kernel, operands: [String])],
                             _ id: (String) -> Int) throws -> [Step] {
        let consumers = graph.consumers
        let outputNames = graph.outputNames
        let nodes = graph.nodes
        /// The single node reading `value`, when nothing else (nor the graph outputs) does.
        func soleConsumer(_ value: String) -> Int? {
            guard !outputNames.contains(value), let readers = consumers[value], readers.count == 1 else { return nil }
            return readers[0]
        }
        func activation(_ j: Int, reading value: String) -> Activation? {
            let node = nodes[j]
            guard node.input == value, node.outputs.count == 1 else { return nil }
            switch node.op {
            case .relu: return .relu
            case .clip: return try? compiler.clipActivation(node)
            case .leakyRelu: return .leakyRelu(node.float("alpha", default: 0.01))
            default: return nil
            }
        }

        var placed: [Int: Step] = [:]   // node index -> step emitted at that position
        var absorbed = Set<Int>()
        for (i, node) in nodes.enumerated() {
            guard let (kernel, operands) = kernels[i], !absorbed.contains(i) else { continue }
            if node.op == .conv, let conv = kernel as? ConvKernel {
                var chain = [node.op.onnxType]
                var value = node.output, last = i
                var batchNorm: BatchNormKernel?
                var residual: String?
                var act = Activation.none
                if let j = soleConsumer(value), !absorbed.contains(j), nodes[j].op == .batchNormalization, nodes[j].input == value,
                   let bn = kernels[j]?.kernel as? BatchNormKernel, bn.scale.count == conv.outChannels {
                    batchNorm = bn
                    value = nodes[j].output; last = j; absorbed.insert(j); chain.append("BatchNormalization")
                }
                if let j = soleConsumer(value), !absorbed.contains(j), nodes[j].op == .add, nodes[j].inputs.count == 2,
                   nodes[j].inputs[0] != nodes[j].inputs[1], nodes[j].inputs.contains(value) {
                    let other = nodes[j].inputs[0] == value ? nodes[j].inputs[1] : nodes[j].inputs[0]
                    if !other.isEmpty && compiler.ints[other] == nil {
                        residual = other
                        value = nodes[j].output; last = j; absorbed.insert(j); chain.append("Add")
                    }
                }
                if let j = soleConsumer(value), !absorbed.contains(j), let a = activation(j, reading: value) {
                    act = a
                    value = nodes[j].output; last = j; absorbed.insert(j); chain.append(nodes[j].op.onnxType)
                }
                if chain.count > 1 {
                    let fusedKernel = try ConvKernel(node: node, weight: compiler.constant(node, 1, "weight"),
                                                     bias: node.inputs.count > 2 && !node.inputs[2].isEmpty ? compiler.constant(node, 2, "bias") : nil,
                                                     batchNorm: batchNorm, activation: act, residual: residual != nil)
                    placed[last] = Step(node: nodes[last].name, op: chain.joined(separator: "+"), kernel: fusedKernel,
                                        operands: ([operands[0]] + (residual.map { [$0] } ?? [])).map(id), output: id(value))
                    continue
                }
            }
            if node.op == .batchNormalization, let bn = kernel as? BatchNormKernel,
               let j = soleConsumer(node.output), !absorbed.contains(j), let a = activation(j, reading: node.output) {
                absorbed.insert(j)
                placed[j] = Step(node: nodes[j].name, op: "BatchNormalization+\(nodes[j].op.onnxType)", kernel: bn.with(a),
                                 operands: operands.map(id), output: id(nodes[j].output))
                continue
            }
            placed[i] = Step(node: node.name, op: node.op.onnxType, kernel: kernel, operands: operands.map(id), output: id(node.output))
        }
        return placed.keys.sorted().map { placed[$0]! }
    }
}
