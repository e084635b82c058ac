/// A depthwise convolution (one input channel per group, `M = mult·C` output
/// channels) on whole images, data NCHW. Direct, with no GEMM: each worker
/// owns a range of output channels (so no gradient reduction) and walks the
/// mini-batch image by image (so each image's planes stream in order). The
/// cached input planes are stored zero-bordered (`x̂`, copied once), and for
/// each image and channel of a step
///
///     y[oy][ox]  = Σ_{ky,kx} w[ky][kx] · x̂[oy·sH + ky·dH][ox·sW + kx·dW]
///     dw[ky][kx] = Σ_{oy,ox} dY[oy][ox] · x̂[oy·sH + ky·dH][ox·sW + kx·dW]
///
/// 3×3 windows with stride 1 or 2 run 4 outputs at a time with the 9 taps in
/// registers (stride 2 takes the even and odd lanes of 8-wide loads); other
/// windows one tap at a time over whole rows.
final class DepthwiseEngine: EngineCore, ReconstructionEngine {
    let geometry: ConvGeometry
    let channels: Int, outChannels: Int
    var positionsPerSample: Int { geometry.outCount }
    var takesPositions: Bool { false }
    // inputs: the input planes, zero-bordered, `[N, C, paddedRows, paddedCols]`
    private let fast: Bool
    private let paddedRows: Int, paddedCols: Int, rowStride: Int

    init(geometry g: ConvGeometry, channels: Int, outChannels: Int, samples: Int,
         inputs: [Float], targets: [Float], bias: [Float], activation: AdaRoundActivation, workers: Int) {
        geometry = g
        self.channels = channels
        self.outChannels = outChannels
        let fast = g.kH == 3 && g.kW == 3 && g.dilationH == 1 && g.dilationW == 1 && (g.strideW == 1 || g.strideW == 2)
        let rows: Int, cols: Int
        if fast {
            let ow4 = (g.outW + 3) / 4 * 4
            rows = (g.outH - 1) * g.strideH + 3
            cols = g.strideW == 1 ? ow4 + 2 : 2 * ow4 + 2
            rowStride = ow4
        } else {
            rows = (g.outH - 1) * g.strideH + (g.kH - 1) * g.dilationH + 1
            cols = (g.outW - 1) * g.strideW + (g.kW - 1) * g.dilationW + 1
            rowStride = g.outW
        }
        self.fast = fast
        paddedRows = rows
        paddedCols = cols
        let planeSize = rows * cols
        var planes = [Float](repeating: 0, count: samples * channels * planeSize)
        planes.withUnsafeMutableBufferPointer { dst in
            inputs.withUnsafeBufferPointer { src in
                for plane in 0..<(samples * channels) {
                    Self.fillPadded(src.baseAddress! + plane * g.inCount, dst.baseAddress! + plane * planeSize, g,
                                    rows: rows, cols: cols)
                }
            }
        }
        super.init(samples: samples, inputs: planes, targets: targets, bias: bias, activation: activation, workers: workers)
    }

