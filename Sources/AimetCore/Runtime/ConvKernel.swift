import Synchronization

/// ONNX Conv over 1, 2 or more spatial axes (inputs `x [N, C, (D, H,) W]`, weight
/// `[M, C/group, (kD, kH,) kW]`, optional bias `[M]`), with an optional fused epilogue:
///
///     y[n, o] = act( Σ_{c, ky, kx} W[o, c, ky, kx] · x[n, g·C/group + c, window] + b[o]  (+ residual[n, o]) )
///
/// where `g = o / (M/group)`. A batch norm right after the conv is folded into
/// `W` and `b` at compile time (`W'[o] = W[o]·s[o]`, `b' = (b − μ)·s + β`,
/// `s = γ/√(σ² + ε)`).
///
/// - Depthwise (`group == C`, one input channel per group) runs the direct
///   `DepthwiseConv` kernel, planes shared out over the workers.
/// - 3×3 stride-1 convs with at least 16 input and output channels: Winograd
///   F(4×4, 3×3) (`Winograd`), 4× fewer multiplies.
/// - 3×3 stride-2 convs over at most 4 input channels (a first conv): the
///   direct `DenseConv3x3` kernel.
/// - Everything else: per image, group and column tile (sized to the L2
///   cache), im2col into a per-worker buffer (1×1 / stride 1 / no padding
///   reads the input directly) and one `sgemm`
///   `Y_g[M/group, tile] = W_g[M/group, C/group·kH·kW] × cols`, then the
///   epilogue row by row while it is in cache. When an output plane is small
///   (< 256 pixels) several images share one GEMM: their columns sit side by
///   side, and the result is scattered back per image. With fewer work items
///   than workers (a single image), the output channels are shared out too.
/// - 3 or more spatial axes: per image and group, the N-D im2col
///   (`Im2col.packVolume`) of the whole output and one `sgemm`, images shared
///   out over the workers.
final class ConvKernel: Kernel {
    let nodeName: String
    let window: WindowAttributes
    let weights: [Float]
    let bias: [Float]
    let outChannels: Int
    let inPerGroup: Int
    let groups: Int
    let activation: Activation
    /// Operand 1 is added before the activation (a residual Add fused in).
    let residual: Bool
    /// Whether 3×3 stride-1 convs run by Winograd (when the geometry suits).
    let usesWinograd: Bool
    private let winogradCache = Mutex<[Float]?>(nil)

    /// Depthwise: one input channel per group.
    var isDepthwise: Bool { inPerGroup == 1 && groups > 1 }
    /// 3 or more spatial axes: the `VolumeGeometry` path.
    var isVolume: Bool { window.rank > 2 }

    init(node: Node, weight: Tensor, bias: Tensor?, batchNorm: BatchNormKernel? = nil,
         activation: Activation = .none, residual: Bool = false) throws {
        let what = "node '\(node.name)' (Conv)"
        guard weight.rank >= 3 else {
            throw AimetError.invalid("\(what): weight of rank \(weight.rank); a conv weight is [M, C/group, kernel...] (rank 3 or more)")
        }
        let groups = node.int("group", default: 1)
        let m = weight.shape[0]
        guard groups >= 1, m % groups == 0, m > 0 else {
            throw AimetError.invalid("\(what): \(m) output channels do not split into group = \(groups)")
        }
        if let bias, bias.count != m {
            throw AimetError.shape("\(what): bias has \(bias.count) values for \(m) output channels")
        }
        window = try WindowAttributes(node: node, kernel: Array(weight.shape.dropFirst(2)), rank: weight.rank - 2, maxRank: .max)
        nodeName = node.name
        outChannels = m
        inPerGroup = weight.shape[1]
        self.groups = groups
        self.activation = activation
        self.residual = residual
        var w = weight.data
        var b = bias?.data ?? [Float](repeating: 0, count: m)
        if let bn = batchNorm {
            guard bn.scale.count == m else {
                throw AimetError.shape("\(what): the batch norm after it has \(bn.scale.count) channels, the conv \(m)")
            }
            let k = w.count / m
            for o in 0..<m {
                for j in 0..<k { w[o * k + j] *= bn.scale[o] }
                b[o] = b[o] * bn.scale[o] + bn.shift[o]
            }
        }
        weights = w
        self.bias = b
        // Winograd F(4×4, 3×3) for 3×3 stride-1 convs with enough channels; the
        // transformed weights are made on first use (a plan that never runs costs no memory).
        let k = window.kernel, st = window.strides, d = window.dilations
        usesWinograd = window.rank == 2 && k == [3, 3] && st == [1, 1] && d == [1, 1] && groups == 1 && inPerGroup >= 16 && m >= 16
    }

