/// ONNX Col2Im (opset 18): rebuilds `[N, C, D_1 … D_r]` (`image_shape`) from
/// sliding blocks `[N, C · ∏ block_shape, L]`, summing where blocks overlap:
/// column `k` (block offset, row-major over `block_shape`) of block `l`
/// (row-major over the block grid) lands at `l_i · stride_i − pad_begin_i + k_i · dilation_i`
/// on each axis, when inside the image. The grid has
/// `⌊(D_i + pad_begin_i + pad_end_i − dilation_i · (block_i − 1) − 1) / stride_i⌋ + 1`
/// blocks per axis, and `L` must be their product.
final class Col2ImKernel: Kernel {
    let dilations: [Int]?
    let pads: [Int]?
    let strides: [Int]?

    init(dilations: [Int]?, pads: [Int]?, strides: [Int]?) {
        self.dilations = dilations
        self.pads = pads
        self.strides = strides
    }

    func outputType(_ types: [ElementType]) throws -> ElementType {
        guard types[0] == .float32 else { throw AimetError.unsupported("the input is \(types[0]); Col2Im runs on float32 only") }
        guard types[1] == .int64, types[2] == .int64 else { throw AimetError.invalid("image_shape and block_shape must be int64") }
        return .float32
    }

    struct Geometry {
        var image: [Int], block: [Int], dilation: [Int], padBegin: [Int], stride: [Int], grid: [Int]
    }

    func geometry(_ x: [Int], image: [Int], block: [Int]) throws -> Geometry {
        let r = image.count
        guard r >= 1, block.count == r else { throw AimetError.shape("image_shape \(image) and block_shape \(block) differ in length") }
        let dilation = dilations ?? [Int](repeating: 1, count: r), stride = strides ?? [Int](repeating: 1, count: r)
        let pad = pads ?? [Int](repeating: 0, count: 2 * r)
        guard dilation.count == r, stride.count == r, pad.count == 2 * r else {
            throw AimetError.invalid("dilations \(dilation), strides \(stride) or pads \(pad) do not fit \(r) spatial axes")
        }
        guard dilation.allSatisfy({ $0 >= 1 && $0 < 1 << 20 }), stride.allSatisfy({ $0 >= 1 && $0 < 1 << 20 }),
              pad.allSatisfy({ $0 >= 0 && $0 < 1 << 30 }), image.allSatisfy({ $0 >= 0 && $0 < 1 << 30 }),
              block.allSatisfy({ $0 >= 1 && $0 < 1 << 20 }) else {
            throw AimetError.invalid("dilations \(dilation), strides \(stride), pads \(pad), image_shape \(image) or block_shape \(block) out of range")
        }
        var grid = [Int](repeating: 0, count: r)
        for i in 0..<r {
            let span = image[i] + pad[i] + pad[r + i] - dilation[i] * (block[i] - 1) - 1
            guard span >= 0 else { throw AimetError.shape("block \(block[i]) with dilation \(dilation[i]) does not fit axis \(i) of \(image[i]) (padded)") }
            grid[i] = span / stride[i] + 1
        }
        let k = try Shapes.count(block), l = try Shapes.count(grid)
        guard x.count == 3, x[1] % k == 0, x[2] == l else {
            throw AimetError.shape("the input has shape \(x); expected [N, C · \(k), \(l)] for blocks \(block) on \(image)")
        }
        return Geometry(image: image, block: block, dilation: dilation, padBegin: Array(pad[0..<r]), stride: stride, grid: grid)
    }

    func outputShape(_ operands: [Operand]) throws -> [Int] {
        let x = operands[0].shape
        let g = try geometry(x, image: try operands[1].integers("image_shape"), block: try operands[2].integers("block_shape"))
        let out = [x[0], x[1] / Shapes.product(g.block, 0..<g.block.count)] + g.image
        _ = try Shapes.count(out)
        return out
    }

    func run(_ args: KernelArgs) throws {
        func integers(_ k: Int) -> [Int] {
            let p = Int64Pointer(args.inputs[k])
            return (0..<args.shapes[k].reduce(1, *)).map { Int(p[$0]) }
        }
        let x = args.shapes[0]
        let g = try geometry(x, image: integers(1), block: integers(2))
        let r = g.image.count
        let k = Shapes.product(g.block, 0..<r), l = x[2], plane = Shapes.product(g.image, 0..<r)
        let channels = x[1] / k
        var imageStride = [Int](repeating: 1, count: r)
        for i in stride(from: r - 2, through: 0, by: -1) { imageStride[i] = imageStride[i + 1] * g.image[i + 1] }
        let src = args.inputs[0], dst = args.output
        Parallel.forEach(x[0] * channels, workers: x[0] * x[1] * l >= 1 << 15 ? args.workers : 1) { range, _ in
            for item in range {
                let out = dst + item * plane
                out.update(repeating: 0, count: plane)
                let column = src + item * k * l
                for kk in 0..<k {
                    // Block offset of column kk, then every block position.
                    var rest = kk
                    var offset = [Int](repeating: 0, count: r)
                    for i in stride(from: r - 1, through: 0, by: -1) {
                        offset[i] = (rest % g.block[i]) * g.dilation[i] - g.padBegin[i]
                        rest /= g.block[i]
                    }
                    let row = column + kk * l
                    for ll in 0..<l {
                        var rest = ll, position = 0, inside = true
                        for i in stride(from: r - 1, through: 0, by: -1) {
                            let p = (rest % g.grid[i]) * g.stride[i] + offset[i]
                            rest /= g.grid[i]
                            if p < 0 || p >= g.image[i] { inside = false; break }
                            position += p * imageStride[i]
                        }
                        if inside { out[position] += row[ll] }
                    }
                }
            }
        }
    }
}
