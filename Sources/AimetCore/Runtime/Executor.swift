import Synchronization

/// Runs a `Graph` on float32 CPU tensors with ONNX semantics.
///
/// Compilation (`init`) checks every op, resolves constant inputs and
/// prepares weights (batch norms folded into the convs before them, Winograd
/// transforms); `run` infers shapes from the inputs (any batch size), then
/// executes one of two plans:
///
/// - without a hook, the *fused* plan (`Fusion`): a Conv absorbs a following
///   BatchNormalization (folded into its weights), a residual Add and an
///   activation; a MatMul by a constant matrix its bias and activation; a lone
///   BatchNormalization its activation; an activation spelled over several
///   nodes (GELU's Erf chain, x·sigmoid(x)) runs as one step; nodes that feed
///   no graph output are skipped. When every op treats axis 0
///   as an independent batch, the plan runs in stages that cut the batch into
///   chunks the worker threads take end to end (see `Schedule`): a few images
///   while activations are large, so they stay in cache, more once they are
///   small, so GEMMs stay wide. Memory comes from arenas reused run after run.
/// - with a hook, the *exact* plan: one step per node, the whole batch at a
///   time, kernels split over the worker threads; the hook sees (and may
///   change) every graph input and every node output.
///
/// The two plans agree to float32 rounding (folding a batch norm and Winograd
/// reorder the arithmetic; compared with onnxruntime, outputs agree to about
/// 1e-6 relative).
///
/// Kernels: convolutions as im2col + OpenBLAS `sgemm` (column tiles sized to
/// the L2 cache, several images per GEMM on small planes), 3×3 stride-1 convs
/// by Winograd F(4×4, 3×3), depthwise convs by a direct vectorized kernel,
/// transposed convs as GEMM + col2im; see each kernel type for the math. The
/// depthwise kernels (3×3, and any window), the direct first-conv kernel (3×3
/// stride 2 over a few input channels), the conv epilogue (bias, residual,
/// clamp) and the vectorized activations are C
/// (Sources/CKernels) built for AVX-512, AVX2 and baseline x86-64, the best
/// the processor has chosen at run time.
///
/// Threads: `threads` workers (default one per processor) share out each
/// kernel's work (chunks of the batch, images, column tiles, output channels,
/// Winograd blocks); OpenBLAS is set to one thread while a run lasts
/// (`BLAS.singleThreaded`).
///
/// Thread safety: `run` may be called from several threads at once; each call
/// takes its own scratch buffers from a shared pool.
public final class Executor: Sendable {
    /// The graph as compiled (a copy: later changes to the caller's graph do not affect the executor).
    public let graph: Graph
    /// Worker threads per `run`.
    public let threads: Int
    let program: Program
    let constantStore: ConstantStore
    private let shapeCache = Mutex<[ShapeKey: Prepared]>([:])
    private let workspacePool = Mutex<[Workspace]>([])
    /// Dead value arrays of the last hooked (whole-batch) run, by element count.
    private let arrayPool = Mutex<[Int: [[Float]]]>([:])

    private struct ShapeKey: Hashable {
        var exact: Bool
        var shapes: [[Int]]
        /// The integer and bool inputs' values (shape arithmetic may read them).
        var values: [Value?]
    }

    /// Shapes (and, for the fused plan, the schedule) for one set of input shapes.
    struct Prepared: Sendable {
        var table: ShapeTable
        var schedule: Schedule?
    }

    /// Floats per value a chunk aims at (`Schedule`): 2^18 floats = 1 MB, an L2 cache.
    let chunkBudget: Int

    /// Compiles a graph: checks every op is supported (else `AimetError(.unsupported)`
    /// naming node and op), resolves constant inputs, prepares weights. The graph is copied.
    /// - Parameters:
    ///   - opset: the ONNX opset whose semantics apply where they changed
    ///     (Softmax's axis before 13); graphs built in memory follow opset 17.
    ///   - threads: worker threads per run; 0 = one per processor.
    public convenience init(graph: Graph, opset: Int = 17, threads: Int = 0) throws {
        try self.init(graph: graph, opset: opset, threads: threads, chunkBudget: 1 << 18)
    }

