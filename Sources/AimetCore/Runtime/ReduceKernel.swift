#if canImport(Glibc)
import Glibc
#endif

/// The Reduce* ops: each output element reduces the input elements that
/// share its position on the kept axes (the set `S` below):
///
///     ReduceSum        Σ x              ReduceSumSquare  Σ x²
///     ReduceMean       Σ x / |S|        ReduceL1         Σ |x|
///     ReduceMax        max x            ReduceL2         √(Σ x²)
///     ReduceMin        min x            ReduceLogSum     log Σ x
///     ReduceProd       Π x              ReduceLogSumExp  m + log Σ exp(x − m),  m = max x
///
/// The axes come from the `axes` attribute (ReduceSum < 13, the others < 18)
/// or the optional int64 input 1 (resolved at compile time when constant).
/// No axes (absent or empty) reduce every axis, unless `noop_with_empty_axes = 1`:
/// then nothing is reduced and each output is the map of one element
/// (ReduceSumSquare squares, ReduceL2 takes |x|), as onnxruntime does.
/// An empty `S` gives the reduction's identity: 0, −∞ (max, log-sum, log-sum-exp),
/// +∞ (min), 1 (prod), NaN (mean, 0/0). `keepdims = 1` keeps reduced axes as 1.
///
/// float32 everywhere; int64 for Sum, SumSquare, L1, Max, Min, Prod (wrapping,
/// as C++ integer arithmetic); bool for Max and Min (opset 20).
final class ReduceKernel: Kernel {
    enum Operation: Sendable { case sum, mean, max, min, prod, l1, l2, logSum, logSumExp, sumSquare }
    let operation: Operation
    /// The input's element type (the kernel is compiled for it).
    let type: ElementType
    /// Axes fixed at compile time; nil when they come from operand 1 (or are absent).
    let axes: [Int]?
    let axesOperand: Bool
    let keepDims: Bool
    let noopWithEmptyAxes: Bool

    init(_ operation: Operation, type: ElementType, axes: [Int]?, axesOperand: Bool, keepDims: Bool, noopWithEmptyAxes: Bool) {
        self.operation = operation
        self.type = type
        self.axes = axes
        self.axesOperand = axesOperand
        self.keepDims = keepDims
        self.noopWithEmptyAxes = noopWithEmptyAxes
    }

    func outputType(_ types: [ElementType]) throws -> ElementType {
        if axesOperand && types[1] != .int64 { throw AimetError.invalid("the axes input is \(types[1]), expected int64") }
        guard types[0] == type else { throw AimetError.invalid("the input is \(types[0]); the kernel was compiled for \(type)") }
        switch (types[0], operation) {
        case (.float32, _): return .float32
        case (.int64, .sum), (.int64, .sumSquare), (.int64, .l1), (.int64, .max), (.int64, .min), (.int64, .prod): return .int64
        case (.bool, .max), (.bool, .min): return .bool
        default:
            throw AimetError.unsupported("\(operation) of a \(types[0]) tensor is not supported (float32 only: the integer result would be rounded)")
        }
    }

    /// Which axes of a rank-`rank` input are reduced.
    private func mask(rank: Int, axes: [Int]?) throws -> [Bool] {
        guard let axes, !axes.isEmpty else { return [Bool](repeating: !noopWithEmptyAxes, count: rank) }
        var mask = [Bool](repeating: false, count: rank)
        for axis in axes {
            let a = try Shapes.axis(axis, rank: rank)
            guard !mask[a] else { throw AimetError.invalid("axis \(axis) is listed twice in axes \(axes)") }
            mask[a] = true
        }
        return mask
    }

    private func shape(_ x: [Int], _ mask: [Bool]) -> [Int] {
        keepDims ? zip(x, mask).map { $1 ? 1 : $0 } : zip(x, mask).filter { !$1 }.map(\.0)
    }

    func outputShape(_ operands: [Operand]) throws -> [Int] {
        let x = operands[0].shape
        let given = axesOperand ? try operands[1].integers("axes") : axes
        return shape(x, try mask(rank: x.count, axes: given))
    }

    func isBatchSeparable(_ shapes: [[Int]]) -> Bool {
        guard !axesOperand, !shapes[0].isEmpty, let m = try? mask(rank: shapes[0].count, axes: axes) else { return false }
        return !m[0]
    }

