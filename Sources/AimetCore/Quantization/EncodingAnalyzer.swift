/// Calibration for one quantizer: observe values (one batch or many), then
/// compute an encoding. Wraps the analyzer of a `QuantScheme`:
/// `MinMaxEncodingAnalyzer` (TF) or `SqnrEncodingAnalyzer` (TF-enhanced).
///
///     var analyzer = try EncodingAnalyzer(scheme: .postTrainingTFEnhanced)
///     for batch in batches { try analyzer.update(batch) }
///     let encoding = try analyzer.computeEncoding(EncodingSettings(bitwidth: 8, symmetric: false))
public enum EncodingAnalyzer: Sendable {
    case minMax(MinMaxEncodingAnalyzer)
    case sqnr(SqnrEncodingAnalyzer)

    public init(scheme: QuantScheme) throws {
        switch scheme.calibration {
        case .minMax: self = .minMax(MinMaxEncodingAnalyzer())
        case .sqnr: self = .sqnr(try SqnrEncodingAnalyzer())
        case .percentile:
            throw AimetError.unsupported("quant scheme \(scheme.rawValue) is not supported: use post_training_tf or post_training_tf_enhanced")
        }
    }

    /// Adds a batch of values to the statistics.
    public mutating func update(_ values: UnsafeBufferPointer<Float>) throws {
        switch self {
        case .minMax(var a): try a.update(values); self = .minMax(a)
        case .sqnr(var a): try a.update(values); self = .sqnr(a)
        }
    }

    public mutating func update(_ values: [Float]) throws {
        try values.withUnsafeBufferPointer { try update($0) }
    }

    public mutating func reset() {
        switch self {
        case .minMax(var a): a.reset(); self = .minMax(a)
        case .sqnr(var a): a.reset(); self = .sqnr(a)
        }
    }

    public var hasStatistics: Bool {
        switch self {
        case .minMax(let a): return a.hasStatistics
        case .sqnr(let a): return a.hasStatistics
        }
    }

    /// The range AIMET's analyzer returns (`compute_encodings`).
    public func computeRange(_ settings: EncodingSettings) throws -> (min: Float, max: Float) {
        switch self {
        case .minMax(let a): return try a.computeRange(settings)
        case .sqnr(let a): return try a.computeRange(settings)
        }
    }

    /// The encoding of the observed statistics: `Encoding(min:max:settings:)` of `computeRange`.
    public func computeEncoding(_ settings: EncodingSettings) throws -> Encoding {
        let range = try computeRange(settings)
        return try Encoding(min: range.min, max: range.max, settings: settings)
    }

    // MARK: - One-shot

    /// The per-tensor encoding of `values` (weights, or one batch).
    public static func computeEncoding(of values: UnsafeBufferPointer<Float>, scheme: QuantScheme,
                                       settings: EncodingSettings) throws -> Encoding {
        try settings.validate()
        var analyzer = try EncodingAnalyzer(scheme: scheme)
        try analyzer.update(values)
        return try analyzer.computeEncoding(settings)
    }

    public static func computeEncoding(of values: [Float], scheme: QuantScheme,
                                       settings: EncodingSettings) throws -> Encoding {
        try values.withUnsafeBufferPointer { try computeEncoding(of: $0, scheme: scheme, settings: settings) }
    }

    /// One encoding per index of `axis` (per-channel quantization): the output
    /// channel is axis 0 of a conv / linear weight and axis 1 of a transposed-conv
    /// weight `[Cin, Cout/groups, k...]`. Each channel is calibrated on its own
    /// values, as AIMET's per-channel analyzers do.
    public static func computePerChannelEncodings(of tensor: Tensor, axis: Int, scheme: QuantScheme,
                                                  settings: EncodingSettings) throws -> [Encoding] {
        try settings.validate()
        let (outer, channels, inner) = try Encoding.channelLayout(tensor.shape, axis: axis)
        guard outer * inner > 0 else {
            throw AimetError.shape("tensor of shape \(tensor.shape) has no values per channel along axis \(axis)")
        }
        _ = try EncodingAnalyzer(scheme: scheme)  // an unsupported scheme fails before any work
        var slice = [Float](repeating: 0, count: outer * inner)
        return try tensor.data.withUnsafeBufferPointer { data in
            try (0..<channels).map { c in
                for o in 0..<outer {
                    let from = (o * channels + c) * inner
                    for k in 0..<inner { slice[o * inner + k] = data[from + k] }
                }
                do {
                    return try computeEncoding(of: slice, scheme: scheme, settings: settings)
                } catch let error as AimetError {
                    throw AimetError(error.kind, "channel \(c) along axis \(axis): \(error.message)")
                }
            }
        }
    }
}