    /// `chunkBudget`: floats per value a chunk of the batch aims at (tests make it tiny to force many stages).
    init(graph: Graph, opset: Int, threads: Int, chunkBudget: Int) throws {
        guard threads >= 0 else { throw AimetError.invalid("threads must be >= 0 (0 = one per processor), got \(threads)") }
        self.chunkBudget = chunkBudget
        self.graph = graph
        self.threads = threads == 0 ? Parallel.processorCount : threads
        program = try Program(graph: graph, opset: opset)
        constantStore = ConstantStore(program.constants, used: Set(program.fused.steps.flatMap(\.operands)))
    }

    /// Compiles a model's graph with the model's opset.
    public convenience init(model: Model, threads: Int = 0) throws {
        try self.init(graph: model.graph, opset: model.onnxOpset ?? exportOpset, threads: threads)
    }

    /// The names of the graph inputs `run` expects.
    public var inputNames: [String] { program.inputs.map(\.name) }
    /// The names of the graph outputs `run` returns.
    public var outputNames: [String] { program.outputs.map(\.name) }
    /// The element type of each graph input, by name.
    public var inputTypes: [String: ElementType] { Dictionary(uniqueKeysWithValues: program.inputs.map { ($0.name, $0.type) }) }

    /// The float32 values a run computes from its float inputs' data (node
    /// outputs neither folded at compile time nor computable from shapes
    /// alone): the values a hook sees on every run.
    public var computedFloatValues: Set<String> {
        var data = Set(program.inputs.filter { $0.type == .float32 }.map(\.id))
        var result = Set<String>()
        for step in program.exact.steps {
            let shapeOnly = step.kernel.shapeOnlyOperands
            guard step.operands.enumerated().contains(where: { !shapeOnly.contains($0.offset) && data.contains($0.element) }) else { continue }
            data.insert(step.output)
            if program.types[step.output] == .float32 { result.insert(program.names[step.output]) }
        }
        return result
    }

    /// Runs the graph on float32 inputs and returns the outputs as float32
    /// tensors (integer and bool outputs converted); see `run(values:hook:)`.
    public func run(_ inputs: [String: Tensor], hook: ((String, inout Tensor) throws -> Void)? = nil) throws -> [String: Tensor] {
        try run(values: inputs.mapValues { Value($0) }, hook: hook).mapValues { value in
            value.tensor ?? Tensor(validShape: value.shape, data: value.floats)
        }
    }

    /// Runs the graph on named inputs (float32 NCHW with any batch size;
    /// integer and bool inputs where the graph declares them), returning every
    /// graph output by name.
    ///
    /// `hook`, when given, is called for each float32 graph input as it enters
    /// and for each float32 value right after it is computed (value name,
    /// tensor); it may modify the tensor's values in place (fake quantization
    /// of activations, capturing layer inputs and outputs) but not its shape.
    /// Constants, values folded at compile time and values computed from
    /// shapes before the run are not computed by it: the hook does not see them.
    ///
    /// Throws `AimetError` for unknown (`.unknownName`) or missing
    /// (`.invalidArgument`) inputs, inputs of the wrong element type
    /// (`.invalidArgument`), inputs whose rank or non-batch dimensions
    /// differ from the graph's declaration or do not fit a node
    /// (`.shapeMismatch`, naming the input or node, expected vs got). NaN and
    /// infinities are inputs like any other.
    public func run(values inputs: [String: Value], hook: ((String, inout Tensor) throws -> Void)? = nil) throws -> [String: Value] {
        try run(values: inputs, hook: hook, capture: []).outputs
    }

