/// OneHot(axis): operands indices (int64 or float32, truncated toward
/// zero), depth (a scalar known before the run) and values `[off, on]`.
/// The output inserts an axis of size depth at `axis` (negative counts from
/// the output's rank) and holds `on` where the coordinate on that axis equals
/// the index there (a negative index counts from depth; one outside
/// `[−depth, depth)` selects nothing), `off` elsewhere. Its type is the values'.
final class OneHotKernel: Kernel {
    let axis: Int
    let indicesType: ElementType, valuesType: ElementType

    init(axis: Int, indicesType: ElementType, valuesType: ElementType) {
        self.axis = axis
        self.indicesType = indicesType
        self.valuesType = valuesType
    }

    func outputType(_ types: [ElementType]) throws -> ElementType {
        guard types[0] != .bool, types[1] != .bool else { throw AimetError.invalid("the indices or depth are bool, expected numbers") }
        return types[2]
    }

    private static func depth(_ value: Value) throws -> Int {
        guard value.count == 1 else { throw AimetError.invalid("depth has shape \(value.shape), expected a scalar or one element") }
        let d = value.type == .float32 ? value.slots[0] : Float(value.integers[0])
        guard d.isFinite, d >= 1, d < Float(1 << 30) else { throw AimetError.invalid("depth \(d) is not a positive size") }
        return Int(d)
    }

    func outputShape(_ operands: [Operand]) throws -> [Int] {
        guard let depthValue = operands[1].value else {
            throw AimetError.unsupported("the depth is computed from the input data at run time; the executor needs it known from the input shapes (a constant, or computed from Shape)")
        }
        guard Shapes.product(operands[2].shape, 0..<operands[2].shape.count) == 2 else {
            throw AimetError.shape("values has shape \(operands[2].shape), expected two elements [off, on]")
        }
        var out = operands[0].shape
        out.insert(try OneHotKernel.depth(depthValue), at: try Shapes.axis(axis, rank: out.count + 1))
        _ = try Shapes.count(out)
        return out
    }

    /// Separable unless the new axis comes first (then axis 0 holds the depth).
    func isBatchSeparable(_ shapes: [[Int]]) -> Bool {
        (try? Shapes.axis(axis, rank: shapes[0].count + 1)) ?? 0 > 0
    }

    func run(_ args: KernelArgs) throws {
        let x = args.shapes[0], out = args.outputShape
        let a = try Shapes.axis(axis, rank: x.count + 1)
        let depth = out[a]
        let outer = Shapes.product(x, 0..<a), inner = Shapes.product(x, a..<x.count)
        let w = valuesType.slots
        let values = args.inputs[2], dst = args.output
        // Fill with `off`, then write `on` at each valid index.
        for e in 0..<(outer * depth * inner) { (dst + e * w).update(from: values, count: w) }
        for o in 0..<outer {
            for i in 0..<inner {
                let e = o * inner + i
                let raw: Int
                if indicesType == .int64 {
                    raw = Int(Int64Pointer(args.inputs[0])[e])
                } else {
                    let f = args.inputs[0][e].rounded(.towardZero)
                    guard f.isFinite, abs(f) < Float(1 << 40) else { continue }
                    raw = Int(f)
                }
                guard raw >= -depth, raw < depth else { continue }
                let c = raw < 0 ? raw + depth : raw
                (dst + ((o * depth + c) * inner + i) * w).update(from: values + w, count: w)
            }
        }
    }
}
