/// Concat along `axis` (negative counts from the end): all operands have the
/// same rank and the same sizes except along `axis`. For each index over the
/// axes before `axis`, the operands' blocks are copied one after another.
/// Any element type, the same for all operands (`width` float slots each).
final class ConcatKernel: Kernel {
    let axis: Int
    let width: Int

    init(node: Node, type: ElementType) throws {
        guard let axis = node.attributes["axis"]?.intValue else {
            throw AimetError.invalid("node '\(node.name)' (Concat) has no axis")
        }
        self.axis = axis
        self.width = type.slots
    }

    func outputType(_ types: [ElementType]) throws -> ElementType {
        if let k = types.firstIndex(where: { $0 != types[0] }) {
            throw AimetError.invalid("operand \(k) is \(types[k]) and operand 0 \(types[0]); Concat needs one element type")
        }
        return types[0]
    }

    func outputShape(_ shapes: [[Int]]) throws -> [Int] {
        let first = shapes[0]
        let a = try Shapes.axis(axis, rank: first.count)
        var out = first
        out[a] = 0
        for s in shapes {
            guard s.count == first.count else { throw AimetError.shape("operands of shapes \(shapes) differ in rank") }
            for i in 0..<s.count where i != a && s[i] != first[i] {
                throw AimetError.shape("operands of shapes \(shapes) differ on axis \(i) (concatenating on axis \(a))")
            }
            out[a] += s[a]
        }
        return out
    }

    func isBatchSeparable(_ shapes: [[Int]]) -> Bool {
        Shapes.isLaterAxis(axis, rank: shapes[0].count)
    }

    func run(_ args: KernelArgs) throws {
        let out = args.outputShape
        let a = try Shapes.axis(axis, rank: out.count)
        let outer = Shapes.product(out, 0..<a), inner = Shapes.product(out, (a + 1)..<out.count) * width
        let rowLength = out[a] * inner
        Parallel.forEach(outer, workers: outer * rowLength >= 1 << 16 ? args.workers : 1) { range, _ in
            for o in range {
                var dst = args.output + o * rowLength
                for (input, shape) in zip(args.inputs, args.shapes) {
                    let block = shape[a] * inner
                    dst.update(from: input + o * block, count: block)
                    dst += block
                }
            }
        }
    }
}
