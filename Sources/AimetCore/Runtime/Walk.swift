/// One run of a plan over whole tensors, step by step, that can stop between
/// steps and go on later.
///
/// `Executor.run` with a hook walks the exact plan from the first step to the
/// last in one go. AdaRound keeps one walk per calibration batch and moves
/// each on layer by layer (`Executor.advance`): the values a later step reads
/// stay in the walk, so the model runs once over all its layers instead of
/// once from its start per layer. A walk may go on with another compilation
/// of the same graph (`Executor.advance` with a different executor): AdaRound
/// recompiles after changing a layer's weights, before that layer's step runs.
final class Walk {
    /// The compilation whose steps ran last (its constants are those in `values`).
    private(set) var executor: Executor
    let exact: Bool
    let table: ShapeTable
    /// Values by id: nil once read for the last time (or not yet computed).
    private(set) var values: [[Float]?]
    /// Values whose array the walk allocated (not a constant's, an input's or a view's).
    private var owned: [Bool]
    /// The next step to run.
    private(set) var next = 0
    /// Dead arrays reused by size, or nil: a dead array is freed (a long-lived
    /// walk must not hoard arrays of sizes it will not meet again).
    var pool: [Int: [[Float]]]?

    var program: Program { executor.program }
    var plan: Plan { exact ? program.exact : program.fused }

    init(executor: Executor, exact: Bool, table: ShapeTable, inputs: [[Float]], pool: [Int: [[Float]]]?) {
        self.executor = executor
        let program = executor.program
        self.exact = exact
        self.table = table
        self.pool = pool
        values = [[Float]?](repeating: nil, count: program.names.count)
        owned = [Bool](repeating: false, count: program.names.count)
        for c in program.constants { values[c.id] = c.value.slots }
        for (id, value) in table.known { values[id] = value.slots }
        for (k, input) in program.inputs.enumerated() { values[input.id] = inputs[k] }
    }

    /// Goes on with `other` (nothing to do when it is the walk's own), a
    /// compilation of the same graph with other parameter values: its steps
    /// run from here on, its constants replace those still to be read.
    func resume(with other: Executor) throws {
        guard other !== executor else { return }
        let new = other.program, old = program
        guard new.names == old.names, new.exact.steps.count == old.exact.steps.count,
              new.fused.steps.count == old.fused.steps.count else {
            throw AimetError(.internalError, "a walk can go on only with a compilation of the same graph")
        }
        for c in new.constants where values[c.id] != nil { values[c.id] = c.value.slots }
        executor = other
    }

    /// The arrays the walk still holds that it allocated, for the next run's pool.
    func deadArrays() -> [Int: [[Float]]] {
        var dead = pool ?? [:]
        let outputs = Set(program.outputs.map(\.id))
        for v in values.indices where owned[v] && !outputs.contains(v) {
            if let array = values[v] { dead[array.count, default: []].append(array) }
        }
        return dead
    }

    /// Runs the steps before `end`. `hook` sees (and may change) each float
    /// value computed; the values whose ids are in `keep` are copied into
    /// `kept` as they are computed (before a step that reads them last lets them go).
    func advance(to end: Int, workers: Int, workspaces: [Workspace], hook: ((String, inout Tensor) throws -> Void)?,
                 keep: Set<Int>, kept: inout [Int: [Float]]) throws {
        let program = self.program, plan = self.plan
        let shapes = table.shapes
        let outputs = Set(program.outputs.map(\.id))
        while next < end {
            let i = next
            let step = plan.steps[i]
            next += 1
            if table.isKnown(step) { continue }
            var operands: [[Float]] = []
            operands.reserveCapacity(step.operands.count)
            for v in step.operands {
                guard let data = values[v] else {
                    throw AimetError(.internalError, "node '\(step.node)' (\(step.op)): operand '\(program.names[v])' has no value")
                }
                operands.append(data)
            }
            if step.kernel.isView {
                values[step.output] = operands[0]
            } else {
                let outShape = shapes[step.output]
                let count = table.slots(step.output, program)
                let operandShapes = step.operands.map { shapes[$0] }
                // (A pooled array still shared with a view or a value the hook kept is
                // copied on write, so nobody else sees the new contents.)
                var output = pool?[count]?.popLast()
                try Executor.withPointers(operands) { pointers in
                    func compute(_ base: UnsafeMutablePointer<Float>) throws {
                        try step.named {
                            try step.kernel.run(KernelArgs(inputs: pointers, shapes: operandShapes, output: base, outputShape: outShape,
                                                           workers: workers, workspaces: workspaces))
                        }
                    }
                    if output != nil {
                        try output!.withUnsafeMutableBufferPointer { if let base = $0.baseAddress { try compute(base) } }
                    } else {
                        output = try [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
                            if let base = buffer.baseAddress { try compute(base) }
                            initialized = count
                        }
                    }
                }
                values[step.output] = output
                owned[step.output] = true
            }
            if let hook, program.types[step.output] == .float32 { try watch(step.output, hook) }
            if keep.contains(step.output) { kept[step.output] = values[step.output] }
            for v in plan.releases[i] {
                if pool != nil, owned[v] && !outputs.contains(v), let array = values[v] { pool![array.count, default: []].append(array) }
                values[v] = nil
            }
        }
    }

