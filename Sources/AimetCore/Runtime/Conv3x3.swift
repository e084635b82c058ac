import CKernels

/// The buffers and shape of one conv call that a direct kernel runs
/// (`DepthwiseConv`, `DenseConv3x3`): input `[N, C, H, W]`, output
/// `[N, M, outH, outW]`, the epilogue `act(· + bias[o] + residual)`.
struct ConvJob {
    let x: UnsafePointer<Float>
    /// Depthwise: `kH·kW` weights per output channel; dense: `C·kH·kW`.
    let w: UnsafePointer<Float>
    let bias: UnsafePointer<Float>
    let g: ConvGeometry
    let channels: Int
    let outChannels: Int
    let y: UnsafeMutablePointer<Float>
    let activation: Activation
    let residual: UnsafePointer<Float>?

    /// The C kernels' description of the job (Sources/CKernels/depthwise*.c): a
    /// clamp activation runs in the kernel, any other is left to the caller.
    var kernel: aimetk_conv2d {
        let (lo, hi) = activation.clampBounds ?? (-.infinity, .infinity)
        return aimetk_conv2d(x: x, w: w, bias: bias, residual: residual, y: y, scratch: nil, channels: channels,
                              out_channels: outChannels, in_h: g.inH, in_w: g.inW, out_h: g.outH, out_w: g.outW,
                              kernel_h: g.kH, kernel_w: g.kW, dilation_h: g.dilationH, dilation_w: g.dilationW,
                              stride_h: g.strideH, stride_w: g.strideW, pad_top: g.padTop, pad_left: g.padLeft,
                              lo: lo, hi: hi)
    }
}

/// A dense 3×3 stride-2 conv over a few input channels (a network's first
/// conv, RGB in), run directly by `aimetk_dense3x3s2`: an im2col GEMM has
/// K = 9·C (27) there and runs poorly. Work items are images × parts of the
/// output channels (more parts when there are fewer images than workers).
struct DenseConv3x3 {
    let job: ConvJob
    /// Parts of the output channels per image.
    let parts: Int

    /// Input channels up to this run directly.
    static let maxChannels = 4

    /// Whether the kernel runs a conv of this window over `channels` input channels per group.
    static func suits(_ window: WindowAttributes, channels: Int, groups: Int) -> Bool {
        window.rank == 2 && window.kernel == [3, 3] && window.strides == [2, 2] && window.dilations == [1, 1]
            && groups == 1 && channels <= maxChannels
    }

    init(_ job: ConvJob, images: Int, workers: Int) {
        self.job = job
        let blocks = (job.outChannels + 7) / 8
        parts = images >= workers ? 1 : max(1, min(blocks, workers / max(images, 1)))
    }

    /// Work items: images × parts.
    func itemCount(images: Int) -> Int { images * parts }

    /// Items `items`, with `workspace`'s slot 0 as scratch; `isa` is the kernel's instruction set (tests pick one).
    func run(items: Range<Int>, workspace: Workspace, isa: aimetk_isa = aimetk_best_isa()) {
        let outChannels = job.outChannels, activation = job.activation, plane = job.g.outCount
        var k = job.kernel
        k.scratch = workspace.floats(aimetk_dense3x3s2_scratch(&k))
        let blocks = (outChannels + 7) / 8
        for item in items {
            let image = item / parts, part = item % parts
            let first = blocks * part / parts * 8, last = min(outChannels, blocks * (part + 1) / parts * 8)
            guard first < last else { continue }
            aimetk_dense3x3s2(&k, image, first, last, isa)
            if activation.clampBounds == nil {
                for o in first..<last { activation.apply(job.y + (image * outChannels + o) * plane, plane) }
            }
        }
    }
}
