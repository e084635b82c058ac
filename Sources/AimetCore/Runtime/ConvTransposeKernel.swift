/// ONNX ConvTranspose over 1, 2 or more spatial axes (inputs `x [N, C, (D, H,) W]`,
/// weight `[C, M/group, (kD, kH,) kW]`, optional bias `[M]`):
///
///     y[n, g·M/group + o, iy·sH − padTop + ky·dH, ix·sW − padLeft + kx·dW] += x[n, g·C/group + i, iy, ix] · W[g·C/group + i, o, ky, kx]
///
/// plus the bias. Output size `stride·(in − 1) + output_padding + (k − 1)·d + 1 − pads`,
/// or `output_shape` with the padding derived from it (see `WindowAttributes`).
/// Per image and group one `sgemm` `cols[M/group·kH·kW, H·W] = W_gᵀ · x_g`,
/// then col2im adds the columns into the output planes (`Im2col.unpackAddVolume`
/// for 3 or more spatial axes).
final class ConvTransposeKernel: Kernel {
    let window: WindowAttributes
    let weights: [Float]
    let bias: [Float]
    let inChannels: Int
    let outPerGroup: Int
    let groups: Int
    let outputPadding: [Int]
    let outputShapeAttribute: [Int]?

    init(node: Node, weight: Tensor, bias: Tensor?) throws {
        let what = "node '\(node.name)' (ConvTranspose)"
        guard weight.rank >= 3 else {
            throw AimetError.invalid("\(what): weight of rank \(weight.rank); a transposed conv weight is [C, M/group, kernel...] (rank 3 or more)")
        }
        let groups = node.int("group", default: 1)
        let c = weight.shape[0]
        guard groups >= 1, c % groups == 0, c > 0 else {
            throw AimetError.invalid("\(what): \(c) input channels do not split into group = \(groups)")
        }
        let rank = weight.rank - 2
        window = try WindowAttributes(node: node, kernel: Array(weight.shape.dropFirst(2)), rank: rank, maxRank: .max)
        let m = weight.shape[1] * groups
        if let bias, bias.count != m {
            throw AimetError.shape("\(what): bias has \(bias.count) values for \(m) output channels")
        }
        let padding = node.ints("output_padding") ?? [Int](repeating: 0, count: rank)
        guard padding.count == rank, padding.allSatisfy({ $0 >= 0 }) else {
            throw AimetError.invalid("\(what): output_padding \(padding) must have \(rank) non-negative values")
        }
        for axis in 0..<rank where padding[axis] >= max(window.strides[axis], window.dilations[axis]) {
            throw AimetError.invalid("\(what): output_padding \(padding) must be smaller than the stride or the dilation")
        }
        if let shape = node.ints("output_shape") {
            guard shape.count == rank || shape.count == rank + 2 else {
                throw AimetError.invalid("\(what): output_shape \(shape) must have \(rank) (or \(rank + 2)) values")
            }
            outputShapeAttribute = Array(shape.suffix(rank))
        } else {
            outputShapeAttribute = nil
        }
        outputPadding = padding
        weights = weight.data
        self.bias = bias?.data ?? [Float](repeating: 0, count: m)
        inChannels = c
        outPerGroup = weight.shape[1]
        self.groups = groups
    }

    private func geometry(_ x: [Int]) throws -> ConvGeometry {
        try window.transposedGeometry(input: Array(x.dropFirst(2)), outputPadding: outputPadding, outputShape: outputShapeAttribute)
    }

    private func volume(_ x: [Int]) throws -> VolumeGeometry {
        try window.transposedVolume(input: Array(x.dropFirst(2)), outputPadding: outputPadding, outputShape: outputShapeAttribute)
    }

    func outputShape(_ shapes: [[Int]]) throws -> [Int] {
        let x = shapes[0]
        guard x.count == window.rank + 2 else {
            throw AimetError.shape("input of shape \(x) has rank \(x.count), expected \(window.rank + 2)")
        }
        guard x[1] == inChannels else {
            throw AimetError.shape("input has \(x[1]) channels, the weight expects \(inChannels) (shape \(x))")
        }
        let m = outPerGroup * groups
        if window.rank > 2 {
            let v = try volume(x)
            let (rows, overflow) = outPerGroup.multipliedReportingOverflow(by: v.kernelCount)
            let out = [x[0], m] + v.input
            _ = try Shapes.count(out)
            guard !overflow, rows < BLAS.maxDimension, v.outCount < BLAS.maxDimension, try Shapes.count([rows, v.outCount]) < 1 << 40 else {
                throw AimetError.shape("input \(x) is too large")
            }
            return out
        }
        let g = try geometry(x)
        guard outPerGroup * g.kernelCount < BLAS.maxDimension, g.outCount < BLAS.maxDimension else {
            throw AimetError.shape("input \(x) is too large")
        }
        return window.rank == 1 ? [x[0], m, g.inW] : [x[0], m, g.inH, g.inW]
    }

    func run(_ args: KernelArgs) throws {
        let xShape = args.shapes[0]
        let hw: Int, ohw: Int, kernelCount: Int, unpackAdd: (UnsafePointer<Float>, Int, UnsafeMutablePointer<Float>) -> Void
        if window.rank > 2 {
            let v = try volume(xShape)
            (hw, ohw, kernelCount) = (v.outCount, v.inCount, v.kernelCount)
            unpackAdd = { cols, channels, y in Im2col.unpackAddVolume(cols, channels: channels, v, into: y) }
        } else {
            let g = try geometry(xShape)
            (hw, ohw, kernelCount) = (g.outCount, g.inCount, g.kernelCount)
            unpackAdd = { cols, channels, y in Im2col.unpackAdd(cols, rowStride: g.outCount, channels: channels, g, into: y) }
        }
        let n = xShape[0], cg = inChannels / groups, mg = outPerGroup, m = mg * groups
        let rows = mg * kernelCount
        let x = args.inputs[0], y = args.output
        weights.withUnsafeBufferPointer { wb in
            let w = wb.baseAddress!
            Parallel.forEach(n, workers: args.workers) { images, worker in
                let cols = args.workspaces[worker].floats(rows * hw)
                for image in images {
                    for o in 0..<m { (y + (image * m + o) * ohw).update(repeating: bias[o], count: ohw) }
                    for grp in 0..<groups {
                        let xg = x + (image * inChannels + grp * cg) * hw
                        BLAS.sgemm(transA: true, m: rows, n: hw, k: cg, a: w + grp * cg * rows, lda: rows,
                                   b: xg, ldb: hw, c: cols, ldc: hw)
                        unpackAdd(cols, mg, y + (image * m + grp * mg) * ohw)
                    }
                }
            }
        }
    }
}
