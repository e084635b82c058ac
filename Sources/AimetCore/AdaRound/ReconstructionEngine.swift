/// The per-step work of AdaRound for one layer: the layer's output with a
/// given weight on some cached samples, the reconstruction loss against the
/// cached float targets (after the layer's activation), and the loss's
/// gradient with respect to the weight.
///
/// Every engine holds its cached data and preallocated scratch memory, so a
/// step allocates nothing; the work is split over the worker threads, with
/// single-threaded GEMMs (the caller runs inside `BLAS.singleThreaded`).
protocol ReconstructionEngine: AnyObject {
    /// Cached samples (images, or rows of a linear layer).
    var sampleCount: Int { get }
    /// Loss terms (output positions) per sample.
    var positionsPerSample: Int { get }
    /// Whether `run` takes flat output positions `sample · positionsPerSample + p`
    /// (the position-sampling estimator) rather than sample indices.
    var takesPositions: Bool { get }

    /// `Σ ‖act(out) − target‖²` over the given samples (or positions) and their
    /// positions, the norm over channels, for weight `weight` (the engine's
    /// layout). With `gradient`, instead writes `scale · ∂Σ/∂weight` there and
    /// returns 0.
    func run(_ indices: UnsafeBufferPointer<Int>, weight: UnsafePointer<Float>,
             gradient: UnsafeMutablePointer<Float>?, scale: Float) -> Double
}

/// An engine whose workers each finish a contiguous part of the gradient
/// (element ranges of the engine's weight layout, together covering it once
/// per `run` with a gradient): `rowsDone(range)` is called on the worker's
/// thread as soon as its part is written and no worker reads those weight
/// elements again in this run — so the AdaRound step on them can run there,
/// while the data is in that core's cache, without another hand-off.
protocol GradientRowsEngine: ReconstructionEngine {
    func run(_ indices: UnsafeBufferPointer<Int>, weight: UnsafePointer<Float>, gradient: UnsafeMutablePointer<Float>?,
             scale: Float, rowsDone: ((Range<Int>) -> Void)?) -> Double
}

/// Per-worker gradient buffers, summed into the caller's gradient at the end of a step.
final class GradientPartials {
    let count: Int
    private let buffers: [UnsafeMutableBufferPointer<Float>]

    init(workers: Int, count: Int) {
        self.count = count
        buffers = (0..<max(workers, 1)).map { _ in
            let b = UnsafeMutableBufferPointer<Float>.allocate(capacity: max(count, 1))
            b.initialize(repeating: 0)
            return b
        }
    }

    deinit { for b in buffers { b.deallocate() } }

    /// Worker `w`'s buffer, zeroed.
    func zeroed(_ w: Int) -> UnsafeMutablePointer<Float> {
        let b = buffers[w].baseAddress!
        b.update(repeating: 0, count: count)
        return b
    }

    func buffer(_ w: Int) -> UnsafeMutablePointer<Float> { buffers[w].baseAddress! }

    /// `out = Σ` of the first `workers` buffers (`out` may be buffer 0).
    func sum(_ workers: Int, into out: UnsafeMutablePointer<Float>) {
        if out != buffers[0].baseAddress! { out.update(from: buffers[0].baseAddress!, count: count) }
        for w in 1..<max(workers, 1) {
            let b = buffers[w].baseAddress!
            for i in 0..<count { out[i] += b[i] }
        }
    }
}

/// The per-worker losses of a step (each worker writes its own slot).
final class LossPartials {
    private let values: UnsafeMutableBufferPointer<Double>
    init(_ workers: Int) {
        values = .allocate(capacity: max(workers, 1))
        values.initialize(repeating: 0)
    }
    deinit { values.deallocate() }
    func reset() { values.update(repeating: 0) }
    func add(_ w: Int, _ x: Double) { values[w] += x }
    var total: Double { values.reduce(0, +) }
}

