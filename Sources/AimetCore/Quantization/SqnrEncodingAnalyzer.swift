/// TF-enhanced calibration (AIMET v2 `SqnrEncodingAnalyzer` with 512 bins):
/// a histogram of the observed values, then a grid search for the
/// (scale, offset) of least expected quantization noise, clipping noise
/// weighted 3×. Float32 arithmetic in AIMET's order of operations throughout,
/// so results match AIMET bit for bit (the error sums are accumulated in
/// float64, where AIMET sums float32; only exact near-ties could differ).
/// AIMET's class defaults to 2048 bins; its TF-enhanced quant scheme uses 512,
/// which AIMET's reference vectors confirm.
///
/// Several batches (AIMET `_HistogramObserver.merge_stats`): the first batch
/// sets the histogram over its own [min, max]. Each later batch widens the
/// range to the union of ranges; when it grew, every old bin is re-binned into
/// the new, wider bins: the part of the old bin up to the end of the new bin
/// holding its left edge stays there, `round(fraction · count)`, and the rest
/// goes to the next new bin. Then the batch itself is counted over the new range
/// and added. So the merged histogram is the one-shot histogram of all values
/// up to that proportional split; TF-enhanced on several batches is close to,
/// not always equal to, TF-enhanced on their concatenation (as in AIMET).
public struct SqnrEncodingAnalyzer: Sendable, Equatable {
    public static let defaultBinCount = 512
    static let asymmetricDeltaCandidates = 17
    static let symmetricDeltaCandidates = 101
    static let offsetCandidates = 21
    static let clippingWeight: Float = 3

    public let binCount: Int
    /// Count per bin (float32, as AIMET keeps them); empty before the first batch.
    public private(set) var counts: [Float] = []
    /// The least / greatest finite value observed (AIMET `_Histogram.min` / `max`).
    public private(set) var observedMin: Float = 0
    public private(set) var observedMax: Float = 0

    public init(binCount: Int = SqnrEncodingAnalyzer.defaultBinCount) throws {
        guard (1...(1 << 20)).contains(binCount) else {
            throw AimetError.invalid("histogram bin count \(binCount) is out of range 1...\(1 << 20)")
        }
        self.binCount = binCount
    }

    public var hasStatistics: Bool { !counts.isEmpty }

    public mutating func reset() {
        counts = []
        observedMin = 0
        observedMax = 0
    }

    // MARK: - Histogram

    /// The histogram range: the observed range, widened by 0.5 each way when
    /// it is a single value (as AIMET and `torch.histc`).
    private var outerRange: (lo: Float, hi: Float) {
        observedMin == observedMax ? (observedMin - 0.5, observedMax + 0.5) : (observedMin, observedMax)
    }

    /// Bin edges `lo + k * (hi - lo) / bins` in float32 (AIMET `_create_bin_edges`).
    public var binEdges: [Float] {
        guard hasStatistics else { return [] }
        let (lo, step) = edgeOrigin
        return (0...binCount).map { Float($0) * step + lo }
    }

    private var edgeOrigin: (lo: Float, step: Float) {
        let (lo, hi) = outerRange
        return (lo, (hi - lo) / Float(binCount))
    }

    /// Adds a batch. NaN values are skipped and ±infinity counted in the first /
    /// last bin, as AIMET does; a batch with no finite value is an error.
    public mutating func update(_ values: UnsafeBufferPointer<Float>) throws {
        guard let (lo, hi) = try finiteExtrema(values, rejectNonFinite: false) else {
            throw AimetError.invalid("cannot calibrate on an empty batch")
        }
        guard hasStatistics else {
            try checkSpan(lo, hi)
            observedMin = lo
            observedMax = hi
            // AIMET `collect_stats`: torch.histc between the first and last bin
            // edges; values that float rounding puts outside them go to the end bins.
            let (origin, step) = edgeOrigin
            let last = Float(binCount) * step + origin
            counts = histogram(values, lo: origin, hi: last, clampOutside: true)
            return
        }
        let newMin = lo < observedMin ? lo : observedMin
        let newMax = hi > observedMax ? hi : observedMax
        try checkSpan(newMin, newMax)
        var merged = (newMin == observedMin && newMax == observedMax)
            ? counts : rebinned(toMin: newMin, max: newMax)
        observedMin = newMin
        observedMax = newMax
        let (rangeLo, rangeHi) = outerRange
        let batch = histogram(values, lo: rangeLo, hi: rangeHi, clampOutside: false)
        for k in 0..<binCount { merged[k] = batch[k] + merged[k] }
        counts = merged
    }

