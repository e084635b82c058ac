/// One step of a plan: a kernel computing one value from operand values
/// (all referred to by value id).
struct Step: Sendable {
    /// The node the step computes, or for a fused step the node whose output
    /// it produces, for messages.
    let node: String
    /// The op, or `Conv+BatchNormalization+Relu` for a fused step.
    let op: String
    let kernel: any Kernel
    let operands: [Int]
    let output: Int

    /// Runs `body`, naming the node in an error it throws (a kernel's run-time refusals).
    func named<R>(_ body: () throws -> R) throws -> R {
        do {
            return try body()
        } catch let error as AimetError where !error.message.hasPrefix("node '") {
            throw AimetError(error.kind, "node '\(node)' (\(op)): \(error.message)")
        }
    }
}

/// An ordered list of steps with the lifetimes of their values: after step
/// `i`, the values in `releases[i]` are read no more and their buffers go.
struct Plan: Sendable {
    let steps: [Step]
    let releases: [[Int]]

    /// Orders nothing: `steps` must already be topologically sorted.
    /// `keep` holds the values that must outlive the plan (graph outputs).
    init(steps: [Step], keep: Set<Int>) {
        self.steps = steps
        var last: [Int: Int] = [:]
        for (i, step) in steps.enumerated() {
            for v in step.operands { last[v] = i }
            if last[step.output] == nil { last[step.output] = i }
        }
        var releases = [[Int]](repeating: [], count: steps.count)
        for (v, i) in last where !keep.contains(v) { releases[i].append(v) }
        self.releases = releases
    }
}