/// A float buffer allocated once (per-channel constants the workers read).
final class FloatBuffer {
    let pointer: UnsafeMutablePointer<Float>
    let count: Int
    init(_ values: [Float]) {
        count = values.count
        pointer = .allocate(capacity: max(values.count, 1))
        values.withUnsafeBufferPointer { pointer.initialize(from: $0.baseAddress!, count: values.count) }
    }
    deinit { pointer.deallocate() }

    subscript(i: Int) -> Float { pointer[i] }

    func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try body(UnsafeBufferPointer(start: pointer, count: count))
    }
}

/// What every engine keeps, set up once: the cached samples (inputs in the
/// engine's layout, targets after the activation), the bias and the
/// activation (with PReLU's slopes spread to one per output channel), and the
/// per-worker scratch memory and losses. The engines subclass it.
class EngineCore {
    let sampleCount: Int
    let inputs: [Float]
    let targets: [Float]
    /// One value per output channel.
    let bias: FloatBuffer
    /// PReLU's slope per output channel; nil for any other activation.
    let slopes: FloatBuffer?
    let activation: AdaRoundActivation
    let workers: Int
    let workspaces: [Workspace]
    let losses: LossPartials

    init(samples: Int, inputs: [Float], targets: [Float], bias: [Float], activation: AdaRoundActivation, workers: Int) {
        sampleCount = samples
        self.inputs = inputs
        self.targets = targets
        self.bias = FloatBuffer(bias)
        if case .prelu(let s) = activation {
            slopes = FloatBuffer(s.count == 1 ? Array(repeating: s[0], count: bias.count) : s)
        } else {
            slopes = nil
        }
        self.activation = activation
        self.workers = max(1, workers)
        workspaces = (0..<self.workers).map { _ in Workspace() }
        losses = LossPartials(self.workers)
    }

    /// Starts a step: resets the losses and runs `body` on the cached inputs and targets.
    func withData<R>(_ body: (UnsafePointer<Float>, UnsafePointer<Float>) -> R) -> R {
        losses.reset()
        return inputs.withUnsafeBufferPointer { x in
            targets.withUnsafeBufferPointer { t in body(x.baseAddress!, t.baseAddress!) }
        }
    }
}

/// `dst[0..<n] = src[0..<n]`; short runs with vector moves (a `memmove` call
/// costs more than copying a few dozen floats).
@inline(__always)
func copyFloats(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, _ n: Int) {
    if n >= 256 {
        dst.update(from: src, count: n)
        return
    }
    var i = 0
    while i + 8 <= n { dst.store8(src.load8(i), i); i += 8 }
    while i < n { dst[i] = src[i]; i += 1 }
}

/// NCHW → NHWC, image by image: `dst[(n·HW + p)·C + c] = src[(n·C + c)·HW + p]`.
func channelsLast(_ src: [Float], images: Int, channels: Int, plane: Int) -> [Float] {
    var dst = [Float](repeating: 0, count: src.count)
    src.withUnsafeBufferPointer { s in
        dst.withUnsafeMutableBufferPointer { d in
            for n in 0..<images {
                let base = n * channels * plane
                for c in 0..<channels {
                    let from = base + c * plane
                    for p in 0..<plane { d[base + p * channels + c] = s[from + p] }
                }
            }
        }
    }
    return dst
}

// MARK: - Convolution as GEMM, whole images

/// A convolution's shape and per-worker weight-gradient buffers (the two conv engines).
class ConvEngineCore: EngineCore {
    let geometry: ConvGeometry
    let groups: Int, inPerGroup: Int, outChannels: Int
    var positionsPerSample: Int { geometry.outCount }
    let partials: GradientPartials

    init(geometry: ConvGeometry, groups: Int, inPerGroup: Int, outChannels: Int, samples: Int,
         inputs: [Float], targets: [Float], bias: [Float], activation: AdaRoundActivation, workers: Int) {
        self.geometry = geometry
        self.groups = groups
        self.inPerGroup = inPerGroup
        self.outChannels = outChannels
        partials = GradientPartials(workers: max(1, workers), count: outChannels * inPerGroup * geometry.kernelCount)
        super.init(samples: samples, inputs: inputs, targets: targets, bias: bias, activation: activation, workers: workers)
    }
}

