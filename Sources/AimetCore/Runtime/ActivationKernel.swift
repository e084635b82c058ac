/// Relu, Clip, LeakyRelu, Sigmoid: `y = act(x)` elementwise (see `Activation`).
final class ActivationKernel: Kernel {
    let activation: Activation

    init(_ activation: Activation) {
        self.activation = activation
    }

    func outputShape(_ shapes: [[Int]]) throws -> [Int] { shapes[0] }

    func run(_ args: KernelArgs) throws {
        let count = args.outputShape.reduce(1, *)
        let x = args.inputs[0], y = args.output
        Parallel.forEach(count, workers: count >= 1 << 15 ? args.workers : 1) { range, _ in
            activation.apply(x + range.lowerBound, to: y + range.lowerBound, range.count)
        }
    }
}
