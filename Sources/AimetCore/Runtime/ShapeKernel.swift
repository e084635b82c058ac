/// Shape and Size: int64 facts about operand 0's shape, not its data.
///
/// - Shape(start, end): `dims[start..<end]` as a 1-D int64 tensor; negative
///   bounds count from the rank, both are clamped to `[0, rank]`, and an
///   empty range gives an empty tensor (opset 15 bounds; earlier opsets have
///   none, which is the whole shape).
/// - Size: the element count as an int64 scalar.
final class ShapeKernel: Kernel {
    enum Kind: Sendable {
        case shape(start: Int, end: Int?)
        case size
    }
    let kind: Kind

    init(_ kind: Kind) {
        self.kind = kind
    }

    var shapeOnlyOperands: Set<Int> { [0] }

    func outputType(_ types: [ElementType]) throws -> ElementType { .int64 }

    /// The dims Shape returns for an operand of shape `x`.
    private func range(_ x: [Int]) -> Range<Int> {
        guard case .shape(let start, let end) = kind else { return 0..<0 }
        func clamp(_ i: Int) -> Int { min(max(i < 0 ? i + x.count : i, 0), x.count) }
        let lo = clamp(start), hi = clamp(end ?? x.count)
        return lo..<max(lo, hi)
    }

    func outputShape(_ shapes: [[Int]]) throws -> [Int] {
        switch kind {
        case .shape: return [range(shapes[0]).count]
        case .size: return []
        }
    }

    func run(_ args: KernelArgs) throws {
        let x = args.shapes[0]
        let out = Int64Pointer(args.output)
        switch kind {
        case .shape:
            for (i, d) in x[range(x)].enumerated() { out[i] = Int64(d) }
        case .size:
            out[0] = Int64(try Shapes.count(x))
        }
    }
}
