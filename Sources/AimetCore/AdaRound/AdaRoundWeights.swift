#if canImport(Glibc)
import Glibc
#endif

/// The learned rounding of one weight tensor: `V`, Adam's state, and, for the
/// current step, the soft weight `w~(V)` with the derivatives the update needs
/// (SPEC §6 steps 3–6; the formulas are `AdaRoundMath`'s):
///
///     chain     = ∂w~/∂V      = s · [0 ≤ floor(w/s) + h − o ≤ n] · ∂h/∂V
///     roundGrad = ∂Lround/∂V  = −2·reg·β·|2h − 1|^(β−1)·sign(2h − 1) · ∂h/∂V
///     ∂L/∂V     = ∂Lrec/∂w~ · chain + roundGrad
///
/// All buffers are allocated once; a step is one fused pass (Adam on `V`,
/// then the soft weight and derivatives of the new `V`), split over the
/// workers when the tensor is large.
final class AdaRoundWeights {
    /// A run of elements sharing one encoding.
    struct Run {
        var range: Range<Int>
        var scale: Float
        var offset: Float
    }

    let count: Int
    let numSteps: Float
    /// Runs per worker (contiguous, balanced by element count).
    let workerRuns: [[Run]]

    /// `floor(w / s) − o`: the grid level below `w` (may lie outside `[0, n]`
    /// for a weight outside the encoding's range).
    let base: UnsafeMutableBufferPointer<Float>
    let v: UnsafeMutableBufferPointer<Float>
    let adamM: UnsafeMutableBufferPointer<Float>
    let adamV: UnsafeMutableBufferPointer<Float>
    /// `w~(V)` of the current step.
    let soft: UnsafeMutableBufferPointer<Float>
    let chain: UnsafeMutableBufferPointer<Float>
    let roundGrad: UnsafeMutableBufferPointer<Float>
    /// `∂Lrec/∂w~`, written by the reconstruction engine each step.
    let gradient: UnsafeMutableBufferPointer<Float>

    /// - Parameters:
    ///   - weight: the float weights (the engine's layout).
    ///   - encodings: one encoding, or one per channel.
    ///   - channelOf: the channel of each run of elements: `(inner, channels)`
    ///     such that element `e` belongs to channel `(e / inner) % channels`.
    init(weight: [Float], encodings: [Encoding], channelLayout: (inner: Int, channels: Int), workers: Int) {
        count = weight.count
        numSteps = Float(encodings[0].numSteps)
        func buffer() -> UnsafeMutableBufferPointer<Float> {
            let b = UnsafeMutableBufferPointer<Float>.allocate(capacity: max(weight.count, 1))
            b.initialize(repeating: 0)
            return b
        }
        base = buffer(); v = buffer(); adamM = buffer(); adamV = buffer()
        soft = buffer(); chain = buffer(); roundGrad = buffer(); gradient = buffer()

        // Runs of one encoding.
        var runs: [Run] = []
        if encodings.count == 1 {
            runs = [Run(range: 0..<count, scale: encodings[0].scale, offset: Float(encodings[0].offset))]
        } else {
            let inner = channelLayout.inner, channels = channelLayout.channels
            var start = 0
            while start < count {
                let c = (start / inner) % channels
                let end = min(count, start + inner)
                if let last = runs.last, last.range.upperBound == start, last.scale == encodings[c].scale,
                   last.offset == Float(encodings[c].offset) {
                    runs[runs.count - 1].range = last.range.lowerBound..<end
                } else {
                    runs.append(Run(range: start..<end, scale: encodings[c].scale, offset: Float(encodings[c].offset)))
                }
                start = end
            }
        }
        // Split the runs into contiguous, equal shares for the workers (small tensors: one).
        let shares = count >= 1 << 15 ? max(1, workers) : 1
        var split: [[Run]] = Array(repeating: [], count: shares)
        for run in runs {
            for w in 0..<shares {
                let lo = max(run.range.lowerBound, count * w / shares)
                let hi = min(run.range.upperBound, count * (w + 1) / shares)
                if lo < hi { split[w].append(Run(range: lo..<hi, scale: run.scale, offset: run.offset)) }
            }
        }
        workerRuns = split.filter { !$0.isEmpty }

        // V such that h(V) = rest: w~ = w inside the grid.
        for run in runs {
            for e in run.range {
                let q = weight[e] / run.scale
                let f = q.rounded(.down)
                base[e] = f - run.offset
                v[e] = AdaRoundMath.initialV(rest: q - f)
            }
        }
    }

    deinit {
        for b in [base, v, adamM, adamV, soft, chain, roundGrad, gradient] { b.deallocate() }
    }

    // MARK: - Steps

