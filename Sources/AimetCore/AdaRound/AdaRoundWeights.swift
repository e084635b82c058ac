/// The learned rounding of one weight tensor: `V`, Adam's state, and, for the
/// current step, the soft weight `w~(V)` with the derivatives the update needs
/// (SPEC §6 steps 3–6; the formulas are `AdaRoundMath`'s):
///
///     chain     = ∂w~/∂V      = s · [0 ≤ floor(w/s) + h − o ≤ n] · ∂h/∂V
///     roundGrad = ∂Lround/∂V  = −2·reg·β·|2h − 1|^(β−1)·sign(2h − 1) · ∂h/∂V
///     ∂L/∂V     = ∂Lrec/∂w~ · chain + roundGrad
///
/// All buffers are allocated once. A step is one fused pass over the weights,
/// 16 lanes (four SSE registers, four independent chains) at a time (`Kernel`): Adam on `V`, then the soft weight and
/// derivatives of the new `V`; the rounding-loss gradient only past the warm
/// start. Large tensors are split over the workers.
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

    /// Whether `roundGrad` holds a rounding-loss gradient; while false it is
    /// all zeros and the step does not read it (the warm start).
    private(set) var roundGradActive = false

    /// Computes the soft weight and derivatives of the current `V` (before the first step).
    func prepare(_ rounding: Rounding?) {
        let active = roundGradActive
        forEachRun { run in
            var q = kernel(run, adam: nil, rounding)
            q.zeroRoundGrad = rounding == nil && active
            q.sweep(run.range, update: false, readRoundGrad: false, prepare: true, round: rounding != nil)
        }
        roundGradActive = rounding != nil
    }

    /// One Adam step on `V` with `∂L/∂V = gradient · chain + roundGrad`; with
    /// `prepareNext`, then the soft weight and derivatives of the new `V` for
    /// a step with rounding setting `next`.
    ///
    /// One pass over the weights (each worker its share), 16 lanes (four SSE registers, four independent chains) at a time:
    /// the gradient, Adam, then the rectified sigmoid of the new `V`, the soft
    /// weight, `chain` and (past the warm start only) `roundGrad`, without
    /// going through memory in between.
    func step(t: Int, adam: AdamSchedule, next: Rounding?, prepareNext: Bool) {
        let (stepSize, root) = adam.corrections(step: t)
        let (a1, b2, a2, eps) = adam.scalars
        let readRG = roundGradActive
        let round = prepareNext && next != nil
        let zero = prepareNext && next == nil && readRG
        forEachRun { run in
            var q = kernel(run, adam: (a1, b2, a2, eps, stepSize, root), next)
            q.zeroRoundGrad = zero
            // The three sweeps of a schedule, specialised; anything else runs the general one.
            if !zero && prepareNext && readRG && round {
                q.sweepRounding(run.range)
            } else if !zero && prepareNext && !readRG && !round {
                q.sweepWarmStart(run.range)
            } else if !zero && prepareNext && !readRG && round {
                q.sweepFirstRounding(run.range)
            } else {
                q.sweepGeneral(run.range, update: true, readRoundGrad: readRG, prepare: prepareNext, round: round)
            }
        }
        if prepareNext { roundGradActive = next != nil }
    }

    private func kernel(_ run: Run, adam: (Float, Float, Float, Float, Float, Float)?, _ rounding: Rounding?) -> Kernel {
        let a = adam ?? (0, 0, 0, 1, 0, 1)
        return Kernel(g: gradient.baseAddress!, ch: chain.baseAddress!, rg: roundGrad.baseAddress!, m: adamM.baseAddress!,
                      s: adamV.baseAddress!, v: v.baseAddress!, base: base.baseAddress!, soft: soft.baseAddress!,
                      a1: a.0, b2: a.1, a2: a.2, eps: a.3, stepSize: a.4, root: a.5,
                      scale: run.scale, offset: run.offset, n: numSteps,
                      powExponent: (rounding?.beta ?? 1) - 1,
                      roundFactor: rounding.map { -2 * $0.regParam * $0.beta } ?? 0,
                      zeroRoundGrad: false)
    }

    /// The fused per-weight work of a step on the elements of one run (see `step`).
    struct Kernel {
        let g, ch, rg, m, s, v, base, soft: UnsafeMutablePointer<Float>
        let a1, b2, a2, eps, stepSize, root: Float
        let scale, offset, n: Float
        /// `β − 1` and `−2·reg·β` of the rounding loss.
        let powExponent, roundFactor: Float
        var zeroRoundGrad: Bool

        @inline(__always)
        func sweep(_ range: Range<Int>, update: Bool, readRoundGrad: Bool, prepare: Bool, round: Bool) {
            var i = range.lowerBound
            while i + 16 <= range.upperBound {
                body(i, 16, update: update, readRoundGrad: readRoundGrad, prepare: prepare, round: round)
                i += 16
            }
            if i < range.upperBound {
                body(i, range.upperBound - i, update: update, readRoundGrad: readRoundGrad, prepare: prepare, round: round)
            }
        }

        // The specialised sweeps are functions of their own, so that the body
        // is inlined into each loop with its flags as constants.
        @inline(never)
        func sweepRounding(_ range: Range<Int>) {
            sweep(range, update: true, readRoundGrad: true, prepare: true, round: true)
        }

        @inline(never)
        func sweepWarmStart(_ range: Range<Int>) {
            sweep(range, update: true, readRoundGrad: false, prepare: true, round: false)
        }

        @inline(never)
        func sweepFirstRounding(_ range: Range<Int>) {
            sweep(range, update: true, readRoundGrad: false, prepare: true, round: true)
        }

        @inline(never)
        func sweepGeneral(_ range: Range<Int>, update: Bool, readRoundGrad: Bool, prepare: Bool, round: Bool) {
            sweep(range, update: update, readRoundGrad: readRoundGrad, prepare: prepare, round: round)
        }

        /// `count` lanes (16, or fewer at the end of a run: the missing lanes are
        /// zeros and not stored, the stored ones computed exactly as in a full vector).
        @inline(__always)
        private func load(_ p: UnsafeMutablePointer<Float>, _ i: Int, _ count: Int) -> Float16x {
            if count == 16 { return UnsafeRawPointer(p + i).loadUnaligned(as: Float16x.self) }
            var x = Float16x()
            for j in 0..<count { x[j] = p[i + j] }
            return x
        }

        @inline(__always)
        private func store(_ x: Float16x, _ p: UnsafeMutablePointer<Float>, _ i: Int, _ count: Int) {
            if count == 16 {
                UnsafeMutableRawPointer(p + i).storeBytes(of: x, as: Float16x.self)
                return
            }
            for j in 0..<count { p[i + j] = x[j] }
        }

        @inline(__always)
        private func body(_ i: Int, _ count: Int, update: Bool, readRoundGrad: Bool, prepare: Bool, round: Bool) {
            var vv = load(v, i, count)
            if update {
                // ∂L/∂V, then Adam (torch's float32 arithmetic, `AdamSchedule.step`).
                var grad = load(g, i, count) * load(ch, i, count)
                if readRoundGrad { grad = grad + load(rg, i, count) }
                var mm = load(m, i, count)
                mm = mm + a1 * (grad - mm)
                store(mm, m, i, count)
                var ss = load(s, i, count)
                ss = ss * b2 + a2 * grad * grad
                store(ss, s, i, count)
                vv = vv - stepSize * (mm / (vsqrt(ss) / root + eps))
                store(vv, v, i, count)
            }
            guard prepare else { return }
            // h = clamp(σ(V)·(ζ − γ) + γ, 0, 1); dh/dV where the clamp passes.
            let zeta = AdaRoundMath.zeta, gamma = AdaRoundMath.gamma
            let sig = 1 / (1 + fastExp(-vv))
            let raw = sig * (zeta - gamma) + gamma
            let h = clamp16(raw, 0, 1)
            let dh = vkeep((zeta - gamma) * sig * (1 - sig), vequal(raw, h))
            if round && !vanyNonzero(dh) {
                // Saturated (h ∈ {0, 1} in every lane, common late in the optimisation): no gradient.
                store(Float16x(), rg, i, count)
            } else if round {
                // ∂(reg·(1 − |2h − 1|^β))/∂V = −2·reg·β·|u|^(β−1)·sign(u)·dh/dV, u = 2h − 1.
                let u = 2 * h - 1
                let sign = vand(u, splat(bits: 0x8000_0000))
                let p = fastPow(vandNot(u, splat(bits: 0x8000_0000)), powExponent)
                store(roundFactor * vxor(p, sign) * dh, rg, i, count)
            } else if zeroRoundGrad {
                store(Float16x(), rg, i, count)
            }
            // w~ = (clamp(floor(w/s) + h − o, 0, n) + o)·s; chain = s·dh/dV where the clamp passes.
            let t = load(base, i, count) + h
            let tc = clamp16(t, 0, n)
            store((tc + offset) * scale, soft, i, count)
            store(vkeep(scale * dh, vequal(t, tc)), ch, i, count)
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