    func run(_ args: KernelArgs) throws {
        let x = args.shapes[0]
        var given = axes
        if axesOperand {
            let p = Int64Pointer(args.inputs[1])
            given = (0..<Shapes.product(args.shapes[1], 0..<args.shapes[1].count)).map { Int(p[$0]) }
        }
        let m = try mask(rank: x.count, axes: given)
        let layout = ReduceLayout(shape: x, mask: m)
        switch type {
        case .int64: reduceIntegers(args, layout)
        case .bool where layout.reduced == 0: args.output.update(repeating: operation == .max ? 0 : 1, count: layout.outputs)
        default: reduceFloats(args, layout)
        }
    }

    // MARK: float32 (and bool)

    private func reduceFloats(_ args: KernelArgs, _ layout: ReduceLayout) {
        switch operation {
        case .sum, .mean, .logSum: floats(SumFold.self, args, layout)
        case .sumSquare, .l2: floats(SquareSumFold.self, args, layout)
        case .l1: floats(AbsSumFold.self, args, layout)
        case .max, .logSumExp: floats(MaxFold.self, args, layout)
        case .min: floats(MinFold.self, args, layout)
        case .prod: floats(ProdFold.self, args, layout)
        }
        if operation == .logSumExp { logSumExp(args, layout) }
    }

    /// The map after folding (applied in place to `count` outputs).
    private func finish(_ y: UnsafeMutablePointer<Float>, _ count: Int, reduced: Int) {
        switch operation {
        case .mean:
            let scale = 1 / Float(reduced)
            for i in 0..<count { y[i] *= scale }
        case .l2: for i in 0..<count { y[i] = y[i].squareRoot() }
        case .logSum: for i in 0..<count { y[i] = logf(y[i]) }
        default: break
        }
    }

    private func floats<F: Fold>(_: F.Type, _ args: KernelArgs, _ layout: ReduceLayout) {
        let x = args.inputs[0], y = args.output
        let r = layout.reduced, n = layout.outputs
        let workers = n * max(r, 1) >= 1 << 15 ? args.workers : 1
        guard r > 0 else {
            y.update(repeating: F.identity, count: n)
            finish(y, n, reduced: 0)
            return
        }
        switch layout.form {
        case .rows(let outer, let length):
            // Contiguous rows: one vectorized fold per output.
            Parallel.forEach(outer, workers: workers) { range, _ in
                for o in range { y[o] = F.fold(x + o * length, length) }
                finish(y + range.lowerBound, range.count, reduced: r)
            }
        case .planes(let outer, let length, let inner):
            // [outer, length, inner]: fold whole rows of `inner` into the output, vectorized along inner.
            let chunk = 512, chunks = (inner + chunk - 1) / chunk
            Parallel.forEach(outer * chunks, workers: workers) { range, _ in
                for item in range {
                    let o = item / chunks, lo = (item % chunks) * chunk, count = min(chunk, inner - lo)
                    let out = y + o * inner + lo, src = x + o * length * inner + lo
                    F.first(src, out, count)
                    for k in 1..<length { F.accumulate(src + k * inner, out, count) }
                    finish(out, count, reduced: r)
                }
            }
        case .scattered:
            let offsets = layout.reducedOffsets(), bases = layout.outputBases()
            Parallel.forEach(n, workers: workers) { range, _ in
                for o in range {
                    let base = x + bases[o]
                    var acc = F.identity
                    for off in offsets { acc = F.combine(acc, F.map(base[off])) }
                    y[o] = acc
                }
                finish(y + range.lowerBound, range.count, reduced: r)
            }
        }
    }

    /// Replaces each output's maximum `m` by `m + log Σ exp(x − m)` (the maximum
    /// keeps the exponentials finite; an infinite maximum is the result itself).
    private func logSumExp(_ args: KernelArgs, _ layout: ReduceLayout) {
        guard layout.reduced > 0 else { return }
        let x = args.inputs[0], y = args.output
        let offsets = layout.reducedOffsets(), bases = layout.outputBases()
        Parallel.forEach(layout.outputs, workers: layout.outputs * layout.reduced >= 1 << 14 ? args.workers : 1) { range, _ in
            for o in range where y[o].isFinite {
                let m = y[o], base = x + bases[o]
                var sum: Double = 0
                for off in offsets { sum += Double(expf(base[off] - m)) }
                y[o] = m + Float(log(sum))
            }
        }
    }

