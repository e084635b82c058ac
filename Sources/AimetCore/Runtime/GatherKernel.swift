/// A kernel that picks elements of operand 0 (data, any element type) by the
/// int64 indices of operand 1 along `axis` (Gather, GatherElements): the output
/// has the data's type, and item i of its axis 0 is item i of the data's only
/// when the picking is along a later axis.
protocol GatherAlongAxis: Kernel {
    var axis: Int { get }
}

extension GatherAlongAxis {
    func outputType(_ types: [ElementType]) throws -> ElementType {
        guard types[1] == .int64 else { throw AimetError.invalid("the indices are \(types[1]), expected an integer tensor") }
        return types[0]
    }

    func isBatchSeparable(_ shapes: [[Int]]) -> Bool {
        Shapes.isLaterAxis(axis, rank: shapes[0].count)
    }
}

/// Gather(axis): picks slices of `data` along `axis` by int64 `indices`
/// (negative ones count from the end of the axis):
///
///     out[a…, j…, b…] = data[a…, indices[j…], b…]
///
/// with shape `data[..<axis] + indices.shape + data[(axis+1)...]`. Each pick
/// copies one contiguous block of `∏ data[(axis+1)...]` elements. Any element
/// type; `width` is its size in float slots.
final class GatherKernel: GatherAlongAxis {
    let axis: Int
    let width: Int

    init(axis: Int, type: ElementType) {
        self.axis = axis
        self.width = type.slots
    }

    func outputShape(_ shapes: [[Int]]) throws -> [Int] {
        let data = shapes[0]
        let a = try Shapes.axis(axis, rank: data.count)
        return Array(data[..<a]) + shapes[1] + Array(data[(a + 1)...])
    }

    func run(_ args: KernelArgs) throws {
        let data = args.shapes[0]
        let a = try Shapes.axis(axis, rank: data.count)
        let n = data[a]
        let count = try Shapes.count(args.shapes[1])
        let raw = Int64Pointer(args.inputs[1])
        var picks = [Int](repeating: 0, count: count)
        for j in 0..<count {
            let i = Int(raw[j])
            guard i >= -n, i < n else { throw AimetError.invalid("index \(i) is out of range for axis \(a) of size \(n)") }
            picks[j] = i < 0 ? i + n : i
        }
        let outer = Shapes.product(data, 0..<a)
        let block = Shapes.product(data, (a + 1)..<data.count) * width
        let src = args.inputs[0], dst = args.output
        Parallel.forEach(outer * count, workers: outer * count * block >= 1 << 16 ? args.workers : 1) { range, _ in
            for r in range {
                let o = r / count, j = r % count
                (dst + r * block).update(from: src + (o * n + picks[j]) * block, count: block)
            }
        }
    }
}
