import CKernels

/// The learned rounding of one weight tensor: `V`, Adam's state, and, for the
/// current step, the soft weight `w~(V)` with the derivatives the update needs
/// (the formulas are `AdaRoundMath`'s):
///
///     chain     = ∂w~/∂V      = s · [0 ≤ floor(w/s) + h − o ≤ n] · ∂h/∂V
///     roundGrad = ∂Lround/∂V  = −2·reg·β·|2h − 1|^(β−1)·sign(2h − 1) · ∂h/∂V
///     ∂L/∂V     = ∂Lrec/∂w~ · chain + roundGrad
///
/// All buffers are allocated once. A step is one fused pass over the weights,
/// 16 lanes at a time (`aimetk_adaround_sweep`, AVX-512 / AVX2 / SSE2 as the
/// processor allows): Adam on `V`, then the soft weight and
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

    /// The instruction set of the sweeps (the best this processor has; tests
    /// run the others, which give the same results bit for bit).
    var isa: aimetk_isa = aimetk_best_isa()

    /// Whether `roundGrad` holds a rounding-loss gradient; while false it is
    /// all zeros and the step does not read it (the warm start).
    private(set) var roundGradActive = false

    /// Computes the soft weight and derivatives of the current `V` (before the first step).
    func prepare(_ rounding: Rounding?) {
        var flags = UInt32(AIMETK_PREPARE)
        if rounding != nil { flags |= UInt32(AIMETK_ROUND) } else if roundGradActive { flags |= UInt32(AIMETK_ZERO_ROUND_GRAD) }
        forEachRun { run in sweep(run, kernel(run, adam: nil, rounding), flags) }
        roundGradActive = rounding != nil
    }

    /// One Adam step on `V` with `∂L/∂V = gradient · chain + roundGrad`; with
    /// `prepareNext`, then the soft weight and derivatives of the new `V` for
    /// a step with rounding setting `next`.
    ///
    /// One pass over the weights (each worker its share), 16 lanes at a time:
    /// the gradient, Adam, then the rectified sigmoid of the new `V`, the soft
    /// weight, `chain` and (past the warm start only) `roundGrad`, without
    /// going through memory in between.
    func step(t: Int, adam: AdamSchedule, next: Rounding?, prepareNext: Bool) {
        let plan = stepPlan(t: t, adam: adam, next: next, prepareNext: prepareNext)
        forEachRun { run in sweep(run, kernel(run, adam: plan.adam, plan.next), plan.flags) }
        finish(plan)
    }

    /// A step taken in pieces, as the gradient becomes ready (`stepPlan`, then
    /// `step(_:elements:)` on every element once, from any threads, then `finish`).
    struct StepPlan {
        let flags: UInt32
        let adam: (Float, Float, Float, Float, Float, Float)
        let next: Rounding?
    }

    func stepPlan(t: Int, adam: AdamSchedule, next: Rounding?, prepareNext: Bool) -> StepPlan {
        let (stepSize, root) = adam.corrections(step: t)
        let (a1, b2, a2, eps) = adam.scalars
        var flags = UInt32(AIMETK_UPDATE)
        if roundGradActive { flags |= UInt32(AIMETK_READ_ROUND_GRAD) }
        if prepareNext {
            flags |= UInt32(AIMETK_PREPARE)
            if next != nil { flags |= UInt32(AIMETK_ROUND) } else if roundGradActive { flags |= UInt32(AIMETK_ZERO_ROUND_GRAD) }
        }
        return StepPlan(flags: flags, adam: (a1, b2, a2, eps, stepSize, root), next: prepareNext ? next : nil)
    }

    /// The step of `plan` on `elements`, on the calling thread.
    func step(_ plan: StepPlan, elements: Range<Int>) {
        for runs in workerRuns {
            for run in runs where run.range.overlaps(elements) {
                let part = run.range.clamped(to: elements)
                sweep(Run(range: part, scale: run.scale, offset: run.offset), kernel(run, adam: plan.adam, plan.next),
                      plan.flags)
            }
        }
    }

    func finish(_ plan: StepPlan) {
        if plan.flags & UInt32(AIMETK_PREPARE) != 0 { roundGradActive = plan.flags & UInt32(AIMETK_ROUND) != 0 }
    }

    private func kernel(_ run: Run, adam: (Float, Float, Float, Float, Float, Float)?, _ rounding: Rounding?) -> aimetk_adaround_kernel {
        let a = adam ?? (0, 0, 0, 1, 0, 1)
        return aimetk_adaround_kernel(g: gradient.baseAddress!, ch: chain.baseAddress!, rg: roundGrad.baseAddress!,
                                      m: adamM.baseAddress!, s: adamV.baseAddress!, v: v.baseAddress!,
                                      base: base.baseAddress!, soft: soft.baseAddress!,
                                      a1: a.0, b2: a.1, a2: a.2, eps: a.3, step_size: a.4, root: a.5,
                                      scale: run.scale, offset: run.offset, n: numSteps,
                                      pow_exponent: (rounding?.beta ?? 1) - 1,
                                      round_factor: rounding.map { -2 * $0.regParam * $0.beta } ?? 0)
    }

    /// The fused per-weight work of a step on the elements of one run (see
    /// `step`): `aimetk_adaround_sweep` (Sources/CKernels), the scalar
    /// formulas of `AdaRoundMath` on 16 lanes, bit for bit on every `isa`.
    private func sweep(_ run: Run, _ kernel: aimetk_adaround_kernel, _ flags: UInt32) {
        withUnsafePointer(to: kernel) {
            aimetk_adaround_sweep($0, run.range.lowerBound, run.range.upperBound, flags, isa)
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