    public mutating func update(_ values: [Float]) throws {
        try values.withUnsafeBufferPointer { try update($0) }
    }

    private func checkSpan(_ lo: Float, _ hi: Float) throws {
        guard (hi - lo).isFinite else {
            throw AimetError.numeric("observed range [\(lo), \(hi)] overflows float32")
        }
    }

    /// `torch.histc(values, bins, lo, hi)`: bin `int((v - lo) * bins / (hi - lo))`
    /// in float32, `hi` itself in the last bin; NaN skipped; -inf / +inf in the
    /// first / last bin; other values outside [lo, hi] too when `clampOutside`.
    private func histogram(_ values: UnsafeBufferPointer<Float>, lo: Float, hi: Float, clampOutside: Bool) -> [Float] {
        let bins = binCount
        let width = hi - lo
        let scale = Float(bins)
        var tally = [Int](repeating: 0, count: bins)
        tally.withUnsafeMutableBufferPointer { tally in
            for v in values {
                if v >= lo && v <= hi {
                    // `ratio < bins` also catches NaN from a zero width (|lo| so
                    // large that lo ± 0.5 rounds back to lo).
                    let ratio = ((v - lo) * scale) / width
                    tally[ratio < scale ? Int(ratio) : bins - 1] += 1
                } else if v < lo {
                    if clampOutside || v == -.infinity { tally[0] += 1 }
                } else if v > hi {
                    if clampOutside || v == .infinity { tally[bins - 1] += 1 }
                }
            }
        }
        return tally.map { Float($0) }
    }

    /// The current counts moved into `binCount` bins over [newMin, newMax]
    /// (AIMET `merge_stats`, float32 as there). A histogram of a single value
    /// (zero-width bins) moves whole to the bin holding that value, where
    /// AIMET's arithmetic divides by that zero width.
    private func rebinned(toMin newMin: Float, max newMax: Float) -> [Float] {
        let bins = binCount
        let destWidth = (newMax - newMin) / Float(bins)
        let srcWidth = (observedMax - observedMin) / Float(bins)
        func destBin(_ x: Float) -> Int {
            let ratio = (x - newMin) / destWidth
            return ratio < Float(bins) ? Swift.max(Int(ratio), 0) : bins - 1
        }
        var moved = [Float](repeating: 0, count: bins)
        for i in 0..<bins {
            let count = counts[i]
            guard count != 0 else { continue }
            let start = observedMin + srcWidth * Float(i)
            let bin = destBin(start)
            guard srcWidth > 0 else {
                moved[bin] += count
                continue
            }
            let binEnd = newMin + destWidth * Float(bin + 1)
            let split = (((binEnd - start) / srcWidth) * count).rounded(.toNearestOrEven)
            let kept = split < count ? split : count
            moved[bin] += kept
            if kept < count { moved[destBin(start + destWidth)] += count - kept }
        }
        return moved
    }

    // MARK: - Search

    /// AIMET's `compute_encodings_from_stats`: the best candidate's
    /// `min = offset * d`, `max = min + numSteps * d`.
    public func computeRange(_ settings: EncodingSettings) throws -> (min: Float, max: Float) {
        try settings.validate()
        guard hasStatistics else {
            throw AimetError.invalid("no statistics: observe values before computing an encoding")
        }
        let steps = settings.numSteps
        let n = Float(steps)
        let eps = minimumScale(numSteps: steps)
        let mn = Swift.min(observedMin, 0)
        var mx = Swift.max(observedMax, 0)
        mx = Swift.max(mx, mn + eps * n)
        let candidates: [(scale: Float, offset: Float)]
        if settings.isSymmetric {
            // Signed: D = 2·max(mx, -mn) / n, offset (-n) // 2. Unsigned (libpymo's
            // rule for non-negative values): D = mx / n, offset 0.
            let unsigned = settings.usesUnsignedGrid(min: mn)
            let widest = unsigned ? mx / n : (2 * Swift.max(mx, -mn)) / n
            let offset = unsigned ? 0 : Float(-((steps + 1) / 2))
            let count = SqnrEncodingAnalyzer.symmetricDeltaCandidates
            candidates = (1...count).map { k in
                (Swift.max((widest * Float(k)) / Float(count - 1), eps), offset)
            }
        } else {
            candidates = SqnrEncodingAnalyzer.asymmetricCandidates(mn: mn, mx: mx, steps: steps, eps: eps)
        }
        let best = bestCandidate(candidates, steps: steps)
        let low = best.offset * best.scale
        return (low, low + n * best.scale)
    }

