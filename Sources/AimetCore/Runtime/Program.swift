/// A graph compiled for the executor: value ids and element types,
/// constants, and two plans — `exact`, one step per node (used when a hook
/// watches every value), and `fused`, where a conv absorbs a following
/// BatchNormalization, residual Add and Relu/Clip (and a batch norm its
/// activation), and nodes that feed no graph output are dropped.
///
/// Every node is compiled through its `OpCatalogue` entry, in graph order.
/// A step whose operands are all known at compile time (parameters, Constant
/// nodes, values folded before it) is evaluated right then and becomes a
/// constant itself: integer shape arithmetic on constants, weights computed
/// from other constants (a Transpose of an initializer) and Constant chains
/// never reach a plan.
struct Program: Sendable {
    /// Value names by id.
    let names: [String]
    let ids: [String: Int]
    /// Element types by id.
    let types: [ElementType]
    /// Values known at compile time, by id (parameters, Constant nodes, folded steps).
    let constants: [(id: Int, value: Value)]
    /// Graph inputs: id, name, declared shape (nil or -1 dims = free), element
    /// type, and whether the run's value is known before it (integer and bool
    /// inputs, and float inputs declared as at most 16 values of rank 0 or 1 —
    /// Resize's scales, a Clip bound — rather than data with a batch axis).
    let inputs: [(id: Int, name: String, shape: [Int]?, type: ElementType, knownBeforeRun: Bool)]
    /// Graph outputs: id and name.
    let outputs: [(id: Int, name: String)]
    let exact: Plan
    let fused: Plan

    /// Folding stops at constants larger than this (elements): an Expand of a constant to a huge shape stays a step.
    static let foldLimit = 1 << 24

    init(graph: Graph, opset: Int) throws {
        try graph.validate()
        var names: [String] = []
        var ids: [String: Int] = [:]
        func id(_ name: String) -> Int {
            if let i = ids[name] { return i }
            ids[name] = names.count
            names.append(name)
            return names.count - 1
        }

        // Values known before any node runs.
        // (Constant nodes' values too: the Constant entry reads its own output's value from here.)
        var known = graph.knownValues()
        var types = known.mapValues(\.type)
        var inputs: [(id: Int, name: String, shape: [Int]?, type: ElementType, knownBeforeRun: Bool)] = []
        for input in graph.inputs {
            guard let type = ElementType(onnx: input.elementType) else {
                throw AimetError.unsupported("graph input '\(input.name)' is \(ElementType.onnxName(input.elementType)); the executor takes float32, integer and bool inputs")
            }
            types[input.name] = type
            let parameterLike = input.shape.map { $0.count <= 1 && $0.allSatisfy { $0 >= 0 } && $0.reduce(1, *) <= 16 } ?? false
            inputs.append((id(input.name), input.name, input.shape, type, type != .float32 || parameterLike))
        }
        self.inputs = inputs

        // Compile every node (even those feeding nothing: an unsupported op anywhere is an error), folding as we go.
        let used = Set(graph.nodes.flatMap(\.inputs)).union(graph.outputNames)
        var compiled: [Int: [CompiledStep]] = [:]
        var contexts: [Int: NodeContext] = [:]
        for (i, node) in graph.nodes.enumerated() {
            let context = NodeContext(node: node, opset: opset, types: types, constants: known, used: used)
            guard let entry = OpCatalogue.entry(node.op) else {
                let domain = node.op.isDefaultDomain ? "" : " of a custom domain"
                throw AimetError.unsupported("\(context.what): the executor does not run '\(node.op)' nodes\(domain)")
            }
            for name in node.inputs where !name.isEmpty && types[name] == nil {
                throw AimetError.unsupported("\(context.what): input '\(name)' is of an element type the executor does not compute with (float32, integers and bool only)")
            }
            let steps = try entry.compile(context)
            var runtime: [CompiledStep] = []
            for step in steps {
                let type: ElementType
                do {
                    type = try step.kernel.outputType(step.operands.map { types[$0] ?? .float32 })
                } catch let error as AimetError {
                    throw AimetError(error.kind, "\(context.what): \(error.message)")
                }
                types[step.output] = type
                if let value = try Program.fold(step, known, context) {
                    known[step.output] = value
                } else {
                    runtime.append(step)
                }
            }
            contexts[i] = NodeContext(node: node, opset: opset, types: types, constants: known, used: used)
            if !runtime.isEmpty { compiled[i] = runtime }
        }
        for output in graph.outputs where types[output.name] == nil {
            throw AimetError.invalid("graph output '\(output.name)' is not computed")
        }
        outputs = graph.outputs.map { (id($0.name), $0.name) }
        let keep = Set(outputs.map(\.id))

        // Exact plan: one step per compiled step, in node order.
        var exactSteps: [Step] = []
        for (i, node) in graph.nodes.enumerated() {
            for step in compiled[i] ?? [] {
                exactSteps.append(Step(node: node.name, op: node.op.onnxType, kernel: step.kernel,
                                       operands: step.operands.map(id), output: id(step.output)))
            }
        }
        exact = Plan(steps: exactSteps, keep: keep)

        // Fused plan, without the steps whose value nothing needs.
        var fusedSteps = try Program.fuse(graph, compiled, contexts, types, id)
        var needed = keep
        var live: [Bool] = Array(repeating: false, count: fusedSteps.count)
        for i in stride(from: fusedSteps.count - 1, through: 0, by: -1) where needed.contains(fusedSteps[i].output) {
            live[i] = true
            needed.formUnion(fusedSteps[i].operands)
        }
        fusedSteps = fusedSteps.enumerated().filter { live[$0.offset] }.map(\.element)
        fused = Plan(steps: fusedSteps, keep: keep)

        // Constants that a plan reads or a graph output names.
        let read = Set(exactSteps.flatMap(\.operands)).union(fusedSteps.flatMap(\.operands)).union(keep)
        var constants: [(id: Int, value: Value)] = []
        for (name, value) in known.sorted(by: { $0.key < $1.key }) {
            if let i = ids[name], read.contains(i) { constants.append((i, value)) }
        }
        self.constants = constants
        self.names = names
        self.ids = ids
        self.types = names.map { types[$0] ?? .float32 }
    }

