/// Ops whose output is the input's data unchanged under a new shape, so the
/// executor shares the buffer instead of copying:
///
/// - Identity, Dropout (inference): same shape.
/// - Flatten(axis): `[∏ d[..<axis], ∏ d[axis...]]`.
/// - Reshape(shape): a 0 copies the input's size on that axis (unless
///   `allowzero = 1`, when it is a real 0), one −1 is inferred from the element count.
/// - Squeeze(axes): removes the listed axes, which must have size 1; without
///   axes, every axis of size 1.
/// - Unsqueeze(axes): inserts axes of size 1 at the listed positions of the
///   output (negative ones count from the output's rank).
///
/// Squeeze and Unsqueeze take their axes from an attribute (opset < 13) or
/// from operand 1 (an int64 tensor known before the run).
final class ViewKernel: Kernel {
    enum Kind: Sendable {
        case identity
        case flatten(axis: Int)
        case reshape(shape: [Int], allowZero: Bool)
        case squeeze(axes: [Int]?)
        case unsqueeze(axes: [Int])
        /// The axes are operand 1.
        case squeezeByInput, unsqueezeByInput
    }
    let kind: Kind

    init(_ kind: Kind) throws {
        if case .reshape(let shape, let allowZero) = kind {
            guard shape.allSatisfy({ $0 >= -1 }), shape.filter({ $0 == -1 }).count <= 1 else {
                throw AimetError.invalid("invalid target shape \(shape) (one -1 at most, no other negatives)")
            }
            if allowZero && shape.contains(0) && shape.contains(-1) {
                throw AimetError.invalid("target shape \(shape) has both 0 and -1 with allowzero = 1")
            }
        }
        self.kind = kind
    }

    var isView: Bool { true }

    /// Any element type: the data is not read.
    func outputType(_ types: [ElementType]) throws -> ElementType {
        if types.count > 1 && types[1] != .int64 { throw AimetError.invalid("the axes input is \(types[1]), expected int64") }
        return types[0]
    }

    func outputShape(_ operands: [Operand]) throws -> [Int] {
        switch kind {
        case .squeezeByInput:
            return try ViewKernel(.squeeze(axes: try operands[1].integers("axes input"))).outputShape([operands[0].shape])
        case .unsqueezeByInput:
            return try ViewKernel(.unsqueeze(axes: try operands[1].integers("axes input"))).outputShape([operands[0].shape])
        default:
            return try outputShape(operands.map(\.shape))
        }
    }

    /// The data unchanged (the executor normally shares the buffer instead).
    func run(_ args: KernelArgs) throws {
        args.output.update(from: args.inputs[0], count: args.outputShape.reduce(1, *))
    }

    func outputShape(_ shapes: [[Int]]) throws -> [Int] {
        let x = shapes[0]
        switch kind {
        case .identity:
            return x
        case .flatten(let axis):
            let a = try Shapes.axis(axis, rank: x.count, allowEnd: true)
            return [Shapes.product(x, 0..<a), Shapes.product(x, a..<x.count)]
        case .reshape(let target, let allowZero):
            // Products checked: a fuzzed target such as [2^43, 2^22] must not trap.
            guard target.allSatisfy({ $0 >= -1 }), target.filter({ $0 == -1 }).count <= 1 else {
                throw AimetError.shape("target shape \(target) has a dimension below -1 or more than one -1")
            }
            var out = target
            for (i, d) in target.enumerated() where d == 0 && !allowZero {
                guard i < x.count else { throw AimetError.shape("target shape \(target) copies axis \(i), which the input \(x) lacks") }
                out[i] = x[i]
            }
            let total = try Shapes.count(x)
            if let unknown = out.firstIndex(of: -1) {
                let known = try Shapes.count(out.enumerated().filter { $0.offset != unknown }.map(\.element))
                guard known > 0, total % known == 0 else {
                    throw AimetError.shape("cannot reshape \(x) (\(total) elements) to \(target)")
                }
                out[unknown] = total / known
            }
            let count = try Shapes.count(out)
            guard count == total else {
                throw AimetError.shape("cannot reshape \(x) (\(total) elements) to \(target) (\(count) elements)")
            }
            return out
        case .squeeze(let axes):
            guard let axes else { return x.filter { $0 != 1 } }
            let drop = Set(try axes.map { try Shapes.axis($0, rank: x.count) })
            guard drop.count == axes.count else { throw AimetError.invalid("squeeze axes \(axes) repeat an axis") }
            for a in drop where x[a] != 1 {
                throw AimetError.shape("cannot squeeze axis \(a) of shape \(x): its size is not 1")
            }
            return x.enumerated().filter { !drop.contains($0.offset) }.map(\.element)
        case .unsqueeze(let axes):
            let rank = x.count + axes.count
            let insert = Set(try axes.map { try Shapes.axis($0, rank: rank) })
            guard insert.count == axes.count else { throw AimetError.invalid("unsqueeze axes \(axes) repeat an axis") }
            var rest = x.makeIterator()
            return (0..<rank).map { insert.contains($0) ? 1 : rest.next() ?? 1 }
        case .squeezeByInput, .unsqueezeByInput:
            throw AimetError(.internalError, "the axes operand is missing")
        }
    }
}