    /// Takes value `id` out of the walk (it holds no reference to it until `put` gives it back).
    func take(_ id: Int) -> [Float]? {
        defer { values[id] = nil }
        return values[id]
    }

    /// Gives back a value taken out.
    func put(_ id: Int, _ data: [Float]) { values[id] = data }

    /// Hands a float value to the hook (moved out of the table, so an in-place
    /// change does not copy) and takes it back.
    func watch(_ id: Int, _ hook: (String, inout Tensor) throws -> Void) throws {
        guard let data = values[id] else { return }
        let shape = table.shapes[id]
        values[id] = nil
        var tensor = Tensor(validShape: shape, data: data)
        try hook(program.names[id], &tensor)
        guard tensor.shape == shape, tensor.data.count == data.count else {
            throw AimetError.shape("the hook changed '\(program.names[id])' from shape \(shape) to \(tensor.shape) with \(tensor.data.count) values; it may change values only")
        }
        values[id] = tensor.data
    }
}

extension Executor {
    /// A walk of the exact plan on one set of inputs (checked as `run` checks
    /// them), before its first step. It keeps no pool of dead arrays.
    func walk(_ inputs: [String: Tensor]) throws -> Walk {
        let (given, arrays) = try checked(inputs.mapValues { Value($0) })
        let table = try prepare(exact: true, plan: program.exact, inputs: given).table
        return Walk(executor: self, exact: true, table: table, inputs: arrays, pool: nil)
    }

    /// Runs `walk` (made by this executor, or by one compiled from the same
    /// graph with other parameter values: it goes on with this one's) up to
    /// the first step of node `node` (graph order; `graph.nodes.count`: to the
    /// end). Returns the float values among `keep` computed on the way.
    func advance(_ walk: Walk, toNode node: Int, keep: Set<String>) throws -> [String: Tensor] {
        try walk.resume(with: self)
        let ids = Set(keep.compactMap { program.ids[$0] })
        var kept: [Int: [Float]] = [:]
        let workspaces = acquireWorkspaces(threads)
        defer { releaseWorkspaces(workspaces) }
        try BLAS.singleThreaded {
            try walk.advance(to: program.exactStart[node], workers: threads, workspaces: workspaces, hook: nil,
                             keep: ids, kept: &kept)
        }
        var result: [String: Tensor] = [:]
        for (id, data) in kept where program.types[id] == .float32 {
            result[program.names[id]] = Tensor(validShape: walk.table.shapes[id], data: data)
        }
        return result
    }

    /// The float value `name` as `walk` holds it now (nil: not computed yet, or read for the last
    /// time), taken out of the walk: it must be given back (`giveBack`) before the walk goes on.
    func take(_ walk: Walk, _ name: String) -> Tensor? {
        guard let id = program.ids[name], program.types[id] == .float32, let data = walk.take(id) else { return nil }
        return Tensor(validShape: walk.table.shapes[id], data: data)
    }

    /// Gives a value taken out of `walk` back to it.
    func giveBack(_ walk: Walk, _ name: String, _ data: [Float]) {
        if let id = program.ids[name] { walk.put(id, data) }
    }
}
