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
    func run(_ args: KernelArgs) throws {}
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

/// Shape arithmetic shared by the kernels.
enum Shapes {
    /// The element count, or an error for a shape too large to address.
    static func count(_ shape: [Int]) throws -> Int {
        var n = 1
        for d in shape {
            let (p, overflow) = n.multipliedReportingOverflow(by: d)
            guard !overflow, p < 1 << 40 else { throw AimetError.shape("shape \(shape) is too large") }
            n = p
        }
        return n
    }

    /// Product of `shape[range]`.
    static func product(_ shape: [Int], _ range: Range<Int>) -> Int {
        var n = 1
        for i in range { n *= shape[i] }
        return n
    }

    /// A possibly negative axis for a rank, checked.
    static func axis(_ axis: Int, rank: Int, allowEnd: Bool = false) throws -> Int {
        let limit = allowEnd ? rank + 1 : rank
        let a = axis < 0 ? axis + limit - (allowEnd ? 1 : 0) : axis
        guard a >= 0, a < limit else { throw AimetError.invalid("axis \(axis) is out of range for rank \(rank)") }
        return a
    }

    /// The numpy broadcast of two shapes (multidirectional).
    static func broadcast(_ a: [Int], _ b: [Int]) throws -> [Int] {
        let r = max(a.count, b.count)
        var out = [Int](repeating: 1, count: r)
        for i in 0..<r {
            let da = i < r - a.count ? 1 : a[i - (r - a.count)]
            let db = i < r - b.count ? 1 : b[i - (r - b.count)]
            guard da == db || da == 1 || db == 1 else {
                throw AimetError.shape("shapes \(a) and \(b) do not broadcast (axis \(i): \(da) vs \(db))")
            }
            out[i] = da == 1 ? db : da
        }
        return out
    }

    /// Whether `a` broadcasts to exactly `target` (unidirectional broadcasting).
    static func broadcasts(_ a: [Int], to target: [Int]) -> Bool {
        guard a.count <= target.count else { return false }
        let shift = target.count - a.count
        for i in 0..<a.count where a[i] != 1 && a[i] != target[i + shift] { return false }
        return true
    }
}