/// TF calibration (AIMET `MinMaxEncodingAnalyzer`): the running
/// minimum and maximum of every value observed. Incremental updates give exactly
/// the one-shot result.
public struct MinMaxEncodingAnalyzer: Sendable, Equatable {
    public private(set) var observedMin: Float?
    public private(set) var observedMax: Float?

    public init() {}

    public var hasStatistics: Bool { observedMin != nil }

    /// Adds a batch. NaN or infinite values are an error: AIMET would carry
    /// them into a NaN or float-max range, which quantizes nothing usefully.
    public mutating func update(_ values: UnsafeBufferPointer<Float>) throws {
        guard let (lo, hi) = try finiteExtrema(values, rejectNonFinite: true) else {
            throw AimetError.invalid("cannot calibrate on an empty batch")
        }
        observedMin = observedMin.map { Swift.min($0, lo) } ?? lo
        observedMax = observedMax.map { Swift.max($0, hi) } ?? hi
    }

    public mutating func update(_ values: [Float]) throws {
        try values.withUnsafeBufferPointer { try update($0) }
    }

    public mutating func reset() {
        observedMin = nil
        observedMax = nil
    }

    /// AIMET's `compute_encodings_from_stats`, in float32:
    /// `mn = min(min, 0)`, `mx = max(max, 0)`; when `(mx - mn) / n` is below the
    /// minimum scale, AIMET adds that scale times the step counts (`mx += n·eps`
    /// when asymmetric; `mx += floor(n/2)·eps`, `mn -= ceil(n/2)·eps` when
    /// symmetric), so the scale ends at least at the minimum. Symmetric:
    /// `d = max(mx / floor(n/2), -mn / ceil(n/2))`, range `[-ceil(n/2)·d, floor(n/2)·d]`.
    /// Unsigned symmetric (no negative values, `unsignedSymmetric`) is the asymmetric range `[0, mx]`.
    public func computeRange(_ settings: EncodingSettings) throws -> (min: Float, max: Float) {
        try settings.validate()
        guard let observedMin, let observedMax else {
            throw AimetError.invalid("no statistics: observe values before computing an encoding")
        }
        return MinMaxEncodingAnalyzer.range(min: observedMin, max: observedMax, settings: settings)
    }

    public func computeEncoding(_ settings: EncodingSettings) throws -> Encoding {
        let range = try computeRange(settings)
        return try Encoding(min: range.min, max: range.max, settings: settings)
    }

    static func range(min: Float, max: Float, settings: EncodingSettings) -> (min: Float, max: Float) {
        let steps = settings.numSteps
        let n = Float(steps)
        let eps = minimumScale(numSteps: steps)
        var mn = Swift.min(min, 0)
        var mx = Swift.max(max, 0)
        let adjustment: Float = (mx - mn) / n < eps ? eps : 0
        guard settings.isSymmetric, !settings.usesUnsignedGrid(min: mn) else {
            return (mn, mx + n * adjustment)
        }
        let positive = Float(steps / 2)
        let negative = Float(steps - steps / 2)
        mx = mx + positive * adjustment
        mn = mn - negative * adjustment
        let delta = Swift.max(mx / positive, -mn / negative)
        return (-negative * delta, positive * delta)
    }
}

/// The least and greatest finite values of `values`, or nil when it is empty.
/// With `rejectNonFinite`, a NaN or infinity is an error; otherwise they are
/// skipped, and a batch with no finite value at all is an error.
func finiteExtrema(_ values: UnsafeBufferPointer<Float>, rejectNonFinite: Bool) throws -> (Float, Float)? {
    guard !values.isEmpty else { return nil }
    var lo = Float.infinity
    var hi = -Float.infinity
    var nonFinite = false
    for v in values {
        nonFinite = nonFinite || !v.isFinite
        lo = v < lo && v.isFinite ? v : lo
        hi = v > hi && v.isFinite ? v : hi
    }
    if nonFinite, rejectNonFinite, let i = values.firstIndex(where: { !$0.isFinite }) {
        throw AimetError.numeric("value \(values[i]) at index \(i) is not finite; cannot calibrate an encoding on it")
    }
    guard lo <= hi else {
        throw AimetError.numeric("every value of the batch is NaN or infinite; cannot calibrate an encoding on it")
    }
    return (lo, hi)
}