    /// The same, also returning the values named in `capture` (graph inputs,
    /// node outputs of any element type, constants; float values as the hook
    /// left them). A name the run does not compute is an error (`.unsupported`).
    public func run(values inputs: [String: Value], hook: ((String, inout Tensor) throws -> Void)?,
                    capture: Set<String>) throws -> (outputs: [String: Value], captured: [String: Value]) {
        let (given, arrays) = try checked(inputs)
        let exact = hook != nil || !capture.isEmpty
        let wanted = Set(capture.compactMap { program.ids[$0] })
        var captured: [Int: [Float]] = [:]
        let plan = exact ? program.exact : program.fused
        let prepared = try prepare(exact: exact, plan: plan, inputs: given)
        let table = prepared.table
        let workspaces = acquireWorkspaces(threads)
        defer { releaseWorkspaces(workspaces) }
        // The workers share out every kernel's work themselves, each calling
        // single-threaded GEMMs (faster than OpenBLAS's threads under ours).
        let values: [Int: [Float]] = try BLAS.singleThreaded {
            if let schedule = prepared.schedule {
                return try Executor.withPointers(arrays) { pointers in
                    try self.runStaged(schedule, table, inputs: pointers, inputArrays: arrays, workspaces: workspaces)
                }
            }
            return try execute(exact: exact, table, arrays, workers: threads, workspaces: workspaces, hook: hook,
                               capture: wanted, captured: &captured)
        }
        var result: [String: Value] = [:]
        for output in program.outputs {
            let slots: [Float]
            if let data = values[output.id] {
                slots = data
            } else if let value = table.known[output.id] ?? program.constants.first(where: { $0.id == output.id })?.value {
                slots = value.slots
            } else {
                throw AimetError(.internalError, "graph output '\(output.name)' was not computed")
            }
            result[output.name] = Value(type: program.types[output.id], shape: table.shapes[output.id], slots: slots)
        }
        var named: [String: Value] = [:]
        for name in capture {
            guard let id = program.ids[name],
                  let slots = captured[id] ?? table.known[id]?.slots ?? program.constants.first(where: { $0.id == id })?.value.slots else {
                throw AimetError(.unsupported, "cannot capture '\(name)': the run does not compute it (an optional output nothing reads, or a value of a node it skips)")
            }
            named[name] = Value(type: program.types[id], shape: table.shapes[id], slots: slots)
        }
        return (result, named)
    }

    // MARK: - Inputs

    /// The inputs in the graph's order, checked: each input's shape (and, for
    /// integer and bool inputs, value, which shape arithmetic may read), and its slots.
    func checked(_ inputs: [String: Value]) throws -> (given: [(shape: [Int], value: Value?)], arrays: [[Float]]) {
        let declared = program.inputs
        for name in inputs.keys.sorted() where !declared.contains(where: { $0.name == name }) {
            throw AimetError.unknownName("the graph has no input named '\(name)' (its inputs: \(declared.map { "'\($0.name)'" }.joined(separator: ", ")))")
        }
        var given: [(shape: [Int], value: Value?)] = []
        var arrays: [[Float]] = []
        for input in declared {
            guard let value = inputs[input.name] else {
                throw AimetError.invalid("missing input '\(input.name)' (the graph's inputs: \(declared.map { "'\($0.name)'" }.joined(separator: ", ")))")
            }
            guard value.type == input.type else {
                throw AimetError.invalid("input '\(input.name)' is \(value.type); the graph declares it \(input.type)")
            }
            try Executor.check(value, against: input.shape, name: input.name)
            given.append((value.shape, input.knownBeforeRun ? value : nil))
            arrays.append(value.slots)
        }
        return (given, arrays)
    }

    /// Rank, non-batch dimensions (where declared), non-empty, finite.
    private static func check(_ value: Value, against declared: [Int]?, name: String) throws {
        if let declared {
            let expected = declared.enumerated().map { $0.offset == 0 || $0.element < 0 ? "N" : "\($0.element)" }
            let matches = value.shape.count == declared.count
                && zip(value.shape, declared).enumerated().allSatisfy { $0.offset == 0 || $0.element.1 < 0 || $0.element.0 == $0.element.1 }
            guard matches else {
                throw AimetError.shape("input '\(name)': expected shape [\(expected.joined(separator: ", "))] (N: any batch size), got \(value.shape)")
            }
        }
        guard value.type != .float32 || value.count > 0 else { throw AimetError.shape("input '\(name)' is empty (shape \(value.shape))") }
        // Non-finite values are computed with as onnxruntime does (an attention mask's -inf, IsNaN's
        // input); the quantization simulation and AdaRound, whose statistics need finite values, refuse them.
    }