    // MARK: int64

    private func reduceIntegers(_ args: KernelArgs, _ layout: ReduceLayout) {
        let x = Int64Pointer(args.inputs[0]), y = Int64Pointer(args.output)
        let offsets = layout.reducedOffsets(), bases = layout.outputBases()
        let op = operation
        let identity: Int64 = op == .max ? .min : op == .min ? .max : op == .prod ? 1 : 0
        Parallel.forEach(layout.outputs, workers: layout.outputs * layout.reduced >= 1 << 15 ? args.workers : 1) { range, _ in
            for o in range {
                var acc = identity
                for off in offsets {
                    let v = x[bases[o] + off]
                    switch op {
                    case .max: acc = max(acc, v)
                    case .min: acc = min(acc, v)
                    case .prod: acc = acc &* v
                    case .sumSquare: acc = acc &+ v &* v
                    case .l1: acc = acc &+ (v < 0 ? 0 &- v : v)
                    default: acc = acc &+ v
                    }
                }
                y[o] = acc
            }
        }
    }
}

/// The input of a reduction as the kernels walk it: after merging neighbouring
/// axes that are both reduced or both kept (and dropping axes of size 1),
/// one reduced block is `[outer, length, inner]` (`rows` when `inner = 1`);
/// anything else is walked through offset tables (`scattered`).
struct ReduceLayout {
    enum Form { case rows(outer: Int, length: Int), planes(outer: Int, length: Int, inner: Int), scattered }
    let shape: [Int]
    let mask: [Bool]
    let outputs: Int
    let reduced: Int
    let form: Form

    init(shape: [Int], mask: [Bool]) {
        self.shape = shape
        self.mask = mask
        var groups: [(size: Int, reduced: Bool)] = []
        for (d, m) in zip(shape, mask) where d != 1 {
            if let last = groups.last, last.reduced == m { groups[groups.count - 1].size *= d } else { groups.append((d, m)) }
        }
        outputs = zip(shape, mask).reduce(1) { $0 * ($1.1 ? 1 : $1.0) }
        reduced = zip(shape, mask).reduce(1) { $0 * ($1.1 ? $1.0 : 1) }
        let blocks = groups.filter(\.reduced)
        if blocks.count > 1 {
            form = .scattered
        } else if let k = groups.firstIndex(where: \.reduced) {
            let outer = groups[..<k].reduce(1) { $0 * $1.size }, inner = groups[(k + 1)...].reduce(1) { $0 * $1.size }
            form = inner == 1 ? .rows(outer: outer, length: groups[k].size) : .planes(outer: outer, length: groups[k].size, inner: inner)
        } else {
            form = .rows(outer: outputs, length: 1)
        }
    }

    /// Row-major strides of the input.
    private var strides: [Int] {
        var s = [Int](repeating: 1, count: shape.count)
        for i in stride(from: shape.count - 2, through: 0, by: -1) { s[i] = s[i + 1] * shape[i + 1] }
        return s
    }

    /// Offsets of one output's elements relative to its first.
    func reducedOffsets() -> [Int] { walk(where: true) }

    /// Each output's first element, in output order.
    func outputBases() -> [Int] { walk(where: false) }

    /// All offsets spanned by the axes whose mask is `reducedAxes`, in row-major order.
    private func walk(where reducedAxes: Bool) -> [Int] {
        let s = strides
        var offsets = [0]
        for axis in 0..<shape.count where mask[axis] == reducedAxes {
            offsets = offsets.flatMap { base in (0..<shape[axis]).map { base + $0 * s[axis] } }
        }
        return offsets
    }
}

/// A fold of float32 values: a map of each element, an associative combine,
/// and its identity (vectorized 8 lanes at a time).
private protocol Fold {
    static var identity: Float { get }
    static func map(_ x: Float) -> Float
    static func map(_ x: Float8) -> Float8
    static func combine(_ a: Float, _ b: Float) -> Float
    static func combine(_ a: Float8, _ b: Float8) -> Float8
}

