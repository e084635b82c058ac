/// How the fused plan runs for one set of input shapes, without a hook.
///
/// The steps are cut into *stages*; each stage cuts the batch into chunks of
/// `b` items that the workers run end to end, so a chunk's activations stay
/// in cache (about `budget` floats per value). Early layers of a CNN have
/// large planes (`b = 1`); later ones small planes, where several images per
/// chunk make GEMMs wide enough to run well (the classifier sees `N/workers`
/// rows at once). `b` is chosen per step as `budget / (floats per item)`, made
/// non-decreasing along the plan (a step takes the smallest `b` of the steps
/// after it), and steps with the same power-of-two `b` form a stage.
///
/// Memory: values used only inside their stage live in a per-worker arena
/// laid out by a `MemoryPlan` for the stage's largest chunk; values crossing
/// a stage boundary, and graph outputs, live full-batch in a run-wide
/// boundary arena, each chunk writing its rows. Views (Reshape, Flatten,
/// Identity) share their operand's memory unless they produce a boundary
/// value, which is copied. Nothing is allocated per run once the arenas have
/// grown.
///
/// A graph whose ops are not batch-separable (or a batch of one) runs as one
/// stage of one chunk with the kernels split over the workers instead.
struct Schedule: Sendable {
    enum Home: Sendable, Equatable {
        case input(Int)
        case constant
        /// Known before the run (the chunk's `ShapeTable.known`).
        case known
        /// Offset in the boundary arena (full batch).
        case boundary(Int)
        /// Offset in the stage's per-worker arena (one chunk).
        case arena(Int)
        /// The memory of another value (a view).
        case alias(Int)
        case unused
    }

    struct Stage: Sendable {
        var steps: Range<Int>
        /// Item ranges of the chunks.
        var chunks: [Range<Int>]
        /// Threads inside each kernel call (1 when the chunks run in parallel).
        var kernelWorkers: Int
        var arenaSize: Int
        /// Shapes and known values by chunk size.
        var tables: [Int: ShapeTable]
    }

    var stages: [Stage]
    var homes: [Home]
    var boundarySize: Int
    /// Slots (floats) per batch item of batched values (so chunk `lo..<hi` starts at `lo · perItem`); 0 otherwise.
    var perItem: [Int]

