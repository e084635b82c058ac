/// Tile: the data repeated `repeats[k]` times along each axis k (operand 1,
/// an int64 tensor of one entry per axis, known before the run):
///
///     out[i₀, …] = data[i₀ mod d₀, …],  out shape dₖ · repeatsₖ.
///
/// Output axis k of size `rₖ · dₖ` is the row-major pair (copy, index) of
/// sizes `(rₖ, dₖ)`, so the copy is a strided view of the data with stride 0
/// on each copy axis (`StridedCopy`). Any element type.
final class TileKernel: Kernel {
    /// Whether the repeats are known at compile time to leave axis 0 alone.
    let keepsAxis0: Bool
    let width: Int

    init(keepsAxis0: Bool, type: ElementType) {
        self.keepsAxis0 = keepsAxis0
        self.width = type.slots
    }

    func outputType(_ types: [ElementType]) throws -> ElementType {
        guard types[1] == .int64 else { throw AimetError.invalid("the repeats input is \(types[1]), expected int64") }
        return types[0]
    }

    func outputShape(_ operands: [Operand]) throws -> [Int] {
        let x = operands[0].shape
        let repeats = try operands[1].integers("repeats input")
        guard repeats.count == x.count, operands[1].shape.count == 1 else {
            throw AimetError.shape("repeats \(repeats) do not give one count per axis of the data \(x)")
        }
        guard repeats.allSatisfy({ $0 >= 0 }) else { throw AimetError.invalid("repeats \(repeats) has a negative count") }
        let out = zip(x, repeats).map { $0 * $1 }
        _ = try Shapes.count(out)
        return out
    }

    func isBatchSeparable(_ shapes: [[Int]]) -> Bool { keepsAxis0 }

    func run(_ args: KernelArgs) throws {
        let x = args.shapes[0], out = args.outputShape
        let inner = StridedCopy.strides(x)
        var shape: [Int] = [], strides: [Int] = []
        for k in 0..<x.count {
            shape += [x[k] == 0 ? 0 : out[k] / x[k], x[k]]
            strides += [0, inner[k]]
        }
        StridedCopy.run(args.inputs[0], offset: 0, strides: strides, into: args.output, shape: shape, width: width, workers: args.workers)
    }
}
