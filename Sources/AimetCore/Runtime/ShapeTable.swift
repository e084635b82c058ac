/// The shapes of every value of a plan for one set of inputs, the values
/// known before the run, and whether the batch can be split into chunks run
/// independently.
///
/// Known before the run: constants, the integer and bool graph inputs (their
/// values are given with the run), and every step whose operands are all
/// known or read only for their shapes (Shape, Size), when its result is
/// small — the integer shape arithmetic of exported models (Shape → Gather →
/// Concat → Reshape). Those steps are evaluated here, once per set of input
/// shapes, and skipped by the run.
struct ShapeTable: Sendable {
    /// Shapes by value id (empty for values the plan does not touch).
    var shapes: [[Int]]
    /// Values known before the run that the run reads (not constants), by value id.
    var known: [Int: Value]
    /// Item `i` of every computed value depends only on item `i` of the inputs:
    /// all float inputs and computed values have the batch on axis 0, the same
    /// shapes result with a batch of 1, and no kernel mixes items.
    var separable: Bool
    /// Values whose axis 0 is the batch (float inputs and values computed at run time).
    var batched: [Int]

    /// Results larger than this (elements) are computed by the run, not before it.
    static let knownLimit = 1 << 16

    /// Infers the shapes through `plan`; `inputs` holds each graph input's
    /// shape and, for integer and bool inputs, its value. Errors name the node.
    init(program: Program, plan: Plan, inputs: [(shape: [Int], value: Value?)]) throws {
        let (shapes, known) = try ShapeTable.infer(program, plan, inputs)
        self.shapes = shapes
        self.known = known
        batched = zip(program.inputs, inputs).filter { $0.1.value == nil }.map(\.0.id)
            + plan.steps.map(\.output).filter { known[$0] == nil }
        separable = ShapeTable.checkSeparable(program, plan, inputs, shapes, known)
    }

    /// Whether step `s` of the plan is evaluated here rather than by the run.
    func isKnown(_ step: Step) -> Bool { known[step.output] != nil }

    /// Elements of value `id` times its slots per element: the floats its storage takes.
    func slots(_ id: Int, _ program: Program) -> Int { shapes[id].reduce(1, *) * program.types[id].slots }

    private static func infer(_ program: Program, _ plan: Plan, _ inputs: [(shape: [Int], value: Value?)]) throws -> ([[Int]], [Int: Value]) {
        var shapes = [[Int]](repeating: [], count: program.names.count)
        var values = [Value?](repeating: nil, count: program.names.count)
        for c in program.constants {
            shapes[c.id] = c.value.shape
            values[c.id] = c.value
        }
        var known: [Int: Value] = [:]
        // Values derived from a float input (a parameter such as Resize's scales) serve shape rules, but
        // the run still computes them, so a hook (the quantization simulation) sees every float value.
        var fromFloatInput = [Bool](repeating: false, count: program.names.count)
        for (k, input) in program.inputs.enumerated() {
            shapes[input.id] = inputs[k].shape
            if let value = inputs[k].value {
                values[input.id] = value
                known[input.id] = value
            }
            fromFloatInput[input.id] = input.type == .float32 && inputs[k].value != nil
        }
        for step in plan.steps {
            do {
                let operands = step.operands.map { Operand(shape: shapes[$0], type: program.types[$0], value: values[$0]) }
                let shape = try step.kernel.outputShape(operands)
                let count = try Shapes.count(shape)
                shapes[step.output] = shape
                let shapeOnly = step.kernel.shapeOnlyOperands
                let computable = step.operands.enumerated().allSatisfy { values[$0.element] != nil || shapeOnly.contains($0.offset) }
                fromFloatInput[step.output] = step.operands.enumerated().contains { !shapeOnly.contains($0.offset) && fromFloatInput[$0.element] }
                if computable && count <= knownLimit {
                    let value = try Evaluate.step(step.kernel, operands.map { $0.value ?? Value(type: $0.type, shape: [0], slots: []) },
                                                  shapes: operands.map(\.shape), shape: shape, type: program.types[step.output])
                    values[step.output] = value
                    if !fromFloatInput[step.output] { known[step.output] = value }
                }
            } catch let error as AimetError {
                throw AimetError(error.kind, "node '\(step.node)' (\(step.op)): \(error.message)")
            }
        }
        return (shapes, known)
    }

    private static func checkSeparable(_ program: Program, _ plan: Plan, _ inputs: [(shape: [Int], value: Value?)],
                                       _ shapes: [[Int]], _ known: [Int: Value]) -> Bool {
        let data = zip(program.inputs, inputs).filter { $0.1.value == nil }.map(\.1.shape)
        guard let n = data.first?.first, n > 1, data.allSatisfy({ !$0.isEmpty && $0[0] == n }) else { return false }
        let computed = Set(plan.steps.map(\.output))
        guard program.outputs.allSatisfy({ computed.contains($0.id) || known[$0.id] != nil }) else { return false }
        let running = plan.steps.filter { known[$0.output] == nil }
        guard running.allSatisfy({ $0.kernel.isBatchSeparable($0.operands.map { shapes[$0] }) }) else { return false }
        let single = inputs.map { $0.value == nil ? (shape: [1] + $0.shape.dropFirst(), value: nil) : $0 }
        guard let (one, _) = try? infer(program, plan, single) else { return false }
        for step in running {
            let full = shapes[step.output], item = one[step.output]
            guard !full.isEmpty, full.count == item.count, full[0] == n, item[0] == 1,
                  full.dropFirst() == item.dropFirst() else { return false }
        }
        // A graph output known before the run does not split into chunks.
        return program.outputs.allSatisfy { known[$0.id] == nil }
    }
}
