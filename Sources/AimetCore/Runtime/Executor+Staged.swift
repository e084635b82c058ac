import Synchronization

/// The hook-free run: the fused plan over raw buffers, stage by stage (see `Schedule`).
extension Executor {
    /// Runs `schedule` on the inputs (pointers to each graph input's data, in
    /// `program.inputs` order); returns the graph outputs by value id.
    func runStaged(_ schedule: Schedule, _ table: ShapeTable, inputs: [UnsafePointer<Float>], inputArrays: [[Float]],
                   workspaces: [Workspace]) throws -> [Int: [Float]] {
        let plan = program.fused
        let boundary = workspaces[0].floats(schedule.boundarySize, slot: Workspace.boundarySlot)
        let constants = constantStore.pointers
        let failure = Mutex<(any Error)?>(nil)

        /// Runs the steps of `stage` on items `items` with `workers` kernel threads.
        func runChunk(_ stage: Schedule.Stage, _ items: Range<Int>, _ workers: Int, _ spaces: [Workspace]) throws {
            let arena = spaces[0].floats(stage.arenaSize, slot: Workspace.arenaSlot)
            guard let chunkTable = stage.tables[items.count] else {
                throw AimetError(.internalError, "no shapes for a chunk of \(items.count)")
            }
            let shapes = chunkTable.shapes
            // Values known before the run, for this chunk size (a few small integer tensors).
            let known = chunkTable.known.mapValues { $0.slots }
            return try Executor.withPointers(Array(known.values)) { pointers in
                let knownPointers = Dictionary(uniqueKeysWithValues: zip(known.keys, pointers))
                try runSteps(stage, items, workers, spaces, arena, chunkTable, shapes, knownPointers)
            }
        }

        func runSteps(_ stage: Schedule.Stage, _ items: Range<Int>, _ workers: Int, _ spaces: [Workspace],
                      _ arena: UnsafeMutablePointer<Float>, _ chunkTable: ShapeTable, _ shapes: [[Int]],
                      _ knownPointers: [Int: UnsafePointer<Float>]) throws {
            func pointer(_ v: Int) throws -> UnsafeMutablePointer<Float> {
                switch schedule.homes[v] {
                case .input(let k): return UnsafeMutablePointer(mutating: inputs[k]) + items.lowerBound * schedule.perItem[v]
                case .boundary(let offset): return boundary + (offset + items.lowerBound * schedule.perItem[v])
                case .arena(let offset): return arena + offset
                case .alias(let u): return try pointer(u)
                case .constant:
                    guard let p = constants[v] else { throw AimetError(.internalError, "constant '\(program.names[v])' has no buffer") }
                    return UnsafeMutablePointer(mutating: p)
                case .known:
                    guard let p = knownPointers[v] else { throw AimetError(.internalError, "value '\(program.names[v])' is not known") }
                    return UnsafeMutablePointer(mutating: p)
                case .unused: throw AimetError(.internalError, "value '\(program.names[v])' has no memory")
                }
            }
            // Steps known before the run are skipped as the run's own table says (a smaller chunk may know more).
            for s in stage.steps where !table.isKnown(plan.steps[s]) {
                let step = plan.steps[s]
                let outShape = shapes[step.output]
                let count = chunkTable.slots(step.output, program)
                if step.kernel.isView {
                    if case .alias = schedule.homes[step.output] { continue }
                    try pointer(step.output).update(from: pointer(step.operands[0]), count: count)
                    continue
                }
                guard count > 0 else { continue }
                let args = KernelArgs(inputs: try step.operands.map { UnsafePointer(try pointer($0)) },
                                      shapes: step.operands.map { shapes[$0] },
                                      output: try pointer(step.output), outputShape: outShape,
                                      workers: workers, workspaces: spaces)
                try step.named { try step.kernel.run(args) }
            }
        }

        for stage in schedule.stages {
            if stage.chunks.count == 1 {
                try runChunk(stage, stage.chunks[0], stage.kernelWorkers, workspaces)
            } else {
                Parallel.forEachItem(stage.chunks.count, workers: threads) { c, worker in
                    do {
                        try runChunk(stage, stage.chunks[c], 1, [workspaces[worker]])
                    } catch {
                        failure.withLock { if $0 == nil { $0 = error } }
                    }
                }
                if let error = failure.withLock({ $0 }) { throw error }
            }
        }

        var result: [Int: [Float]] = [:]
        for output in program.outputs where result[output.id] == nil {
            let count = table.slots(output.id, program)
            switch schedule.homes[output.id] {
            case .boundary(let offset):
                result[output.id] = Array(UnsafeBufferPointer(start: boundary + offset, count: count))
            case .input(let k):
                result[output.id] = inputArrays[k]
            default:
                break  // constants and known values: the caller takes them from the program and the table
            }
        }
        return result
    }
}