    func run(_ indices: UnsafeBufferPointer<Int>, weight: UnsafePointer<Float>,
             gradient: UnsafeMutablePointer<Float>?, scale: Float) -> Double {
        let g = geometry, p = g.outCount, kk = g.kernelCount
        let m = outChannels, c = channels, multiplier = m / c
        let planeSize = paddedRows * paddedCols
        let withGradient = gradient != nil
        let shares = min(workers, m)
        // Output rows without padding lanes: the epilogue takes a plane at once.
        let contiguous = rowStride == g.outW
        withData { x, t in
            Parallel.forEach(m, workers: shares) { range, w in
                let ws = workspaces[w]
                let y = ws.floats(g.outH * rowStride, slot: 1)
                // Image by image, so each image's planes stream in order; per-channel sums in `acc`.
                let acc = ws.floats(range.count * kk, slot: 2)
                acc.update(repeating: 0, count: range.count * kk)
                var loss = 0.0
                for b in indices {
                    for o in range {
                        let plane = x + (b * c + o / multiplier) * planeSize
                        let wo = weight + o * kk
                        if fast { forward3x3(plane, wo, y) } else { forwardGeneric(plane, wo, y) }
                        let target = t + (b * m + o) * p
                        let act = activation.forChannel(o)
                        if contiguous {
                            loss += lossEpilogue(y, target, p, bias: bias[o], act, scale: scale, gradient: withGradient)
                        } else {
                            for oy in 0..<g.outH {
                                let row = y + oy * rowStride
                                loss += lossEpilogue(row, target + oy * g.outW, g.outW, bias: bias[o], act,
                                                     scale: scale, gradient: withGradient)
                                if withGradient {
                                    for j in g.outW..<rowStride { row[j] = 0 }
                                }
                            }
                        }
                        guard withGradient else { continue }
                        let sums = acc + (o - range.lowerBound) * kk
                        if fast {
                            var fastAcc = FastAccumulators()
                            backward3x3(plane, y, &fastAcc)
                            for k in 0..<9 { sums[k] += fastAcc.total(k) }
                        } else {
                            backwardGeneric(plane, y, sums)
                        }
                    }
                }
                if let gradient {
                    (gradient + range.lowerBound * kk).update(from: acc, count: range.count * kk)
                }
                losses.add(w, loss)
            }
        }
        return losses.total
    }

    /// `padded[r][c] = x[r − padTop][c − padLeft]`, 0 outside the plane.
    private static func fillPadded(_ x: UnsafePointer<Float>, _ padded: UnsafeMutablePointer<Float>, _ g: ConvGeometry,
                                   rows: Int, cols: Int) {
        let copied = max(0, min(g.inW, cols - g.padLeft))
        for r in 0..<rows {
            let iy = r - g.padTop
            guard iy >= 0 && iy < g.inH && copied > 0 else { continue }
            (padded + r * cols + g.padLeft).update(from: x + iy * g.inW, count: copied)
        }
    }

    // MARK: 3×3

    struct FastAccumulators {
        var a0 = SIMD4<Float>(), a1 = SIMD4<Float>(), a2 = SIMD4<Float>(), a3 = SIMD4<Float>(), a4 = SIMD4<Float>()
        var a5 = SIMD4<Float>(), a6 = SIMD4<Float>(), a7 = SIMD4<Float>(), a8 = SIMD4<Float>()
        func total(_ k: Int) -> Float {
            switch k {
            case 0: return a0.sum()
            case 1: return a1.sum()
            case 2: return a2.sum()
            case 3: return a3.sum()
            case 4: return a4.sum()
            case 5: return a5.sum()
            case 6: return a6.sum()
            case 7: return a7.sum()
            default: return a8.sum()
            }
        }
    }

    /// The three horizontal taps of 4 outputs at `ox` from one padded row.
    @inline(__always)
    private func taps(_ row: UnsafePointer<Float>, _ ox: Int) -> (SIMD4<Float>, SIMD4<Float>, SIMD4<Float>) {
        DepthwiseConv.taps(row, ox, stride: geometry.strideW)
    }

    private func forward3x3(_ padded: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>) {
        let g = geometry, cols = paddedCols
        let w0 = SIMD4<Float>(repeating: w[0]), w1 = SIMD4<Float>(repeating: w[1]), w2 = SIMD4<Float>(repeating: w[2])
        let w3 = SIMD4<Float>(repeating: w[3]), w4 = SIMD4<Float>(repeating: w[4]), w5 = SIMD4<Float>(repeating: w[5])
        let w6 = SIMD4<Float>(repeating: w[6]), w7 = SIMD4<Float>(repeating: w[7]), w8 = SIMD4<Float>(repeating: w[8])
        for oy in 0..<g.outH {
            let r0 = padded + oy * g.strideH * cols, r1 = r0 + cols, r2 = r1 + cols
            let out = y + oy * rowStride
            var ox = 0
            while ox < rowStride {
                let (a0, a1, a2) = taps(r0, ox)
                let (b0, b1, b2) = taps(r1, ox)
                let (c0, c1, c2) = taps(r2, ox)
                var acc = w0 * a0 + w1 * a1 + w2 * a2
                acc += w3 * b0 + w4 * b1 + w5 * b2
                acc += w6 * c0 + w7 * c1 + w8 * c2
                out.store4(acc, ox)
                ox += 4
            }
        }
    }

