import Synchronization
import Glibc // TMP

/// Runs a `Graph` on float32 CPU tensors with ONNX semantics.
///
/// Compilation (`init`) checks every op, resolves constant inputs and
/// prepares weights; `run` infers shapes from the inputs (any batch size),
/// then executes one of two plans:
///
/// - without a hook, the *fused* plan: Conv absorbs a following
///   BatchNormalization (folded into its weights), a residual Add and a
///   Relu/Clip/LeakyRelu; a lone BatchNormalization absorbs its activation;
///   nodes that feed no graph output are skipped. When every op treats axis 0
///   as an independent batch, the batch is cut into chunks (a few images, so a
///   chunk's activations stay in cache) that the worker threads run
///   end to end, each with single-threaded kernels.
/// - with a hook, the *exact* plan: one step per node, the whole batch at a
///   time, kernels split over the worker threads; the hook sees (and may
///   change) every graph input and every node output.
///
/// Results of the two plans agree to float32 rounding (folding a batch norm
/// reorders the arithmetic).
///
/// Convolutions run as im2col + OpenBLAS `sgemm` (per image, columns in a
/// reused per-worker buffer), depthwise convolutions as a direct vectorized
/// kernel; see the kernel types for the math.
///
/// Thread safety: `run` may be called from several threads at once; each call
/// takes its own scratch buffers from a shared pool.
public final class Executor: Sendable {
    /// The graph as compiled (a copy: later changes to the caller's graph do not affect the executor).
    public let graph: Graph
    /// Worker threads per `run`.
    public let threads: Int
    let program: Program
    private let shapeCache = Mutex<[ShapeKey: ShapeTable]>([:])
    private let workspacePool = Mutex<[Workspace]>([])

    private struct ShapeKey: Hashable {
        var exact: Bool
        var shapes: [[Int]]
    }

    /// Compiles a graph: checks every op is supported (else `AimetError(.unsupported)`
    /// naming node and op), resolves constant inputs, prepares weights. The graph is copied.
    /// - Parameters:
    ///   - opset: the ONNX opset whose semantics apply where they changed
    ///     (Softmax's axis before 13); graphs built in memory follow opset 17.
    ///   - threads: worker threads per run; 0 = one per processor.
    public init(graph: Graph, opset: Int = 17, threads: Int = 0) throws {
        guard threads >= 0 else { throw AimetError.invalid("threads must be >= 0 (0 = one per processor), got \(threads)") }
        self.graph = graph
        self.threads = threads == 0 ? Parallel.processorCount : threads
        program = try Program(graph: graph, opset: opset)
    }

    /// Compiles a model's graph with the model's opset.
    public convenience init(model: Model, threads: Int = 0) throws {
        try self.init(graph: model.graph, opset: model.onnxOpset ?? exportOpset, threads: threads)
    }

    /// The names of the graph inputs `run` expects.
    public var inputNames: [String] { program.inputs.map(\.name) }
    /// The names of the graph outputs `run` returns.
    public var outputNames: [String] { program.outputs.map(\.name) }