/// A convolution (any groups, not depthwise) on whole images, data NCHW.
///
/// The mini-batch's output pixels form columns `b·P + p` (P pixels per image);
/// each worker takes a contiguous share and runs it in tiles of columns (a tile
/// may span images), per group:
///
///     cols  = im2col(x)                           [K, T]   (K = C/g·kH·kW)
///     Y     = W_g · cols                          [M/g, T]
///     dY    = 2·scale·(act(Y + b) − target)·act'(Y + b)
///     dW_g += dY · colsᵀ                          [M/g, K]
///
/// so the forward and the weight gradient are two GEMMs over data that stays
/// in cache. A pointwise conv (1×1, stride 1, no padding) reads a tile inside
/// one image straight from the input.
final class ConvGEMMEngine: ConvEngineCore, ReconstructionEngine {
    var takesPositions: Bool { false }
    private let tile: Int

    /// `inputs`: `[N, C, inH, inW]`; `targets`: `[N, M, outH, outW]` after the activation.
    override init(geometry: ConvGeometry, groups: Int, inPerGroup: Int, outChannels: Int, samples: Int,
         inputs: [Float], targets: [Float], bias: [Float], activation: AdaRoundActivation, workers: Int) {
        // Columns and results of a tile in about 512 KB (L2), a multiple of 16.
        tile = max(16, (1 << 17) / (inPerGroup * geometry.kernelCount + outChannels / groups) / 16 * 16)
        super.init(geometry: geometry, groups: groups, inPerGroup: inPerGroup, outChannels: outChannels, samples: samples,
                   inputs: inputs, targets: targets, bias: bias, activation: activation, workers: workers)
    }

    func run(_ indices: UnsafeBufferPointer<Int>, weight: UnsafePointer<Float>,
             gradient: UnsafeMutablePointer<Float>?, scale: Float) -> Double {
        let g = geometry, p = g.outCount, hw = g.inCount
        let c = inPerGroup * groups, m = outChannels, mg = m / groups, kg = inPerGroup * g.kernelCount
        let total = indices.count * p
        let shares = min(workers, max(1, total / 256))
        let pointwise = g.isPointwise
        let withGradient = gradient != nil
        withData { x, t in
            bias.withUnsafeBufferPointer { biasb in
                Parallel.forEach(total, workers: shares) { range, w in
                    let ws = workspaces[w]
                    let dW: UnsafeMutablePointer<Float>? = withGradient ? partials.zeroed(w) : nil
                    var loss = 0.0
                    var c0 = range.lowerBound
                    while c0 < range.upperBound {
                        let c1 = min(range.upperBound, c0 + tile), width = c1 - c0
                        let first = c0 / p
                        let single = (c1 - 1) / p == first
                        for grp in 0..<groups {
                            let cols: UnsafePointer<Float>, ldb: Int
                            if pointwise && single {
                                cols = x + (indices[first] * c + grp * inPerGroup) * hw + (c0 - first * p)
                                ldb = hw
                            } else {
                                let buffer = ws.floats(kg * width, slot: 0)
                                var col = c0
                                while col < c1 {
                                    let b = col / p, p0 = col - b * p, p1 = min(p, p0 + (c1 - col))
                                    let xg = x + (indices[b] * c + grp * inPerGroup) * hw
                                    if pointwise {
                                        // Columns are input pixels: one run per channel.
                                        for r in 0..<inPerGroup {
                                            copyFloats(buffer + r * width + (col - c0), xg + r * hw + p0, p1 - p0)
                                        }
                                    } else {
                                        Im2col.pack(xg, channels: inPerGroup, g, pixels: p0..<p1, into: buffer + (col - c0),
                                                    rowStride: width)
                                    }
                                    col += p1 - p0
                                }
                                cols = UnsafePointer(buffer)
                                ldb = width
                            }
                            let y = ws.floats(mg * width, slot: 1)
                            BLAS.sgemm(m: mg, n: width, k: kg, a: weight + grp * mg * kg, lda: kg, b: cols, ldb: ldb,
                                       c: y, ldc: width)
                            for mm in 0..<mg {
                                let o = grp * mg + mm
                                let act = activation.forChannel(o)
                                var col = c0
                                while col < c1 {
                                    let b = col / p, p0 = col - b * p, n = min(p - p0, c1 - col)
                                    loss += lossEpilogue(y + mm * width + (col - c0), t + (indices[b] * m + o) * p + p0, n,
                                                         bias: biasb[o], act, scale: scale, gradient: withGradient)
                                    col += n
                                }
                            }
                            if let dW {
                                BLAS.sgemm(transB: true, m: mg, n: kg, k: width, a: y, lda: width, b: cols, ldb: ldb,
                                           beta: 1, c: dW + grp * mg * kg, ldc: kg)
                            }
                        }
                        c0 = c1
                    }
                    losses.add(w, loss)
                }
                if let gradient { partials.sum(shares, into: gradient) }
            }
        }
        return losses.total
    }
}