    /// The value of a step whose operands are all known, or nil when it must run.
    private static func fold(_ step: CompiledStep, _ known: [String: Value], _ context: NodeContext) throws -> Value? {
        let shapeOnly = step.kernel.shapeOnlyOperands
        guard step.operands.enumerated().allSatisfy({ known[$0.element] != nil && !shapeOnly.contains($0.offset) }) else { return nil }
        do {
            let values = step.operands.map { known[$0]! }
            let operands = values.map { Operand(shape: $0.shape, type: $0.type, value: $0) }
            let shape = try step.kernel.outputShape(operands)
            guard try Shapes.count(shape) <= foldLimit else { return nil }
            return try Evaluate.step(step.kernel, values, shapes: values.map(\.shape), shape: shape,
                                     type: step.kernel.outputType(values.map(\.type)))
        } catch let error as AimetError {
            throw AimetError(error.kind, "\(context.what): \(error.message)")
        }
    }

    /// Builds the fused steps in node order; a fused step takes the place of
    /// the last node it absorbs (its operands all exist by then).
    private static func fuse(_ graph: Graph, _ compiled: [Int: [CompiledStep]], _ contexts: [Int: NodeContext],
                             _ types: [String: ElementType], _ id: (String) -> Int) throws -> [Step] {
        let consumers = graph.consumers
        let outputNames = graph.outputNames
        let nodes = graph.nodes
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
        /// The elementwise activation node `j` applies to `value`, as its catalogue entry describes it
        /// (Relu, Clip with constant bounds, LeakyRelu, Sigmoid, HardSwish, Gelu, ...; not PRelu).
        func activation(_ j: Int, reading value: String) -> Activation? {
            let node = nodes[j]
            guard node.input == value, node.outputs.count == 1, kernel(j) != nil, let context = contexts[j],
                  case .elementwise(let a)? = OpCatalogue.entry(node.op)?.activation?(context) else { return nil }
            return a
        }

        var placed: [Int: [Step]] = [:]   // node index -> steps emitted at that position
        var absorbed = Set<Int>()
        for (i, node) in nodes.enumerated() {
            guard let steps = compiled[i], !absorbed.contains(i) else { continue }
            if steps.count == 1, steps[0].output == node.output, let conv = steps[0].kernel as? ConvKernel, let context = contexts[i] {
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
                if let j = soleConsumer(value), !absorbed.contains(j), let a = activation(j, reading: value) {
                    act = a
                    value = nodes[j].output; last = j; absorbed.insert(j); chain.append(nodes[j].op.onnxType)
                }
                if chain.count > 1 {
                    let fusedKernel = try ConvKernel(node: node, weight: context.floatConstant(1, "weight"),
                                                     bias: context.optional(2) != nil ? context.floatConstant(2, "bias") : nil,
                                                     batchNorm: batchNorm, activation: act, residual: residual != nil)
                    placed[last] = [Step(node: nodes[last].name, op: chain.joined(separator: "+"), kernel: fusedKernel,
                                         operands: ([steps[0].operands[0]] + (residual.map { [$0] } ?? [])).map(id), output: id(value))]
                    continue
                }
            }
            if steps.count == 1, node.op == .batchNormalization, let bn = steps[0].kernel as? BatchNormKernel,
               let j = soleConsumer(node.output), !absorbed.contains(j), let a = activation(j, reading: node.output) {
                absorbed.insert(j)
                placed[j] = [Step(node: nodes[j].name, op: "BatchNormalization+\(nodes[j].op.onnxType)", kernel: bn.with(a),
                                  operands: steps[0].operands.map(id), output: id(nodes[j].output))]
                continue
            }
            placed[i] = steps.map { Step(node: node.name, op: node.op.onnxType, kernel: $0.kernel, operands: $0.operands.map(id), output: id($0.output)) }
        }
        return placed.keys.sorted().flatMap { placed[$0]! }
    }
}

/// Runs one kernel on values held in memory (compile-time folding and the
/// values computed from shapes before a run).
enum Evaluate {
    /// `operands` supply the data (a placeholder for an operand read only for its shape), `shapes` the operand shapes.
    static func step(_ kernel: any Kernel, _ operands: [Value], shapes: [[Int]], shape: [Int], type: ElementType) throws -> Value {
        let slots = shape.reduce(1, *) * type.slots
        if kernel.isView, let first = operands.first {
            return Value(type: type, shape: shape, slots: first.slots)
        }
        let workspace = Workspace()
        let data = try Executor.withPointers(operands.map(\.slots)) { pointers in
            try [Float](unsafeUninitializedCapacity: slots) { buffer, initialized in
                if let base = buffer.baseAddress, slots > 0 {
                    try kernel.run(KernelArgs(inputs: pointers, shapes: shapes, output: base, outputShape: shape,
                                              workers: 1, workspaces: [workspace]))
                }
                initialized = slots
            }
        }
        return Value(type: type, shape: shape, slots: data)
    }
}
