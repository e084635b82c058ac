/// A graph compiled for the executor: value ids and element types,
/// constants, and two plans — `exact`, one step per node (used when a hook
/// watches every value), and `fused`, where a conv absorbs a following
/// BatchNormalization, residual Add and activation, a MatMul its bias and
/// activation, multi-node activations run as one step (`Fusion`), and nodes
/// that feed no graph output are dropped.
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
    /// The exact plan's steps of node `i` (in graph order) are `exactStart[i] ..< exactStart[i + 1]`.
    let exactStart: [Int]

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
        var exactStart: [Int] = []
        for (i, node) in graph.nodes.enumerated() {
            exactStart.append(exactSteps.count)
            for step in compiled[i] ?? [] {
                exactSteps.append(Step(node: node.name, op: node.op.onnxType, kernel: step.kernel,
                                       operands: step.operands.map(id), output: id(step.output)))
            }
        }
        exact = Plan(steps: exactSteps, keep: keep)
        self.exactStart = exactStart + [exactSteps.count]

        // Fused plan, without the steps whose value nothing needs.
        var fusedSteps = try Fusion(graph, compiled, contexts, types, known: known).steps(id)
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