    public func computeEncoding(_ settings: EncodingSettings) throws -> Encoding {
        let range = try computeRange(settings)
        return try Encoding(min: range.min, max: range.max, settings: settings)
    }

    /// Scales `D·k/16` (k = 1...17, `D = (mx - mn) / n`) times offsets
    /// `round(-n + j·t)` below `t = n / (min(n + 2, 21) - 2)` plus the observed
    /// `round(mn / D)`; each pair clamped into the observed grid
    /// `[D·o_obs, D·o_obs + D·n]` and turned back into (scale, offset).
    static func asymmetricCandidates(mn: Float, mx: Float, steps: Int, eps: Float) -> [(scale: Float, offset: Float)] {
        let n = Float(steps)
        let widest = (mx - mn) / n
        let observedOffset = (mn / widest).rounded(.toNearestOrEven)
        let gridMin = widest * observedOffset
        let gridMax = gridMin + widest * n
        // torch.arange(-n, t, t) in float64, then float32 and round.
        let offsetCount = Swift.min(steps + 2, offsetCandidates)
        let stride = Double(steps) / Double(offsetCount - 2)
        let length = Int((((stride + Double(steps)) / stride)).rounded(.up))
        let offsets = (0..<length).map { Float(-Double(steps) + Double($0) * stride).rounded(.toNearestOrEven) }
            + [observedOffset]
        let deltaCount = asymmetricDeltaCandidates
        var candidates: [(scale: Float, offset: Float)] = []
        candidates.reserveCapacity(deltaCount * offsets.count)
        for k in 1...deltaCount {
            let scale = (widest * Float(k)) / Float(deltaCount - 1)
            for offset in offsets {
                var low = scale * offset
                var high = low + scale * n
                low = Swift.max(gridMin, low)
                high = Swift.min(gridMax, high)
                let clamped = Swift.max((high - low) / n, eps)
                candidates.append((clamped, (low / clamped).rounded(.toNearestOrEven)))
            }
        }
        return candidates
    }

    /// The candidate of least noise, the first one on ties. Noise: every bin's
    /// midpoint `m` stands for its count; `q = round(m / d - o)`, error
    /// `((clamp(q, 0, n) + o)·d - m)^2 · count`, 3× where `q` was clipped.
    private func bestCandidate(_ candidates: [(scale: Float, offset: Float)], steps: Int) -> (scale: Float, offset: Float) {
        let n = Float(steps)
        let (origin, step) = edgeOrigin
        let first = Float(0) * step + origin
        let width = (Float(1) * step + origin) - first
        var midpoints: [Float] = []
        var weights: [Float] = []
        for k in 0..<binCount where counts[k] != 0 {
            midpoints.append((first + width / 2) + width * Float(k))
            weights.append(counts[k])
        }
        var seen = Set<UInt64>()
        var best = candidates[0]
        var bestNoise = Double.infinity
        for candidate in candidates {
            let key = UInt64(candidate.scale.bitPattern) << 32 | UInt64(candidate.offset.bitPattern)
            guard seen.insert(key).inserted else { continue }  // same noise as before; the first wins
            let (d, o) = candidate
            var noise = 0.0
            for i in midpoints.indices {
                let m = midpoints[i]
                let q = (m / d - o).rounded(.toNearestOrEven)
                let clipped = q < 0 || q > n
                let level = q < 0 ? 0 : (q > n ? n : q)
                let diff = (level + o) * d - m
                var error = (diff * diff) * weights[i]
                if clipped { error = error * SqnrEncodingAnalyzer.clippingWeight }
                noise += Double(error)
            }
            if noise < bestNoise {
                bestNoise = noise
                best = candidate
            }
        }
        return best
    }
}