    /// `Winograd.transformWeights` of the weights, made once.
    private func winogradWeights() -> [Float] {
        winogradCache.withLock { cache in
            if let u = cache { return u }
            let u = Winograd.transformWeights(weights, m: outChannels, c: inPerGroup)
            cache = u
            return u
        }
    }

    func outputShape(_ shapes: [[Int]]) throws -> [Int] {
        let x = shapes[0]
        guard x.count == window.rank + 2 else {
            throw AimetError.shape("input of shape \(x) has rank \(x.count), expected \(window.rank + 2) ([N, C, spatial axes])")
        }
        guard x[1] == inPerGroup * groups else {
            throw AimetError.shape("input has \(x[1]) channels, the weight expects \(inPerGroup * groups) (shape \(x))")
        }
        let out: [Int]
        if isVolume {
            let v = try window.volume(input: Array(x.dropFirst(2)))
            let (k, kOverflow) = inPerGroup.multipliedReportingOverflow(by: v.kernelCount)
            let columns = try Shapes.count([k, v.output.reduce(1, *)])
            guard !kOverflow, k < BLAS.maxDimension, columns < 1 << 40, v.outCount < BLAS.maxDimension else {
                throw AimetError.shape("input \(x) is too large")
            }
            out = [x[0], outChannels] + v.output
        } else {
            let g = try window.geometry(input: Array(x.dropFirst(2)))
            let k = inPerGroup * g.kernelCount
            guard k < BLAS.maxDimension, g.outCount < BLAS.maxDimension else { throw AimetError.shape("input \(x) is too large") }
            out = convShape(x, g)
        }
        // The fused Add broadcasts both ways: its other operand may be the larger one.
        return residual ? try Shapes.broadcast(out, shapes[1]) : out
    }

    /// The conv's own output shape (before a fused residual Add broadcasts it).
    private func convShape(_ x: [Int], _ g: ConvGeometry) -> [Int] {
        window.rank == 1 ? [x[0], outChannels, g.outW] : [x[0], outChannels, g.outH, g.outW]
    }

    func run(_ args: KernelArgs) throws {
        let xShape = args.shapes[0], n = xShape[0]
        let convShape: [Int]
        let convolve: (UnsafePointer<Float>, Int, UnsafeMutablePointer<Float>, Activation, UnsafePointer<Float>?, Int, [Workspace]) -> Void
        if isVolume {
            let v = try window.volume(input: Array(xShape.dropFirst(2)))
            convShape = [n, outChannels] + v.output
            convolve = { x, n, y, act, residual, workers, workspaces in self.runVolume(x, v, n, y, act, residual, workers, workspaces) }
        } else {
            let g = try window.geometry(input: Array(xShape.dropFirst(2)))
            convShape = self.convShape(xShape, g)
            convolve = { x, n, y, act, residual, workers, workspaces in self.convolve(x, g, n, y, act, residual, workers, workspaces) }
        }
        // A residual of the output's own shape goes into the epilogue. Any other
        // broadcast is added afterwards, the conv writing into the output when it
        // has the output's shape, else into a buffer of its own.
        let fuses = !residual || (args.shapes[1] == args.outputShape && convShape == args.outputShape)
        if fuses {
            convolve(args.inputs[0], n, args.output, activation, residual ? args.inputs[1] : nil, args.workers, args.workspaces)
            return
        }
        func addResidual(_ conv: UnsafePointer<Float>) {
            BinaryKernel.compute(.add, conv, convShape, args.inputs[1], args.shapes[1], into: args.output, args.outputShape,
                                 workers: args.workers)
        }
        if convShape == args.outputShape {
            convolve(args.inputs[0], n, args.output, .none, nil, args.workers, args.workspaces)
            addResidual(args.output)
        } else {
            let conv = [Float](unsafeUninitializedCapacity: convShape.reduce(1, *)) { buffer, initialized in
                if let base = buffer.baseAddress { convolve(args.inputs[0], n, base, .none, nil, args.workers, args.workspaces) }
                initialized = buffer.count
            }
            conv.withUnsafeBufferPointer { if let base = $0.baseAddress { addResidual(base) } }
        }
        activation.apply(args.output, args.outputShape.reduce(1, *))
    }