    /// `tableFor(b)`: the shape table for a batch of `b` items (the run's own for `b = n`).
    init(program: Program, plan: Plan, table: ShapeTable, threads: Int, budget: Int,
         tableFor: (Int) throws -> ShapeTable) throws {
        let steps = plan.steps
        let valueCount = program.names.count
        let n = program.inputs.first(where: { table.known[$0.id] == nil }).map { table.shapes[$0.id].first ?? 1 } ?? 1
        let chunked = table.separable && n > 1
        var perItem = [Int](repeating: 0, count: valueCount)
        if chunked {
            for id in table.batched where !table.shapes[id].isEmpty { perItem[id] = table.slots(id, program) / n }
        }
        let running = steps.indices.filter { !table.isKnown(steps[$0]) }

        // Stages.
        var stageRanges: [(steps: Range<Int>, items: Int)] = []
        if chunked && !steps.isEmpty {
            let cap = (n + threads - 1) / threads
            var b = steps.map { step -> Int in
                let largest = ([step.output] + step.operands).map { perItem[$0] }.max() ?? 1
                return min(cap, max(1, budget / max(largest, 1)))
            }
            for i in stride(from: b.count - 2, through: 0, by: -1) { b[i] = min(b[i], b[i + 1]) }
            func bucket(_ items: Int) -> Int { Int.bitWidth - items.leadingZeroBitCount }   // ⌊log2⌋ + 1
            var start = 0
            for i in 1...b.count where i == b.count || bucket(b[i]) != bucket(b[start]) {
                stageRanges.append((start..<i, b[start]))
                start = i
            }
        } else {
            stageRanges = [(0..<steps.count, n)]
        }

        // Which stage produces and last reads each value.
        var stageOf = [Int](repeating: 0, count: steps.count)
        for (k, range) in stageRanges.enumerated() { for s in range.steps { stageOf[s] = k } }
        var producer = [Int?](repeating: nil, count: valueCount)
        var lastStep = [Int](repeating: -1, count: valueCount)
        for s in running {
            let step = steps[s]
            producer[step.output] = s
            for v in step.operands { lastStep[v] = max(lastStep[v], s) }
        }
        let outputs = Set(program.outputs.map(\.id))

        // Homes: inputs, constants, known values, then step outputs (boundary offsets and arena offsets are filled in below).
        var homes = [Home](repeating: .unused, count: valueCount)
        for (k, input) in program.inputs.enumerated() { homes[input.id] = .input(k) }
        for c in program.constants { homes[c.id] = .constant }
        for id in table.known.keys { homes[id] = .known }
        var boundaryIntervals: [MemoryPlan.Interval] = []
        for s in running {
            let step = steps[s]
            let v = step.output, k = stageOf[s]
            let crosses = outputs.contains(v) || (lastStep[v] >= 0 && stageOf[lastStep[v]] > k)
            if crosses {
                let last = outputs.contains(v) ? stageRanges.count : stageOf[lastStep[v]]
                boundaryIntervals.append(.init(value: v, size: table.slots(v, program), first: k, last: last))
            } else if step.kernel.isView {
                homes[v] = .alias(step.operands[0])
            } else {
                homes[v] = .arena(0)
            }
        }
        let boundary = MemoryPlan(boundaryIntervals)
        for item in boundaryIntervals { homes[item.value] = .boundary(boundary.offsets[item.value] ?? 0) }

        // Per stage: tables by chunk size and the arena layout for the largest chunk.
        var tables: [Int: ShapeTable] = [n: table]
        var stages: [Stage] = []
        for range in stageRanges {
            var chunks: [Range<Int>] = []
            if chunked {
                var count = max((n + range.items - 1) / range.items, 1)
                count = min(n, (count + threads - 1) / threads * threads)
                chunks = (0..<count).map { (n * $0 / count)..<(n * ($0 + 1) / count) }
            } else {
                chunks = [0..<n]
            }
            var stageTables: [Int: ShapeTable] = [:]
            for chunk in chunks where stageTables[chunk.count] == nil {
                if tables[chunk.count] == nil { tables[chunk.count] = try tableFor(chunk.count) }
                stageTables[chunk.count] = tables[chunk.count]
            }
            let largest = chunks.map(\.count).max() ?? n
            // Arena values of this stage; views extend the life of the value they alias.
            var last: [Int: Int] = [:]
            for s in range.steps where homes[steps[s].output] == .arena(0) && !table.isKnown(steps[s]) {
                last[steps[s].output] = max(s, lastStep[steps[s].output])
            }
            func root(_ v: Int) -> Int {
                if case .alias(let u) = homes[v] { return root(u) }
                return v
            }
            for s in range.steps where !table.isKnown(steps[s]) {
                let v = steps[s].output
                guard case .alias = homes[v] else { continue }
                let r = root(v)
                if let end = last[r] { last[r] = max(end, lastStep[v]) }
            }
            let intervals = last.map { v, end in
                MemoryPlan.Interval(value: v, size: chunked ? perItem[v] * largest : table.slots(v, program),
                                    first: producer[v] ?? 0, last: end)
            }
            let arena = MemoryPlan(intervals)
            for (v, offset) in arena.offsets { homes[v] = .arena(offset) }
            stages.append(Stage(steps: range.steps, chunks: chunks, kernelWorkers: chunked ? 1 : threads,
                                arenaSize: arena.size, tables: stageTables))
        }
        self.stages = stages
        self.homes = homes
        self.boundarySize = boundary.size
        self.perItem = perItem
    }
}
