/// The learned rounding of one weight tensor: `V`, Adam's state, and, for the
/// current step, the soft weight `w~(V)` with the derivatives the update needs
/// (SPEC §6 steps 3–6; the formulas are `AdaRoundMath`'s):
///
///     chain     = ∂w~/∂V      = s · [0 ≤ floor(w/s) + h − o ≤ n] · ∂h/∂V
///     roundGrad = ∂Lround/∂V  = −2·reg·β·|2h − 1|^(β−1)·sign(2h − 1) · ∂h/∂V
///     ∂L/∂V     = ∂Lrec/∂w~ · chain + roundGrad
///
/// All buffers are allocated once. A step runs block by block (2048
/// elements, in L1): Adam on `V`, then the soft weight and derivatives of the
/// new `V`, each as a few plain loops LLVM vectorizes; large tensors are
/// split over the workers.
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
    ///   - channelLayout: `(inner, channels)` such that element `e` belongs to
    ///     channel `(e / inner) % channels` (for per-channel encodings).
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

    /// One Adam step on `V` with `∂L/∂V = gradient · chain + roundGrad` (left
    /// in `chain` until the next `prepare`); with `prepareNext`, then the soft
    /// weight and derivatives of the new `V` for a step with rounding setting `next`.
    ///
    /// Each loop touches at most three arrays, so that LLVM can check them
    /// apart and vectorizes it (with more it falls back to scalar code).
    func step(t: Int, adam: AdamSchedule, next: Rounding?, prepareNext: Bool) {
        let (stepSize, root) = adam.corrections(step: t)
        let (a1, b2, a2, eps) = adam.scalars
        let g = gradient.baseAddress!, ch = chain.baseAddress!, rg = roundGrad.baseAddress!
        let m = adamM.baseAddress!, s = adamV.baseAddress!, vv = v.baseAddress!
        forEachRun { run in
            var lo = run.range.lowerBound
            while lo < run.range.upperBound {
                let hi = min(run.range.upperBound, lo + 2048)
                for e in lo..<hi { ch[e] = g[e] * ch[e] + rg[e] }          // ∂L/∂V
                for e in lo..<hi { m[e] = m[e] + a1 * (ch[e] - m[e]) }
                for e in lo..<hi {
                    let grad = ch[e]
                    s[e] = s[e] * b2 + a2 * grad * grad
                }
                for e in lo..<hi { vv[e] = vv[e] - stepSize * (m[e] / (fastSqrt(s[e]) / root + eps)) }
                if prepareNext { prepare(Run(range: lo..<hi, scale: run.scale, offset: run.offset), next) }
                lo = hi
            }
        }
    }

    /// Soft weight, `chain` (`∂w~/∂V`: `dh/dV` where the clamps pass) and
    /// `roundGrad` (`∂(reg·Σ(1 − |2h − 1|^β))/∂V`) of the elements of `run`
    /// (a block that stays in L1), in passes over at most three arrays with
    /// unconditional loads: the loops LLVM vectorizes.
    private func prepare(_ run: Run, _ rounding: Rounding?) {
        let zeta = AdaRoundMath.zeta, gamma = AdaRoundMath.gamma, n = numSteps
        let scale = run.scale, offset = run.offset
        let vv = v.baseAddress!, b = base.baseAddress!, sw = soft.baseAddress!, ch = chain.baseAddress!
        let rg = roundGrad.baseAddress!
        let range = run.range
        // σ(V) → soft; then h → soft, dh/dV → chain.
        for e in range { sw[e] = 1 / (1 + fastExp(-vv[e])) }
        for e in range {
            let sig = sw[e]
            let raw = sig * (zeta - gamma) + gamma
            let h = Swift.min(Swift.max(raw, 0), 1)
            ch[e] = raw == h ? (zeta - gamma) * sig * (1 - sig) : 0
            sw[e] = h
        }
        if let rounding {
            let beta = rounding.beta, k = -2 * rounding.regParam * rounding.beta
            for e in range {
                let u = 2 * sw[e] - 1, dh = ch[e]
                let p = fastPow(abs(u), beta - 1)
                rg[e] = k * (u < 0 ? -p : p) * dh
            }
        } else {
            for e in range { rg[e] = 0 }
        }
        // w~ = (clamp(floor(w/s) + h − o, 0, n) + o)·s; chain = s·dh/dV where the clamp passes.
        for e in range {
            let t = b[e] + sw[e], dh = ch[e]
            let tc = Swift.min(Swift.max(t, 0), n)
            sw[e] = (tc + offset) * scale
            ch[e] = t == tc ? scale * dh : 0
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