    /// The rounding loss setting of a step: nil during the warm start.
    struct Rounding {
        var beta: Float
        var regParam: Float
    }

    /// Computes the soft weight and derivatives of the current `V` (before the first step).
    func prepare(_ rounding: Rounding?) {
        forEachRun { run in prepare(run, rounding) }
    }

    /// One Adam step on `V` with `∂L/∂V = gradient · chain + roundGrad`; with
    /// `prepareNext`, then the soft weight and derivatives of the new `V` for
    /// a step with rounding setting `next`.
    func step(t: Int, adam: AdamSchedule, next: Rounding?, prepareNext: Bool) {
        let (stepSize, root) = adam.corrections(step: t)
        let (a1, b2, a2, eps) = adam.scalars
        let g = gradient.baseAddress!, ch = chain.baseAddress!, rg = roundGrad.baseAddress!
        let m = adamM.baseAddress!, s = adamV.baseAddress!, vv = v.baseAddress!
        forEachRun { run in
            // In blocks, so the prepare pass finds the block in L1.
            var lo = run.range.lowerBound
            while lo < run.range.upperBound {
                let hi = min(run.range.upperBound, lo + 2048)
                var e = lo
                while e < hi {
                    let n = hi - e
                    let grad = loadLanes(g + e, n) * loadLanes(ch + e, n) + loadLanes(rg + e, n)
                    let m0 = loadLanes(m + e, n)
                    let mm = m0 + a1 * (grad - m0)
                    let ss = loadLanes(s + e, n) * b2 + a2 * grad * grad
                    storeLanes(mm, m + e, n)
                    storeLanes(ss, s + e, n)
                    storeLanes(loadLanes(vv + e, n) - stepSize * (mm / (sqrt8(ss) / root + eps)), vv + e, n)
                    e += 8
                }
                if prepareNext { prepare(Run(range: lo..<hi, scale: run.scale, offset: run.offset), next) }
                lo = hi
            }
        }
    }

    /// Soft weight, `chain` and `roundGrad` of the elements of `run`, 8 at a time.
    private func prepare(_ run: Run, _ rounding: Rounding?) {
        let zeta = AdaRoundMath.zeta, gamma = AdaRoundMath.gamma
        let top = Lanes(repeating: numSteps), zero = Lanes()
        let scale = run.scale, offset = run.offset
        let vv = v.baseAddress!, b = base.baseAddress!, sw = soft.baseAddress!, ch = chain.baseAddress!
        let rg = roundGrad.baseAddress!
        let beta = rounding?.beta ?? 0, k = -2 * (rounding?.regParam ?? 0) * beta
        var e = run.range.lowerBound
        while e < run.range.upperBound {
            let n = run.range.upperBound - e
            let sig = 1 / (1 + exp8(-loadLanes(vv + e, n)))
            let raw = sig * (zeta - gamma) + gamma
            let h = clamp(raw, 0, 1)
            let dh = ((zeta - gamma) * sig * (1 - sig)).replacing(with: 0, where: (raw .< 0) .| (raw .> 1))
            let t = loadLanes(b + e, n) + h
            storeLanes((clamp(t, 0, numSteps) + offset) * scale, sw + e, n)
            storeLanes((scale * dh).replacing(with: 0, where: (t .< 0) .| (t .> top)), ch + e, n)
            if rounding != nil {
                let u = 2 * h - 1
                let negative = u .< 0
                let p = pow8(u.replacing(with: -u, where: negative), beta - 1)
                storeLanes(k * p.replacing(with: -p, where: negative) * dh, rg + e, n)
            } else {
                storeLanes(zero, rg + e, n)
            }
            e += 8
        }
    }

    private func forEachRun(_ body: (Run) -> Void) {
        if workerRuns.count == 1 {
            for run in workerRuns[0] { body(run) }
            return
        }
        let runs = workerRuns
        Parallel.forEach(runs.count, workers: runs.count) { range, _ in
            for w in range { for run in runs[w] { body(run) } }
        }
    }

    // MARK: - Results

    /// The hard-rounded, dequantized weights: `(clamp(floor(w/s) + [V ≥ 0] − o, 0, n) + o) · s`.
    func hardWeights() -> [Float] {
        var out = [Float](repeating: 0, count: count)
        for runs in workerRuns {
            for run in runs {
                for e in run.range {
                    let q = Swift.min(Swift.max(base[e] + (v[e] >= 0 ? 1 : 0), 0), numSteps)
                    out[e] = (q + run.offset) * run.scale
                }
            }
        }
        return out
    }

    /// The soft weights of the current `V` (`prepare` first).
    func softWeights() -> [Float] { Array(soft) }
}
