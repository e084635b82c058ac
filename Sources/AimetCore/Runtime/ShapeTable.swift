/// The shapes of every value of a plan for one set of input shapes, and
/// whether the batch can be split into chunks run independently.
struct ShapeTable: Sendable {
    /// Shapes by value id (empty for values the plan does not touch).
    var shapes: [[Int]]
    /// Item `i` of every computed value depends only on item `i` of the inputs:
    /// all inputs and computed values have the batch on axis 0, the same
    /// shapes result with a batch of 1, and no kernel mixes items.
    var separable: Bool
    /// The largest computed value per batch item, in floats.
    var largestPerItem: Int
    /// Values whose axis 0 is the batch (inputs and computed values).
    var batched: [Int]

    /// Infers the shapes through `plan`; errors name the node.
    init(program: Program, plan: Plan, inputShapes: [[Int]]) throws {
        shapes = try ShapeTable.infer(program, plan, inputShapes)
        batched = program.inputs.map(\.id) + plan.steps.map(\.output)
        let n = inputShapes.first?.first ?? 0
        var largest = 0
        for step in plan.steps { largest = max(largest, shapes[step.output].reduce(1, *)) }
        largestPerItem = n > 0 ? largest / n : largest
        separable = ShapeTable.checkSeparable(program, plan, inputShapes, shapes)
    }

    /// The shapes for a chunk of `batch` items (valid when `separable`).
    func chunk(_ batch: Int) -> [[Int]] {
        var result = shapes
        for id in batched where !result[id].isEmpty { result[id][0] = batch }
        return result
    }

    private static func infer(_ program: Program, _ plan: Plan, _ inputShapes: [[Int]]) throws -> [[Int]] {
        var shapes = [[Int]](repeating: [], count: program.names.count)
        for c in program.constants { shapes[c.id] = c.tensor.shape }
        for (k, input) in program.inputs.enumerated() { shapes[input.id] = inputShapes[k] }
        for step in plan.steps {
            do {
                let shape = try step.kernel.outputShape(step.operands.map { shapes[$0] })
                _ = try Shapes.count(shape)
                shapes[step.output] = shape
            } catch let error as AimetError {
                throw AimetError(error.kind, "node '\(step.node)' (\(step.op)): \(error.message)")
            }
        }
        return shapes
    }

    private static func checkSeparable(_ program: Program, _ plan: Plan, _ inputShapes: [[Int]], _ shapes: [[Int]]) -> Bool {
        guard let n = inputShapes.first?.first, n > 1,
              inputShapes.allSatisfy({ !$0.isEmpty && $0[0] == n }) else { return false }
        let computed = Set(plan.steps.map(\.output))
        guard program.outputs.allSatisfy({ computed.contains($0.id) }) else { return false }
        guard plan.steps.allSatisfy({ $0.kernel.isBatchSeparable($0.operands.map { shapes[$0] }) }) else { return false }
        let single = inputShapes.map { [1] + $0.dropFirst() }
        guard let one = try? infer(program, plan, single) else { return false }
        for step in plan.steps {
            let full = shapes[step.output], item = one[step.output]
            guard !full.isEmpty, full.count == item.count, full[0] == n, item[0] == 1,
                  full.dropFirst() == item.dropFirst() else { return false }
        }
        return true
    }
}