    /// Runs the graph on named inputs (NCHW float32, any batch size), returning every graph output by name.
    ///
    /// `hook`, when given, is called for each graph input as it enters and for
    /// each node output right after it is computed (value name, tensor); it may
    /// modify the tensor's values in place (fake quantization of activations,
    /// capturing layer inputs and outputs) but not its shape. `Constant` node
    /// outputs are constants, not computed: the hook does not see them.
    ///
    /// Throws `AimetError` for unknown (`.unknownName`) or missing
    /// (`.invalidArgument`) inputs, inputs whose rank or non-batch dimensions
    /// differ from the graph's declaration or do not fit a node
    /// (`.shapeMismatch`, naming the input or node, expected vs got), and NaN
    /// or infinity in an input (`.numeric`).
    public func run(_ inputs: [String: Tensor], hook: ((String, inout Tensor) throws -> Void)? = nil) throws -> [String: Tensor] {
        let declared = program.inputs
        for name in inputs.keys.sorted() where !declared.contains(where: { $0.name == name }) {
            throw AimetError.unknownName("the graph has no input named '\(name)' (its inputs: \(declared.map { "'\($0.name)'" }.joined(separator: ", ")))")
        }
        var shapes: [[Int]] = []
        var arrays: [[Float]] = []
        for input in declared {
            guard let tensor = inputs[input.name] else {
                throw AimetError.invalid("missing input '\(input.name)' (the graph's inputs: \(declared.map { "'\($0.name)'" }.joined(separator: ", ")))")
            }
            try Executor.check(tensor, against: input.shape, name: input.name)
            shapes.append(tensor.shape)
            arrays.append(tensor.data)
        }
        let exact = hook != nil
        let plan = exact ? program.exact : program.fused
        let table = try shapeTable(exact: exact, plan: plan, inputShapes: shapes)
        let workspaces = acquireWorkspaces(threads)
        defer { releaseWorkspaces(workspaces) }
        let values: [Int: [Float]]
        var outputShapes = table.shapes
        let batch = shapes.first?.first ?? 1
        if !exact && table.separable && (threads > 1 || table.largestPerItem * batch > 1 << 20) {
            // Chunks of the batch, each run end to end by one worker with single-threaded GEMMs.
            values = try BLAS.singleThreaded { try runChunked(plan, table, arrays, workspaces) }
        } else if threads > 1 && batch >= threads {
            // Whole batch, kernels split over the images: single-threaded GEMMs per worker.
            values = try BLAS.singleThreaded {
                try execute(plan, table.shapes, arrays, workers: threads, workspaces: workspaces, hook: hook, shapesOut: &outputShapes)
            }
        } else {
            // Fewer images than workers: OpenBLAS parallelizes each GEMM itself.
            values = try execute(plan, table.shapes, arrays, workers: threads, workspaces: workspaces, hook: hook, shapesOut: &outputShapes)
        }
        var result: [String: Tensor] = [:]
        for output in program.outputs {
            guard let data = values[output.id] else {
                throw AimetError(.internalError, "graph output '\(output.name)' was not computed")
            }
            result[output.name] = Tensor(validShape: outputShapes[output.id], data: data)
        }
        return result
    }

    // MARK: - Inputs

    /// Rank, non-batch dimensions (where declared), non-empty, finite.
    private static func check(_ tensor: Tensor, against declared: [Int]?, name: String) throws {
        if let declared {
            let expected = declared.enumerated().map { $0.offset == 0 || $0.element < 0 ? "N" : "\($0.element)" }
            let matches = tensor.rank == declared.count
                && zip(tensor.shape, declared).enumerated().allSatisfy { $0.offset == 0 || $0.element.1 < 0 || $0.element.0 == $0.element.1 }
            guard matches else {
                throw AimetError.shape("input '\(name)': expected shape [\(expected.joined(separator: ", "))] (N: any batch size), got \(tensor.shape)")
            }
        }
        guard tensor.count > 0 else { throw AimetError.shape("input '\(name)' is empty (shape \(tensor.shape))") }
        if let i = tensor.firstNonFinite {
            throw AimetError.numeric("input '\(name)' holds \(tensor.data[i]) at index \(i); inputs must be finite")
        }
    }

    // MARK: - Plans and shapes

    private func shapeTable(exact: Bool, plan: Plan, inputShapes: [[Int]]) throws -> ShapeTable {
        let key = ShapeKey(exact: exact, shapes: inputShapes)
        if let table = shapeCache.withLock({ $0[key] }) { return table }
        let table = try ShapeTable(program: program, plan: plan, inputShapes: inputShapes)
        shapeCache.withLock { cache in
            if cache.count >= 32 { cache.removeAll() }
            cache[key] = table
        }
        return table
    }

    private func acquireWorkspaces(_ count: Int) -> [Workspace] {
        workspacePool.withLock { pool in
            (0..<count).map { _ in pool.popLast() ?? Workspace() }
        }
    }

    private func releaseWorkspaces(_ workspaces: [Workspace]) {
        workspacePool.withLock { pool in
            pool.append(contentsOf: workspaces)
            // Concurrent runs may have created extra workspaces: keep a bounded pool.
            if pool.count > 4 * threads { pool.removeFirst(pool.count - 4 * threads) }
        }
    }

    // MARK: - Execution