    /// The conv of `n` images into `y` (the conv's own shape), with the epilogue
    /// `act(· + bias + residual)` (`residual` of that shape, optional).
    private func convolve(_ x: UnsafePointer<Float>, _ g: ConvGeometry, _ n: Int, _ y: UnsafeMutablePointer<Float>,
                          _ act: Activation, _ residual: UnsafePointer<Float>?, _ workers: Int, _ workspaces: [Workspace]) {
        if isDepthwise {
            runDepthwise(x, g, n, y, act, residual, workers, workspaces)
        } else if usesWinograd && Winograd.suits(g, inChannels: inPerGroup, outChannels: outChannels, groups: groups) {
            let blocking = Winograd.Blocking(images: n, channels: inPerGroup, outChannels: outChannels, g, workers: workers)
            winogradWeights().withUnsafeBufferPointer { ub in
                Parallel.forEach(blocking.count, workers: workers) { blocks, worker in
                    Winograd.run(x, blocking, blocks: blocks, channels: inPerGroup, g, u: ub.baseAddress!, outChannels: outChannels,
                                 bias: bias, activation: act, residual: residual, into: y, workspace: workspaces[worker])
                }
            }
        } else if DenseConv3x3.suits(window, channels: inPerGroup, groups: groups) {
            runDense(x, g, n, y, act, residual, workers, workspaces)
        } else {
            runGEMM(x, g, n, y, act, residual, workers, workspaces)
        }
    }

    private func runDense(_ x: UnsafePointer<Float>, _ g: ConvGeometry, _ n: Int, _ y: UnsafeMutablePointer<Float>,
                          _ act: Activation, _ residual: UnsafePointer<Float>?, _ workers: Int, _ workspaces: [Workspace]) {
        weights.withUnsafeBufferPointer { w in
            bias.withUnsafeBufferPointer { b in
                let job = ConvJob(x: x, w: w.baseAddress!, bias: b.baseAddress!, g: g, channels: inPerGroup,
                                  outChannels: outChannels, y: y, activation: act, residual: residual)
                let conv = DenseConv3x3(job, images: n, workers: workers)
                Parallel.forEach(conv.itemCount(images: n), workers: workers) { items, worker in
                    conv.run(items: items, workspace: workspaces[worker])
                }
            }
        }
    }

    private func runDepthwise(_ x: UnsafePointer<Float>, _ g: ConvGeometry, _ n: Int, _ y: UnsafeMutablePointer<Float>,
                              _ act: Activation, _ residual: UnsafePointer<Float>?, _ workers: Int, _ workspaces: [Workspace]) {
        weights.withUnsafeBufferPointer { w in
            bias.withUnsafeBufferPointer { b in
                let conv = DepthwiseConv(job: ConvJob(x: x, w: w.baseAddress!, bias: b.baseAddress!, g: g, channels: groups,
                                                      outChannels: outChannels, y: y, activation: act, residual: residual))
                Parallel.forEach(n * outChannels, workers: workers) { planes, worker in
                    conv.run(planes: planes, workspace: workspaces[worker])
                }
            }
        }
    }