    private func backward3x3(_ padded: UnsafePointer<Float>, _ dy: UnsafeMutablePointer<Float>, _ acc: inout FastAccumulators) {
        let g = geometry, cols = paddedCols
        var s = acc
        for oy in 0..<g.outH {
            let r0 = padded + oy * g.strideH * cols, r1 = r0 + cols, r2 = r1 + cols
            let d = UnsafePointer(dy + oy * rowStride)
            var ox = 0
            while ox < rowStride {
                let v = d.load4(ox)
                let (a0, a1, a2) = taps(r0, ox)
                let (b0, b1, b2) = taps(r1, ox)
                let (c0, c1, c2) = taps(r2, ox)
                s.a0 += v * a0; s.a1 += v * a1; s.a2 += v * a2
                s.a3 += v * b0; s.a4 += v * b1; s.a5 += v * b2
                s.a6 += v * c0; s.a7 += v * c1; s.a8 += v * c2
                ox += 4
            }
        }
        acc = s
    }

    // MARK: Any window

    private func forwardGeneric(_ padded: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>) {
        let g = geometry, cols = paddedCols, ow = g.outW, s = g.strideW
        y.update(repeating: 0, count: g.outH * ow)
        for ky in 0..<g.kH {
            for kx in 0..<g.kW {
                let wv = w[ky * g.kW + kx]
                for oy in 0..<g.outH {
                    let src = padded + (oy * g.strideH + ky * g.dilationH) * cols + kx * g.dilationW
                    let out = y + oy * ow
                    if s == 1 {
                        for ox in 0..<ow { out[ox] += wv * src[ox] }
                    } else {
                        for ox in 0..<ow { out[ox] += wv * src[ox * s] }
                    }
                }
            }
        }
    }

    private func backwardGeneric(_ padded: UnsafePointer<Float>, _ dy: UnsafeMutablePointer<Float>,
                                 _ acc: UnsafeMutablePointer<Float>) {
        let g = geometry, cols = paddedCols, ow = g.outW, s = g.strideW
        for ky in 0..<g.kH {
            for kx in 0..<g.kW {
                var sum: Float = 0
                for oy in 0..<g.outH {
                    let src = padded + (oy * g.strideH + ky * g.dilationH) * cols + kx * g.dilationW
                    let d = dy + oy * ow
                    for ox in 0..<ow { sum += d[ox] * src[ox * s] }
                }
                acc[ky * g.kW + kx] += sum
            }
        }
    }
}

/// A depthwise convolution with one output channel per input channel, on
/// sampled output positions (the position-sampling estimator), data NHWC: a
/// position's window is `kH·kW` runs of the `C` contiguous channels of one
/// input pixel, so with the weights stored tap-major (`w'[k][c] = w[c][k]`)
///
///     y[c]       = Σ_k w'[k][c] · x̂_k[c]        (x̂_k: tap k's input pixel, 0 in the padding)
///     dw'[k][c] += dY[c] · x̂_k[c]
///
/// run 8 channels at a time. A position costs `2·kH·kW·C` multiply-adds where
/// the whole-image engine spends that on every position of every image of a
/// mini-batch; each worker takes a share of the positions and its own
/// gradient buffer.
final class DepthwisePositionsEngine: EngineCore, ReconstructionEngine {
    let geometry: ConvGeometry
    let channels: Int
    var positionsPerSample: Int { geometry.outCount }
    var takesPositions: Bool { true }
    // inputs [N, inH, inW, C], targets [N, P, C]
    private var tapMajor: [Float]
    private let partials: GradientPartials