    /// Cuts the batch into chunks and runs each end to end on one worker.
    private func runChunked(_ plan: Plan, _ table: ShapeTable, _ inputs: [[Float]], _ workspaces: [Workspace]) throws -> [Int: [Float]] {
        let n = table.shapes[program.inputs[0].id][0]
        // A chunk's largest value around 1 MB (2^18 floats); at least one chunk per worker.
        let budget = Int(getenv("TMP_CHUNK").map { String(cString: $0) } ?? "262144")!  // TMP
        let perChunk = max(1, budget / max(table.largestPerItem, 1))
        var chunks = max((n + perChunk - 1) / perChunk, min(n, threads))
        chunks = min(n, (chunks + threads - 1) / threads * threads)
        let bounds = (0...chunks).map { n * $0 / chunks }
        var chunkShapes: [Int: [[Int]]] = [:]
        for c in 0..<chunks { chunkShapes[bounds[c + 1] - bounds[c]] = chunkShapes[bounds[c + 1] - bounds[c]] ?? table.chunk(bounds[c + 1] - bounds[c]) }
        let results = Mutex<[[Int: [Float]]?]>(Array(repeating: nil, count: chunks))
        let failure = Mutex<(any Error)?>(nil)
        let perItem = inputs.enumerated().map { $0.element.count / n }
        Parallel.forEachItem(chunks, workers: threads) { c, worker in
            let lo = bounds[c], hi = bounds[c + 1]
            let slices = inputs.enumerated().map { Array($0.element[lo * perItem[$0.offset] ..< hi * perItem[$0.offset]]) }
            var ignored: [[Int]] = []
            do {
                let values = try execute(plan, chunkShapes[hi - lo]!, slices, workers: 1, workspaces: [workspaces[worker]],
                                         hook: nil, shapesOut: &ignored)
                results.withLock { $0[c] = values }
            } catch {
                failure.withLock { if $0 == nil { $0 = error } }
            }
        }
        if let error = failure.withLock({ $0 }) { throw error }
        let parts = results.withLock { $0 }
        var values: [Int: [Float]] = [:]
        for output in program.outputs where values[output.id] == nil {
            var data: [Float] = []
            data.reserveCapacity(table.shapes[output.id].reduce(1, *))
            for part in parts {
                guard let chunk = part?[output.id] else {
                    throw AimetError(.internalError, "a chunk did not compute '\(output.name)'")
                }
                data.append(contentsOf: chunk)
            }
            values[output.id] = data
        }
        return values
    }

    /// Runs `plan` over whole tensors of the given shapes; returns the graph outputs by id.
    private func execute(_ plan: Plan, _ shapes: [[Int]], _ inputs: [[Float]], workers: Int, workspaces: [Workspace],
                         hook: ((String, inout Tensor) throws -> Void)?, shapesOut: inout [[Int]]) throws -> [Int: [Float]] {
        var values = [[Float]?](repeating: nil, count: program.names.count)
        for c in program.constants { values[c.id] = c.tensor.data }
        for (k, input) in program.inputs.enumerated() {
            values[input.id] = inputs[k]
            if let hook { try watch(input.id, &values, shapes, hook) }
        }
        for (i, step) in plan.steps.enumerated() {
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
                let count = outShape.reduce(1, *)
                let operandShapes = step.operands.map { shapes[$0] }
                values[step.output] = try Executor.withPointers(operands) { pointers in
                    try [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
                        if let base = buffer.baseAddress {
                            try step.kernel.run(KernelArgs(inputs: pointers, shapes: operandShapes, output: base, outputShape: outShape,
                                                           workers: workers, workspaces: workspaces))
                        }
                        initialized = count
                    }
                }
            }
            if let hook { try watch(step.output, &values, shapes, hook) }
            for v in plan.releases[i] { values[v] = nil }
        }
        var result: [Int: [Float]] = [:]
        for output in program.outputs { result[output.id] = values[output.id] }
        shapesOut = shapes
        return result
    }

    /// Hands a value to the hook (moved out of the table, so an in-place change
    /// does not copy) and takes it back.
    private func watch(_ id: Int, _ values: inout [[Float]?], _ shapes: [[Int]],
                       _ hook: (String, inout Tensor) throws -> Void) throws {
        guard let data = values[id] else { return }
        values[id] = nil
        var tensor = Tensor(validShape: shapes[id], data: data)
        try hook(program.names[id], &tensor)
        guard tensor.shape == shapes[id], tensor.data.count == data.count else {
            throw AimetError.shape("the hook changed '\(program.names[id])' from shape \(shapes[id]) to \(tensor.shape) with \(tensor.data.count) values; it may change values only")
        }
        values[id] = tensor.data
    }

    /// Pointers to the storage of every array, valid inside `body`.
    private static func withPointers<R>(_ arrays: [[Float]], _ body: ([UnsafePointer<Float>]) throws -> R) throws -> R {
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
