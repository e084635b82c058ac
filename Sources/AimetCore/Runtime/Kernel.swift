/// One compiled graph operation: computes one output value from its operands
/// (the node's runtime inputs, constants included, in node order unless the
/// kernel says otherwise). Kernels are immutable after compilation and safe
/// to run from several threads at once.
///
/// Values live in float-sized slots (see `Value`): a float32 kernel reads and
/// writes `Float`s; an int64 operand is read through `Int64Pointer`.
protocol Kernel: Sendable {
    /// The output's element type for the operands' types. The default accepts
    /// float32 operands only; kernels for other types override it.
    func outputType(_ types: [ElementType]) throws -> ElementType

    /// The output shape for the operands' shapes; throws (shape mismatch)
    /// when the operands do not fit the op. The executor adds the node name.
    /// Kernels whose shape depends on an operand's values (Reshape's target,
    /// Expand, Slice's starts) implement `outputShape(_ operands:)` instead.
    func outputShape(_ shapes: [[Int]]) throws -> [Int]

    /// The output shape, given each operand's shape and, where it is known
    /// before the run (a constant, or computed from shapes only), its value.
    func outputShape(_ operands: [Operand]) throws -> [Int]

    /// Operands whose data the kernel does not read, only their shape (Shape, Size).
    var shapeOnlyOperands: Set<Int> { get }

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

/// An operand as shape inference sees it.
struct Operand {
    var shape: [Int]
    var type: ElementType
    /// The value, when known before the run.
    var value: Value?

    /// The value's elements as integers, or an error naming `role` when it is not known before the run.
    func integers(_ role: String) throws -> [Int] {
        guard let value else {
            throw AimetError.unsupported("the \(role) is computed from the input data at run time; the executor needs it known from the input shapes (a constant, or computed from Shape)")
        }
        guard value.type != .float32 else { throw AimetError.invalid("the \(role) is a float tensor, not int64") }
        return value.integers
    }
}

extension Kernel {
    func outputType(_ types: [ElementType]) throws -> ElementType {
        if let k = types.firstIndex(where: { $0 != .float32 }) {
            throw AimetError.unsupported("operand \(k) is \(types[k]); this op computes on float32 only")
        }
        return .float32
    }
    func outputShape(_ shapes: [[Int]]) throws -> [Int] {
        throw AimetError(.internalError, "kernel \(Self.self) defines no shape rule")
    }
    func outputShape(_ operands: [Operand]) throws -> [Int] { try outputShape(operands.map(\.shape)) }
    var shapeOnlyOperands: Set<Int> { [] }
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