extension Fold {
    /// The fold of `count` contiguous values, 16 lanes at a time.
    @inline(__always)
    static func fold(_ x: UnsafePointer<Float>, _ count: Int) -> Float {
        var a0 = Float8(repeating: identity), a1 = a0
        var i = 0
        while i + 16 <= count {
            a0 = combine(a0, map(x.load8(i)))
            a1 = combine(a1, map(x.load8(i + 8)))
            i += 16
        }
        if i + 8 <= count {
            a0 = combine(a0, map(x.load8(i)))
            i += 8
        }
        let lanes = combine(a0, a1)
        var acc = identity
        for k in 0..<8 { acc = combine(acc, lanes[k]) }
        while i < count {
            acc = combine(acc, map(x[i]))
            i += 1
        }
        return acc
    }

    /// `y[i] = map(x[i])`.
    @inline(__always)
    static func first(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ count: Int) {
        var i = 0
        while i + 8 <= count { y.store8(map(x.load8(i)), i); i += 8 }
        while i < count { y[i] = map(x[i]); i += 1 }
    }

    /// `y[i] = combine(y[i], map(x[i]))`.
    @inline(__always)
    static func accumulate(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ count: Int) {
        var i = 0
        while i + 8 <= count { y.store8(combine(y.load8(i), map(x.load8(i))), i); i += 8 }
        while i < count { y[i] = combine(y[i], map(x[i])); i += 1 }
    }
}

private enum SumFold: Fold {
    static var identity: Float { 0 }
    @inline(__always) static func map(_ x: Float) -> Float { x }
    @inline(__always) static func map(_ x: Float8) -> Float8 { x }
    @inline(__always) static func combine(_ a: Float, _ b: Float) -> Float { a + b }
    @inline(__always) static func combine(_ a: Float8, _ b: Float8) -> Float8 { a + b }
}

private enum SquareSumFold: Fold {
    static var identity: Float { 0 }
    @inline(__always) static func map(_ x: Float) -> Float { x * x }
    @inline(__always) static func map(_ x: Float8) -> Float8 { x * x }
    @inline(__always) static func combine(_ a: Float, _ b: Float) -> Float { a + b }
    @inline(__always) static func combine(_ a: Float8, _ b: Float8) -> Float8 { a + b }
}

private enum AbsSumFold: Fold {
    static var identity: Float { 0 }
    @inline(__always) static func map(_ x: Float) -> Float { abs(x) }
    @inline(__always) static func map(_ x: Float8) -> Float8 { x.replacing(with: -x, where: x .< 0) }
    @inline(__always) static func combine(_ a: Float, _ b: Float) -> Float { a + b }
    @inline(__always) static func combine(_ a: Float8, _ b: Float8) -> Float8 { a + b }
}

private enum ProdFold: Fold {
    static var identity: Float { 1 }
    @inline(__always) static func map(_ x: Float) -> Float { x }
    @inline(__always) static func map(_ x: Float8) -> Float8 { x }
    @inline(__always) static func combine(_ a: Float, _ b: Float) -> Float { a * b }
    @inline(__always) static func combine(_ a: Float8, _ b: Float8) -> Float8 { a * b }
}

/// Maximum, propagating NaN (as onnxruntime's Eigen reductions do).
private enum MaxFold: Fold {
    static var identity: Float { -.infinity }
    @inline(__always) static func map(_ x: Float) -> Float { x }
    @inline(__always) static func map(_ x: Float8) -> Float8 { x }
    @inline(__always) static func combine(_ a: Float, _ b: Float) -> Float { b > a || b.isNaN ? b : a }
    @inline(__always) static func combine(_ a: Float8, _ b: Float8) -> Float8 { a.replacing(with: b, where: (b .> a) .| (b .!= b)) }
}

/// Minimum, propagating NaN.
private enum MinFold: Fold {
    static var identity: Float { .infinity }
    @inline(__always) static func map(_ x: Float) -> Float { x }
    @inline(__always) static func map(_ x: Float8) -> Float8 { x }
    @inline(__always) static func combine(_ a: Float, _ b: Float) -> Float { b < a || b.isNaN ? b : a }
    @inline(__always) static func combine(_ a: Float8, _ b: Float8) -> Float8 { a.replacing(with: b, where: (b .< a) .| (b .!= b)) }
}
