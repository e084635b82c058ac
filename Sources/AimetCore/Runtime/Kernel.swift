/// One compiled graph operation: computes one output value from its operands
/// (the node's runtime inputs, constants included, in node order unless the
/// kernel says otherwise). Kernels are immutable after compilation and safe
/// to run from several threads at once.
protocol Kernel: Sendable {
    /// The output shape for the operands' shapes; throws (shape mismatch)
    /// when the operands do not fit the op. The executor adds the node name.
    func outputShape(_ shapes: [[Int]]) throws -> [Int]

    /// Whether item `i` of the output's axis 0 depends only on item `i` of
    /// the runtime operands' axis 0 (then a batch can be split into chunks).
    /// The executor checks shapes separately; this covers what shapes cannot
    /// show (a softmax over axis 0).
    func isBatchSeparable(_ shapes: [[Int]]) -> Bool

    /// True when the output is operand 0's data under a new shape (Reshape,
    /// Flatten, Identity): the executor shares the buffer and skips `run`.
    var isView: Bool { get }

    /// Computes the output into `args.output` (uninitialized, `outputShape` elements).
    func run(_ args: KernelArgs) throws
}

extension Kernel {
    func isBatchSeparable(_ shapes: [[Int]]) -> Bool { true }
    var isView: Bool { false }
}

/// The buffers and resources of one kernel call.
struct KernelArgs {
    var inputs: [UnsafePointer<Float>]
    var shapes: [[Int]]
    var output: UnsafeMutablePointer<Float>
    var outputShape: [Int]
    /// Threads the kernel may use (1 inside a batch chunk, which is already parallel).
    var workers: Int
    /// One scratch area per worker.
    var workspaces: [Workspace]
}
