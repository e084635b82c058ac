import CKernels

/// Direct depthwise convolution (`group == C_in`, one input channel per group,
/// `M/C` output channels per input channel), plane by plane:
///
///     y[n, o][oy][ox] = act(bias[o] + Σ_{ky,kx} w[o][ky][kx] · x[n, o/(M/C)][oy·sH − padTop + ky·dH][ox·sW − padLeft + kx·dW] + residual[n, o][oy][ox])
///
/// with zero padding. Horizontal stride 1 or 2 runs C kernels (a
/// zero-bordered copy of each plane, then 16 outputs at a time with fused
/// multiply-adds, built for AVX-512, AVX2 and baseline x86-64 and chosen at
/// run time): 3×3 windows with unit dilation (MobileNet's) the tuned
/// `aimetk_depthwise3x3_planes` (Sources/CKernels/depthwise.c), any other
/// window or dilation `aimetk_depthwise_planes` (depthwise_window.c). Their
/// epilogue is fused when the activation is a clamp (none, Relu, Clip), any
/// other runs over the finished planes. Other strides accumulate one tap at
/// a time over whole rows, the epilogue once over the finished plane.
struct DepthwiseConv {
    let job: ConvJob

    /// Whether the C kernel runs this geometry.
    var isThreeByThree: Bool {
        let g = job.g
        return g.kH == 3 && g.kW == 3 && g.dilationH == 1 && g.dilationW == 1 && (g.strideW == 1 || g.strideW == 2)
            && g.padTop >= 0 && g.padLeft >= 0
    }

    /// Whether `aimetk_depthwise_planes` runs this geometry.
    var isWindowed: Bool {
        let g = job.g
        return (g.strideW == 1 || g.strideW == 2) && g.padTop >= 0 && g.padLeft >= 0
    }

    /// Output planes `planes` of the `N·M` (plane `p`: image `p / M`, channel `p % M`),
    /// with `workspace`'s slot 0 as scratch; `isa` is the kernel's instruction set (tests pick one).
    func run(planes: Range<Int>, workspace: Workspace, isa: aimetk_isa = aimetk_best_isa()) {
        guard !planes.isEmpty else { return }
        let g = job.g, count = g.outCount, y = job.y, activation = job.activation, outChannels = job.outChannels
        if isThreeByThree || isWindowed {
            var k = job.kernel
            if isThreeByThree {
                k.scratch = workspace.floats(aimetk_depthwise3x3_scratch(&k))
                aimetk_depthwise3x3_planes(&k, planes.lowerBound, planes.upperBound, isa)
            } else {
                k.scratch = workspace.floats(aimetk_depthwise_scratch(&k))
                aimetk_depthwise_planes(&k, planes.lowerBound, planes.upperBound, isa)
            }
            if activation.clampBounds == nil { activation.apply(y + planes.lowerBound * count, planes.count * count) }
            return
        }
        for p in planes {
            let o = p % outChannels, c = job.channels
            generic(job.x + (p / outChannels * c + o / (outChannels / c)) * g.inCount, job.w + o * g.kernelCount, y + p * count)
            activation.apply(y + p * count, count, bias: job.bias[o], residual: job.residual.map { $0 + p * count })
        }
    }

    /// The three horizontal taps of the 4 outputs at `ox` from one zero-padded row:
    /// `row[s·ox + kx + s·j]` for `kx < 3`, lanes `j < 4`, horizontal stride `s`
    /// 1 or 2 (then the even and odd lanes of two 8-wide loads). AdaRound's
    /// depthwise engine (DepthwiseEngines.swift) builds its 3×3 passes on it.
    @inline(__always)
    static func taps(_ row: UnsafePointer<Float>, _ ox: Int, stride: Int) -> (Float4, Float4, Float4) {
        if stride == 1 { return (row.load4(ox), row.load4(ox + 1), row.load4(ox + 2)) }
        let a = row.load8(2 * ox), b = row.load8(2 * ox + 2)
        return (a.evenHalf, a.oddHalf, b.evenHalf)
    }

    /// One tap at a time: `row += w · shifted input row` over the valid columns.
    private func generic(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>) {
        let g = job.g, ow = g.outW, iw = g.inW, s = g.strideW
        let columns = (0..<g.kW).map { g.validColumns(kx: $0) }
        y.update(repeating: 0, count: g.outCount)
        for oy in 0..<g.outH {
            let out = y + oy * ow
            for ky in 0..<g.kH {
                let iy = oy * g.strideH - g.padTop + ky * g.dilationH
                guard iy >= 0 && iy < g.inH else { continue }
                let row = x + iy * iw
                for kx in 0..<g.kW {
                    let weight = w[ky * g.kW + kx]
                    let cr = columns[kx]
                    guard !cr.isEmpty else { continue }
                    let offset = kx * g.dilationW - g.padLeft
                    if s == 1 {
                        let src = row + (cr.lowerBound + offset), dst = out + cr.lowerBound
                        for j in 0..<cr.count { dst[j] += weight * src[j] }
                    } else {
                        for ox in cr { out[ox] += weight * row[ox * s + offset] }
                    }
                }
            }
        }
    }
}
