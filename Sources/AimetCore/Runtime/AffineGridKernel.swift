/// ONNX AffineGrid (opset 20): `theta [N, r, r+1]` (r = 2 or 3) and
/// `size [N, C, (D,) H, W]` → `grid [N, (D,) H, W, r]`, where each point is
/// `theta[n] · [x_W, y_H, (z_D,) 1]` on the base grid of normalized
/// coordinates: `−1 + (2i + 1)/d` per axis, or with align_corners
/// `−1 + 2i/(d − 1)` (a size-1 axis is refused there: PyTorch and
/// onnxruntime put its point at 0, the ONNX reference at −1). Computed in
/// float64, like the reference.
final class AffineGridKernel: Kernel {
    let alignCorners: Bool

    init(alignCorners: Bool) {
        self.alignCorners = alignCorners
    }

    func outputType(_ types: [ElementType]) throws -> ElementType {
        guard types[0] == .float32 else { throw AimetError.unsupported("theta is \(types[0]); AffineGrid runs on float32 only") }
        guard types[1] == .int64 else { throw AimetError.invalid("size is \(types[1]), expected int64") }
        return .float32
    }

    func outputShape(_ operands: [Operand]) throws -> [Int] {
        let size = try operands[1].integers("size")
        let r = size.count - 2
        guard r == 2 || r == 3 else { throw AimetError.shape("size \(size) has \(size.count) values; expected 4 (2-D) or 5 (3-D)") }
        guard size.allSatisfy({ $0 >= 0 }) else { throw AimetError.invalid("size \(size) has a negative dimension") }
        guard operands[0].shape == [size[0], r, r + 1] else {
            throw AimetError.shape("theta has shape \(operands[0].shape); expected [\(size[0]), \(r), \(r + 1)] for size \(size)")
        }
        if alignCorners, size[2...].contains(1) {
            throw AimetError.unsupported("align_corners with a spatial size of 1 (size \(size)) is not supported (implementations place that point at 0 or at -1)")
        }
        let out = [size[0]] + size[2...] + [r]
        _ = try Shapes.count(out)
        return out
    }

    /// Item `i` of the grid follows item `i` of theta, but the batch size comes from `size`.
    func isBatchSeparable(_ shapes: [[Int]]) -> Bool { false }

    func run(_ args: KernelArgs) throws {
        let out = args.outputShape
        let r = out.count - 2, n = out[0]
        let spatial = Array(out[1...r])
        let points = Shapes.product(spatial, 0..<r)
        // Base coordinates per spatial axis (outermost first).
        let base = spatial.map { d in
            (0..<d).map { i -> Double in
                if alignCorners { return -1 + 2 * Double(i) / Double(max(d - 1, 1)) }
                return -1 + Double(2 * i + 1) / Double(d)
            }
        }
        let theta = args.inputs[0], y = args.output
        for b in 0..<n {
            let t = theta + b * r * (r + 1)
            for p in 0..<points {
                // Homogeneous point [x_W, y_H, (z_D,) 1]: the innermost axis first.
                var rest = p
                var homo = [Double](repeating: 1, count: r + 1)
                for axis in stride(from: r - 1, through: 0, by: -1) {
                    homo[r - 1 - axis] = base[axis][rest % spatial[axis]]
                    rest /= spatial[axis]
                }
                for k in 0..<r {
                    var s = 0.0
                    for j in 0...r { s += Double(t[k * (r + 1) + j]) * homo[j] }
                    y[(b * points + p) * r + k] = Float(s)
                }
            }
        }
    }
}