    /// `inputs`: `[N, C, inH, inW]`, `targets`: `[N, C, outH, outW]` after the activation; stored channels-last.
    init(geometry g: ConvGeometry, channels: Int, samples: Int, inputs: [Float], targets: [Float], bias: [Float],
         activation: AdaRoundActivation, workers: Int) {
        geometry = g
        self.channels = channels
        tapMajor = [Float](repeating: 0, count: channels * g.kernelCount)
        partials = GradientPartials(workers: max(1, workers), count: channels * g.kernelCount)
        super.init(samples: samples, inputs: channelsLast(inputs, images: samples, channels: channels, plane: g.inCount),
                   targets: channelsLast(targets, images: samples, channels: channels, plane: g.outCount),
                   bias: bias, activation: activation, workers: workers)
    }

    func run(_ indices: UnsafeBufferPointer<Int>, weight: UnsafePointer<Float>,
             gradient: UnsafeMutablePointer<Float>?, scale: Float) -> Double {
        let g = geometry, kk = g.kernelCount, c = channels
        tapMajor.withUnsafeMutableBufferPointer { wp in
            for ch in 0..<c {
                for k in 0..<kk { wp[k * c + ch] = weight[ch * kk + k] }
            }
        }
        let shares = min(workers, max(1, indices.count / 64))
        let withGradient = gradient != nil
        withData { x, t in
            tapMajor.withUnsafeBufferPointer { wpb in
                let wp = wpb.baseAddress!
                let biases = bias.pointer, slopePointer = slopes.map { UnsafePointer($0.pointer) }
                Parallel.forEach(indices.count, workers: shares) { range, w in
                    let y = workspaces[w].floats(c, slot: 1)
                    let dW: UnsafeMutablePointer<Float>? = withGradient ? partials.zeroed(w) : nil
                    var loss = 0.0
                    for s in range {
                        let position = indices[s]
                        y.update(repeating: 0, count: c)
                        forEachTap(position, x) { k, pixel in Self.multiplyAdd(y, wp + k * c, pixel, c) }
                        loss += lossEpilogueChannels(y, t + position * c, c, bias: biases, activation,
                                                     slopes: slopePointer, scale: scale, gradient: withGradient)
                        if let dW {
                            forEachTap(position, x) { k, pixel in Self.multiplyAdd(dW + k * c, UnsafePointer(y), pixel, c) }
                        }
                    }
                    losses.add(w, loss)
                }
                if let gradient {
                    let sum = partials.buffer(0)
                    partials.sum(shares, into: sum)
                    for ch in 0..<c {
                        for k in 0..<kk { gradient[ch * kk + k] = sum[k * c + ch] }
                    }
                }
            }
        }
        return losses.total
    }

    /// Calls `body(k, pixel)` for each tap `k` of output position `position`
    /// (flat `img·P + p`) that falls inside the input, `pixel` its `C` channels.
    @inline(__always)
    private func forEachTap(_ position: Int, _ x: UnsafePointer<Float>, _ body: (Int, UnsafePointer<Float>) -> Void) {
        let g = geometry, c = channels
        let img = position / g.outCount, pix = position - img * g.outCount
        let oy = pix / g.outW, ox = pix - oy * g.outW
        let image = x + img * g.inCount * c
        for ky in 0..<g.kH {
            let iy = oy * g.strideH - g.padTop + ky * g.dilationH
            guard iy >= 0 && iy < g.inH else { continue }
            for kx in 0..<g.kW {
                let ix = ox * g.strideW - g.padLeft + kx * g.dilationW
                guard ix >= 0 && ix < g.inW else { continue }
                body(ky * g.kW + kx, image + (iy * g.inW + ix) * c)
            }
        }
    }

    /// `acc[0..<n] += a[0..<n] · b[0..<n]`.
    @inline(__always)
    private static func multiplyAdd(_ acc: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                                    _ n: Int) {
        var j = 0
        while j + 8 <= n {
            acc.store8(acc.load8(j) + a.load8(j) * b.load8(j), j)
            j += 8
        }
        while j < n {
            acc[j] += a[j] * b[j]
            j += 1
        }
    }
}