    // MARK: - Plans and shapes

    func prepare(exact: Bool, plan: Plan, inputs: [(shape: [Int], value: Value?)]) throws -> Prepared {
        let key = ShapeKey(exact: exact, shapes: inputs.map(\.shape), values: inputs.map(\.value))
        if let prepared = shapeCache.withLock({ $0[key] }) { return prepared }
        let table = try ShapeTable(program: program, plan: plan, inputs: inputs)
        let schedule = exact ? nil : try Schedule(program: program, plan: plan, table: table, threads: threads, budget: chunkBudget) { b in
            try ShapeTable(program: program, plan: plan,
                           inputs: inputs.map { $0.value == nil ? (shape: [b] + $0.shape.dropFirst(), value: nil) : $0 })
        }
        let prepared = Prepared(table: table, schedule: schedule)
        shapeCache.withLock { cache in
            if cache.count >= 32 { cache.removeAll() }
            cache[key] = prepared
        }
        return prepared
    }

    /// The schedule of the fused plan for these float input shapes, once a run has made it (tests).
    func cachedSchedule(for inputShapes: [[Int]]) -> Schedule? {
        shapeCache.withLock { $0[ShapeKey(exact: false, shapes: inputShapes, values: inputShapes.map { _ in nil })]?.schedule }
    }

    func acquireWorkspaces(_ count: Int) -> [Workspace] {
        workspacePool.withLock { pool in
            (0..<count).map { _ in pool.popLast() ?? Workspace() }
        }
    }

    func releaseWorkspaces(_ workspaces: [Workspace]) {
        workspacePool.withLock { pool in
            pool.append(contentsOf: workspaces)
            // Concurrent runs may have created extra workspaces: keep a bounded pool.
            if pool.count > 4 * threads { pool.removeFirst(pool.count - 4 * threads) }
        }
    }

    // MARK: - Execution

    /// Runs the exact or the fused plan over whole tensors of the table's shapes; returns the graph outputs by id.
    private func execute(exact: Bool, _ table: ShapeTable, _ inputs: [[Float]], workers: Int, workspaces: [Workspace],
                         hook: ((String, inout Tensor) throws -> Void)?, capture: Set<Int>,
                         captured: inout [Int: [Float]]) throws -> [Int: [Float]] {
        // Arrays of values that died in the previous run, reused by size: big
        // fresh arrays would be new memory, faulted in page by page on every run.
        let pool = arrayPool.withLock { pool -> [Int: [[Float]]] in
            defer { pool = [:] }
            return pool
        }
        let walk = Walk(executor: self, exact: exact, table: table, inputs: inputs, pool: pool)
        // Also when a hook stops the run early: the arrays still held go back to the pool, which the next run takes.
        defer { arrayPool.withLock { $0 = walk.deadArrays() } }
        for input in program.inputs {
            if let hook, input.type == .float32 { try walk.watch(input.id, hook) }
            if capture.contains(input.id) { captured[input.id] = walk.values[input.id] }
        }
        try walk.advance(to: walk.plan.steps.count, workers: workers, workspaces: workspaces, hook: hook,
                         keep: capture, kept: &captured)
        var result: [Int: [Float]] = [:]
        for output in program.outputs { result[output.id] = walk.values[output.id] }
        return result
    }

    /// Pointers to the storage of every array, valid inside `body`.
    static func withPointers<R>(_ arrays: [[Float]], _ body: ([UnsafePointer<Float>]) throws -> R) throws -> R {
        var pointers: [UnsafePointer<Float>] = []
        pointers.reserveCapacity(arrays.count)
        func nest(_ i: Int) throws -> R {
            if i == arrays.count { return try body(pointers) }
            return try arrays[i].withUnsafeBufferPointer { buffer in
                // An empty array may have no storage; kernels read nothing from it.
                pointers.append(buffer.baseAddress ?? UnsafePointer(bitPattern: MemoryLayout<Float>.alignment)!)
                return try nest(i + 1)
            }
        }
        return try nest(0)
    }
}