// MARK: - Convolution as GEMM, sampled positions

/// A convolution (any groups) on sampled output positions, data NHWC
/// (channels last, so one position's receptive field is a few contiguous runs).
///
/// Each worker gathers, per tile of samples and group, the rows
/// `colsᵀ[s] = x[img_s][window of p_s]` in `(ky, kx, c)` order, then
///
///     Y  = colsᵀ · W'_gᵀ        [T, M/g]     (W' = W permuted to [M, kH, kW, C/g])
///     dW'_g += dYᵀ · colsᵀ       [M/g, K]
///
/// and the gradient is permuted back to the weight's layout.
final class ConvPositionsEngine: ConvEngineCore, ReconstructionEngine {
    var takesPositions: Bool { true }
    // inputs [N, inH, inW, C], targets [N, P, M]
    private var permuted: [Float]
    private let tile: Int

    /// `inputs` / `targets` as for `ConvGEMMEngine` (NCHW); they are stored channels-last.
    override init(geometry: ConvGeometry, groups: Int, inPerGroup: Int, outChannels: Int, samples: Int,
         inputs: [Float], targets: [Float], bias: [Float], activation: AdaRoundActivation, workers: Int) {
        let kg = inPerGroup * geometry.kernelCount, mg = outChannels / groups
        permuted = [Float](repeating: 0, count: outChannels * kg)
        tile = max(16, min(512, (1 << 17) / (kg + mg) / 16 * 16))
        super.init(geometry: geometry, groups: groups, inPerGroup: inPerGroup, outChannels: outChannels, samples: samples,
                   inputs: channelsLast(inputs, images: samples, channels: inPerGroup * groups, plane: geometry.inCount),
                   targets: channelsLast(targets, images: samples, channels: outChannels, plane: geometry.outCount),
                   bias: bias, activation: activation, workers: workers)
    }

