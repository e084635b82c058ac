/// GatherElements(axis): `out` has the shape of the int64 `indices` (same
/// rank as `data`) and takes, at each position, the data element at that
/// position with the `axis` coordinate replaced by the index there
/// (negative indices count from the end of the axis):
///
///     out[i₀, …, iₐ, …] = data[i₀, …, indices[i₀, …, iₐ, …], …]
///
/// Any element type (`width` float slots each).
final class GatherElementsKernel: GatherAlongAxis {
    let axis: Int
    let width: Int

    init(axis: Int, type: ElementType) {
        self.axis = axis
        self.width = type.slots
    }

    func outputShape(_ shapes: [[Int]]) throws -> [Int] {
        let data = shapes[0], indices = shapes[1]
        let a = try Shapes.axis(axis, rank: data.count)
        guard indices.count == data.count else { throw AimetError.shape("indices \(indices) and data \(data) differ in rank") }
        for k in 0..<data.count where k != a && indices[k] > data[k] {
            throw AimetError.shape("indices \(indices) exceed the data \(data) on axis \(k)")
        }
        return indices
    }

    func run(_ args: KernelArgs) throws {
        let data = args.shapes[0], shape = args.outputShape
        let a = try Shapes.axis(axis, rank: data.count)
        let n = data[a], w = width
        let dataStrides = StridedCopy.strides(data)
        let count = try Shapes.count(shape)
        let indices = Int64Pointer(args.inputs[1])
        var index = [Int](repeating: 0, count: shape.count)
        for e in 0..<count {
            var i = Int(indices[e])
            guard i >= -n, i < n else { throw AimetError.invalid("index \(i) is out of range for axis \(a) of size \(n)") }
            if i < 0 { i += n }
            var at = 0
            for k in 0..<shape.count { at += (k == a ? i : index[k]) * dataStrides[k] }
            (args.output + e * w).update(from: args.inputs[0] + at * w, count: w)
            var k = shape.count - 1
            while k >= 0 {
                index[k] += 1
                if index[k] < shape[k] { break }
                index[k] = 0
                k -= 1
            }
        }
    }
}