    private func runGEMM(_ x: UnsafePointer<Float>, _ g: ConvGeometry, _ n: Int, _ y: UnsafeMutablePointer<Float>,
                         _ act: Activation, _ residual: UnsafePointer<Float>?, _ workers: Int, _ workspaces: [Workspace]) {
        let m = outChannels, mg = m / groups, c = inPerGroup * groups
        let k = inPerGroup * g.kernelCount
        let ohw = g.outCount, hw = g.inCount
        let pointwise = g.isPointwise
        // Small planes: several images per GEMM, for enough columns.
        let perGEMM = groups == 1 && ohw < 256 ? max(1, min(256 / max(ohw, 1), 1 << 22 / max(k * ohw, 1))) : 1
        let blocks = (n + perGEMM - 1) / perGEMM
        // One image at a time: column tiles whose columns (k rows) and results (mg rows) fit
        // in about 512 KB of L2, so im2col, GEMM and epilogue pass through cache; equal
        // tiles, multiples of 16.
        let tileCount = perGEMM == 1 ? max(1, ohw * (k + mg) / (1 << 17)) : 1
        let tile = min(ohw, ((ohw + tileCount - 1) / tileCount + 15) / 16 * 16)
        let tiles = (ohw + tile - 1) / tile
        // Work items: image blocks × groups × tiles, image-major (a worker keeps whole
        // images when there are enough); with fewer items than workers, the output rows
        // of each item are shared out too.
        let perBlock = perGEMM == 1 ? groups * tiles : 1
        let items = blocks * perBlock
        let parts = items >= workers ? 1 : max(1, min(mg, workers / items))
        weights.withUnsafeBufferPointer { wb in
            let w = wb.baseAddress!
            Parallel.forEach(items * parts, workers: workers) { range, worker in
                let ws = workspaces[worker]
                for item in range {
                    let part = item % parts, block = item / parts / perBlock, within = item / parts % perBlock
                    let rows = (mg * part / parts)..<(mg * (part + 1) / parts)
                    let first = block * perGEMM, count = min(perGEMM, n - first)
                    if perGEMM == 1 {
                        // One image, one group, one column tile: the GEMM writes straight into the output.
                        let grp = within / tiles, p0 = within % tiles * tile, p1 = min(ohw, p0 + tile), width = p1 - p0
                        let xg = x + (first * c + grp * inPerGroup) * hw
                        let yg = y + (first * m + grp * mg) * ohw
                        let cols: UnsafePointer<Float>, ldb: Int
                        if pointwise {
                            cols = xg + p0
                            ldb = hw
                        } else {
                            let buffer = ws.floats(k * width)
                            Im2col.pack(xg, channels: inPerGroup, g, pixels: p0..<p1, into: buffer, rowStride: width)
                            cols = UnsafePointer(buffer)
                            ldb = width
                        }
                        BLAS.sgemm(m: rows.count, n: width, k: k, a: w + (grp * mg + rows.lowerBound) * k, lda: k, b: cols, ldb: ldb,
                                   c: yg + (rows.lowerBound * ohw + p0), ldc: ohw)
                        for o in rows {
                            let offset = (first * m + grp * mg + o) * ohw + p0
                            act.apply(y + offset, width, bias: bias[grp * mg + o], residual: residual.map { $0 + offset })
                        }
                    } else {
                        // Several images (groups == 1): columns side by side, then scattered back.
                        let width = count * ohw
                        let cols = ws.floats(k * width, slot: 0)
                        for j in 0..<count {
                            let xi = x + (first + j) * c * hw
                            if pointwise {
                                for row in 0..<k { (cols + (row * width + j * ohw)).update(from: xi + row * hw, count: hw) }
                            } else {
                                Im2col.pack(xi, channels: c, g, pixels: 0..<ohw, into: cols + j * ohw, rowStride: width)
                            }
                        }
                        let result = ws.floats(rows.count * width, slot: 1)
                        BLAS.sgemm(m: rows.count, n: width, k: k, a: w + rows.lowerBound * k, lda: k, b: cols, ldb: width,
                                   c: result, ldc: width)
                        for j in 0..<count {
                            for o in rows {
                                let offset = ((first + j) * m + o) * ohw
                                act.apply(result + ((o - rows.lowerBound) * width + j * ohw), to: y + offset, ohw, bias: bias[o],
                                          residual: residual.map { $0 + offset })
                            }
                        }
                    }
                }
            }
        }
    }

    /// 3 or more spatial axes: per image and group, the columns of the whole
    /// output (`Im2col.packVolume`), one `sgemm` `Y_g = W_g × cols`, then the epilogue.
    private func runVolume(_ x: UnsafePointer<Float>, _ v: VolumeGeometry, _ n: Int, _ y: UnsafeMutablePointer<Float>,
                           _ act: Activation, _ residual: UnsafePointer<Float>?, _ workers: Int, _ workspaces: [Workspace]) {
        let m = outChannels, mg = m / groups, c = inPerGroup * groups
        let k = inPerGroup * v.kernelCount, ohw = v.outCount, hw = v.inCount
        weights.withUnsafeBufferPointer { wb in
            let w = wb.baseAddress!
            Parallel.forEach(n * groups, workers: workers) { items, worker in
                let cols = workspaces[worker].floats(k * ohw)
                for item in items {
                    let image = item / groups, grp = item % groups
                    Im2col.packVolume(x + (image * c + grp * inPerGroup) * hw, channels: inPerGroup, v, into: cols)
                    let yg = y + (image * m + grp * mg) * ohw
                    BLAS.sgemm(m: mg, n: ohw, k: k, a: w + grp * mg * k, lda: k, b: cols, ldb: ohw, c: yg, ldc: ohw)
                    for o in 0..<mg {
                        let offset = (image * m + grp * mg + o) * ohw
                        act.apply(y + offset, ohw, bias: bias[grp * mg + o], residual: residual.map { $0 + offset })
                    }
                }
            }
        }
    }
}
