/// GlobalAveragePool: `y[n, c, 1, ...] = mean over the spatial axes of x[n, c]`.
final class GlobalAveragePoolKernel: Kernel {
    func outputShape(_ shapes: [[Int]]) throws -> [Int] {
        let x = shapes[0]
        guard x.count >= 3 else { throw AimetError.shape("input of shape \(x) has no spatial axes (rank >= 3 expected)") }
        return [x[0], x[1]] + [Int](repeating: 1, count: x.count - 2)
    }

    func run(_ args: KernelArgs) throws {
        let shape = args.shapes[0]
        let planes = shape[0] * shape[1], size = Shapes.product(shape, 2..<shape.count)
        let x = args.inputs[0], y = args.output
        let scale = 1 / Float(max(size, 1))
        Parallel.forEach(planes, workers: planes * size >= 1 << 16 ? args.workers : 1) { range, _ in
            for p in range { y[p] = vectorSum(x + p * size, size) * scale }
        }
    }
}