    func run(_ indices: UnsafeBufferPointer<Int>, weight: UnsafePointer<Float>,
             gradient: UnsafeMutablePointer<Float>?, scale: Float) -> Double {
        let g = geometry, kk = g.kernelCount, cg = inPerGroup
        let m = outChannels, mg = m / groups, kg = cg * kk
        // W[o][c][k] → W'[o][k][c]
        permuted.withUnsafeMutableBufferPointer { wp in
            for o in 0..<m {
                for ci in 0..<cg {
                    for k in 0..<kk { wp[(o * kk + k) * cg + ci] = weight[(o * cg + ci) * kk + k] }
                }
            }
        }
        let total = indices.count
        let shares = min(workers, max(1, total / 64))
        let withGradient = gradient != nil
        withData { x, t in
            bias.withUnsafeBufferPointer { biasb in
                permuted.withUnsafeBufferPointer { wpb in
                    let slopePointer = slopes?.pointer
                    let wp = wpb.baseAddress!
                    Parallel.forEach(total, workers: shares) { range, w in
                        let ws = workspaces[w]
                        let dW: UnsafeMutablePointer<Float>? = withGradient ? partials.zeroed(w) : nil
                        var loss = 0.0
                        var s0 = range.lowerBound
                        while s0 < range.upperBound {
                            let s1 = min(range.upperBound, s0 + tile), width = s1 - s0
                            for grp in 0..<groups {
                                let cols = ws.floats(width * kg, slot: 0)
                                for s in s0..<s1 {
                                    gather(x, position: indices[s], group: grp, into: cols + (s - s0) * kg)
                                }
                                let y = ws.floats(width * mg, slot: 1)
                                BLAS.sgemm(transB: true, m: width, n: mg, k: kg, a: cols, lda: kg, b: wp + grp * mg * kg,
                                           ldb: kg, c: y, ldc: mg)
                                for s in s0..<s1 {
                                    loss += lossEpilogueChannels(y + (s - s0) * mg, t + indices[s] * m + grp * mg, mg,
                                                                 bias: biasb.baseAddress! + grp * mg, activation,
                                                                 slopes: slopePointer.map { $0 + grp * mg },
                                                                 scale: scale, gradient: withGradient)
                                }
                                if let dW {
                                    BLAS.sgemm(transA: true, m: mg, n: kg, k: width, a: y, lda: mg, b: cols, ldb: kg,
                                               beta: 1, c: dW + grp * mg * kg, ldc: kg)
                                }
                            }
                            s0 = s1
                        }
                        losses.add(w, loss)
                    }
                    if let gradient {
                        let sum = partials.buffer(0)
                        partials.sum(shares, into: sum)
                        // W'[o][k][c] → W[o][c][k]
                        for o in 0..<m {
                            for ci in 0..<cg {
                                for k in 0..<kk { gradient[(o * cg + ci) * kk + k] = sum[(o * kk + k) * cg + ci] }
                            }
                        }
                    }
                }
            }
        }
        return losses.total
    }

    /// The receptive field of output position `position` (flat `img·P + p`) for
    /// group `group`, in `(ky, kx, c)` order, zeros in the padding.
    @inline(__always)
    private func gather(_ x: UnsafePointer<Float>, position: Int, group: Int, into dst: UnsafeMutablePointer<Float>) {
        let g = geometry, cg = inPerGroup, c = cg * groups
        let img = position / g.outCount, pix = position - img * g.outCount
        let oy = pix / g.outW, ox = pix - oy * g.outW
        let image = x + img * g.inCount * c + group * cg
        let ix0 = ox * g.strideW - g.padLeft
        for ky in 0..<g.kH {
            let iy = oy * g.strideH - g.padTop + ky * g.dilationH
            let row = dst + ky * g.kW * cg
            guard iy >= 0 && iy < g.inH else {
                row.update(repeating: 0, count: g.kW * cg)
                continue
            }
            let src = image + iy * g.inW * c
            if groups == 1 && g.dilationW == 1 {
                // One run of kx: x[iy][ix0 ..< ix0 + kW][:] is contiguous.
                let lo = max(0, -ix0), hi = min(g.kW, g.inW - ix0)
                if lo >= hi {
                    row.update(repeating: 0, count: g.kW * cg)
                    continue
                }
                if lo > 0 { row.update(repeating: 0, count: lo * cg) }
                (row + lo * cg).update(from: src + (ix0 + lo) * c, count: (hi - lo) * cg)
                if hi < g.kW { (row + hi * cg).update(repeating: 0, count: (g.kW - hi) * cg) }
            } else {
                for kx in 0..<g.kW {
                    let ix = ix0 + kx * g.dilationW
                    if ix >= 0 && ix < g.inW {
                        (row + kx * cg).update(from: src + ix * c, count: cg)
                    } else {
                        (row + kx * cg).update(repeating: 0, count: cg)
                    }
                }
            }
        }
    }
}
