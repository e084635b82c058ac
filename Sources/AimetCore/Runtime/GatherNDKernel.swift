/// GatherND(batch_dims = b): the last axis of the int64 `indices` (size k)
/// holds coordinates into `data`'s axes `b..<b+k` (negative ones count from
/// the end of the axis); the first b axes of both are batch axes walked
/// together. For indices of shape `[B…, M…, k]`:
///
///     out[B…, M…, rest…] = data[B…, indices[B…, M…, :], rest…]
///
/// of shape `indices.shape[..<q−1] + data.shape[(b+k)...]`; each pick copies a
/// contiguous block. Any element type.
final class GatherNDKernel: Kernel {
    let batchDims: Int
    let width: Int

    init(batchDims: Int, type: ElementType) {
        self.batchDims = batchDims
        self.width = type.slots
    }

    func outputType(_ types: [ElementType]) throws -> ElementType {
        guard types[1] == .int64 else { throw AimetError.invalid("the indices are \(types[1]), expected an integer tensor") }
        return types[0]
    }

    func outputShape(_ shapes: [[Int]]) throws -> [Int] {
        let data = shapes[0], indices = shapes[1], b = batchDims
        guard b >= 0, indices.count >= 1, data.count >= 1, b < min(data.count, indices.count) else {
            throw AimetError.shape("batch_dims \(b) does not fit data \(data) and indices \(indices)")
        }
        guard let k = indices.last, k >= 1, b + k <= data.count, Array(data[..<b]) == Array(indices[..<b]) else {
            throw AimetError.shape("indices \(indices) do not index data \(data) with batch_dims \(b)")
        }
        return Array(indices.dropLast()) + Array(data[(b + k)...])
    }

    func isBatchSeparable(_ shapes: [[Int]]) -> Bool { batchDims > 0 }

    func run(_ args: KernelArgs) throws {
        let data = args.shapes[0], indices = args.shapes[1], b = batchDims
        let k = indices[indices.count - 1]
        let batches = Shapes.product(data, 0..<b)
        let picks = Shapes.product(indices, b..<(indices.count - 1))
        let block = Shapes.product(data, (b + k)..<data.count) * width
        let strides = StridedCopy.strides(data)
        let batchStride = b > 0 ? strides[b - 1] * width : 0
        let raw = Int64Pointer(args.inputs[1])
        for batch in 0..<batches {
            for p in 0..<picks {
                let tuple = (batch * picks + p) * k
                var at = 0
                for t in 0..<k {
                    let n = data[b + t]
                    var i = Int(raw[tuple + t])
                    guard i >= -n, i < n else { throw AimetError.invalid("index \(i) is out of range for axis \(b + t) of size \(n)") }
                    if i < 0 { i += n }
                    at += i * strides[b + t] * width
                }
                (args.output + (batch * picks + p) * block).update(from: args.inputs[0] + batch * batchStride + at, count: block)
            }
        }
    }
}
