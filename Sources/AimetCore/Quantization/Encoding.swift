/// An AIMET quantization encoding: an integer grid `q = 0 ... numSteps`
/// whose level `q` stands for the float `(q + offset) * scale`.
///
///     quantize:    q  = clamp(round(x / scale) - offset, 0, numSteps)
///     dequantize:  x' = (q + offset) * scale
///
/// `round` is round-half-to-even, as in AIMET (`torch.round`, like NumPy's
/// `round` and C's `nearbyint`): 0.5 → 0, 1.5 → 2, 2.5 → 2, -0.5 → -0,
/// -1.5 → -2. `x / scale` is a true float32 division, not a multiplication by
/// `1 / scale`, so ties fall exactly where AIMET's do. Everything is float32.
///
/// `numSteps` is `2^bitwidth - 1`, or `2^bitwidth - 2` for a strict symmetric
/// grid (AIMET config `strict_symmetric`: levels `-(2^(b-1) - 1) ... 2^(b-1) - 1`).
/// `offset` follows AIMET's file convention; a symmetric grid has offset
/// `-2^(b-1)` (signed), `-(2^(b-1) - 1)` (strict) or `0` (unsigned symmetric,
/// AIMET config `unsigned_symmetric`, used when no observed value is negative).
/// `min = offset * scale` and `max = (offset + numSteps) * scale` are the grid's
/// ends, as AIMET exports them.
public struct Encoding: Equatable, Sendable {
    public let bitwidth: Int
    public let isSymmetric: Bool
    public let min: Float
    public let max: Float
    /// The step between grid levels (AIMET's `delta`).
    public let scale: Float
    public let offset: Int
    /// The top grid level: `2^bitwidth - 1`, or `2^bitwidth - 2` when strict symmetric.
    public let numSteps: Int

    /// Bitwidths this library computes and reads (AIMET: params 2–16, activations 4–16;
    /// the caller applies the narrower activation range).
    public static let supportedBitwidths = 2...16
    /// Bitwidths AIMET accepts for activations.
    public static let supportedActivationBitwidths = 4...16

    /// Largest |offset| accepted: keeps every grid level an exact float32
    /// integer and lets `fakeQuantize` round with the exact 1.5·2^23 trick.
    static let maxOffsetMagnitude = 1 << 21

    public var isStrictSymmetric: Bool { isSymmetric && numSteps == (1 << bitwidth) - 2 }
    public var isUnsignedSymmetric: Bool { isSymmetric && offset == 0 }

    // MARK: - Construction

    /// The grid with `scale` and `offset`; `min` / `max` are derived from them.
    /// A strict symmetric grid has `2^b - 2` steps (only with `isSymmetric`).
    public init(bitwidth: Int, isSymmetric: Bool, scale: Float, offset: Int, strictSymmetric: Bool = false) throws {
        try Encoding.checkBitwidth(bitwidth)
        guard !strictSymmetric || isSymmetric else {
            throw AimetError.invalid("a strict symmetric encoding must be symmetric")
        }
        let steps = (1 << bitwidth) - (strictSymmetric ? 2 : 1)
        try self.init(checked: bitwidth, isSymmetric, scale: scale, offset: offset, numSteps: steps)
    }

    /// AIMET's quantizer set to a calibrated range (`set_range`, then `get_scale` /
    /// `get_offset`): `scale = (max - min) / numSteps`; offset `round(min / scale)`
    /// when asymmetric, `-ceil(numSteps / 2)` when symmetric (`-2^(b-1)`, or
    /// `-(2^(b-1) - 1)` when strict), `0` for unsigned symmetric (when
    /// `settings.unsignedSymmetric` and `min >= 0`). `min` / `max` of the result
    /// are the grid's ends, which may differ from the arguments by rounding.
    public init(min: Float, max: Float, settings: EncodingSettings) throws {
        try settings.validate()
        guard min.isFinite, max.isFinite, min < max else {
            throw AimetError.numeric("encoding range [\(min), \(max)] is empty or not finite")
        }
        let steps = settings.numSteps
        let scale = (max - min) / Float(steps)
        guard scale.isFinite, scale > 0 else {
            throw AimetError.numeric("encoding range [\(min), \(max)] gives scale \(scale) at \(settings.bitwidth) bits")
        }
        let offset: Int
        if settings.isSymmetric {
            offset = settings.usesUnsignedGrid(min: min) ? 0 : -(steps - steps / 2)
        } else {
            let rounded = (min / scale).rounded(.toNearestOrEven)
            guard abs(rounded) <= Float(Encoding.maxOffsetMagnitude) else {
                throw AimetError.numeric("encoding range [\(min), \(max)] lies too far from 0 for a \(settings.bitwidth)-bit grid (offset \(rounded))")
            }
            offset = Int(rounded)
        }
        try self.init(checked: settings.bitwidth, settings.isSymmetric, scale: scale, offset: offset, numSteps: steps)
    }

    /// All fields as stored in an encodings file. The grid is `scale` / `offset`;
    /// `min` / `max` are kept as given and must lie on it to within half a step
    /// (`max - min` spanning `2^b - 1` steps, or `2^b - 2` for a strict
    /// symmetric encoding, which is how such an encoding is recognised).
    public init(bitwidth: Int, isSymmetric: Bool, min: Float, max: Float, scale: Float, offset: Int) throws {
        try Encoding.checkBitwidth(bitwidth)
        guard min.isFinite, max.isFinite else {
            throw AimetError.numeric("encoding min \(min) / max \(max) must be finite")
        }
        guard scale.isFinite, scale > 0 else {
            throw AimetError.numeric("encoding scale must be finite and > 0, got \(scale)")
        }
        let span = (Double(max) - Double(min)) / Double(scale)
        let full = (1 << bitwidth) - 1
        let steps: Int
        if abs(span - Double(full)) < 0.5 {
            steps = full
        } else if isSymmetric, abs(span - Double(full - 1)) < 0.5 {
            steps = full - 1
        } else {
            throw AimetError.invalid("encoding min \(min) / max \(max) span \(span) steps of scale \(scale); a \(bitwidth)-bit grid spans \(full)")
        }
        guard abs(Double(min) / Double(scale) - Double(offset)) < 0.5 else {
            throw AimetError.invalid("encoding min \(min) is not offset \(offset) * scale \(scale)")
        }
        try self.init(checked: bitwidth, isSymmetric, scale: scale, offset: offset, numSteps: steps)
        self = Encoding(bitwidth: bitwidth, isSymmetric: isSymmetric, min: min, max: max,
                        scale: scale, offset: offset, numSteps: steps, unchecked: ())
    }

    private init(checked bitwidth: Int, _ isSymmetric: Bool, scale: Float, offset: Int, numSteps: Int) throws {
        guard scale.isFinite, scale > 0 else {
            throw AimetError.numeric("encoding scale must be finite and > 0, got \(scale)")
        }
        guard abs(offset) <= Encoding.maxOffsetMagnitude else {
            throw AimetError.invalid("encoding offset \(offset) is out of range (|offset| <= \(Encoding.maxOffsetMagnitude))")
        }
        if isSymmetric {
            let signed = -(numSteps - numSteps / 2)
            guard offset == signed || offset == 0 else {
                throw AimetError.invalid("a symmetric \(bitwidth)-bit encoding has offset \(signed) (or 0 when unsigned), got \(offset)")
            }
        }
        let min = Float(offset) * scale
        let max = Float(offset + numSteps) * scale
        guard min.isFinite, max.isFinite else {
            throw AimetError.numeric("encoding scale \(scale) with offset \(offset) overflows float32")
        }
        self.init(bitwidth: bitwidth, isSymmetric: isSymmetric, min: min, max: max,
                  scale: scale, offset: offset, numSteps: numSteps, unchecked: ())
    }

    private init(bitwidth: Int, isSymmetric: Bool, min: Float, max: Float, scale: Float, offset: Int,
                 numSteps: Int, unchecked: Void) {
        self.bitwidth = bitwidth
        self.isSymmetric = isSymmetric
        self.min = min
        self.max = max
        self.scale = scale
        self.offset = offset
        self.numSteps = numSteps
    }

    static func checkBitwidth(_ bitwidth: Int) throws {
        guard supportedBitwidths.contains(bitwidth) else {
            throw AimetError.invalid("bitwidth \(bitwidth) is out of range \(supportedBitwidths.lowerBound)...\(supportedBitwidths.upperBound)")
        }
    }

    // MARK: - Quantize / dequantize

    /// The grid level of `x`: an integer-valued Float in `0 ... numSteps`
    /// (NaN stays NaN, as in AIMET; ±inf go to the ends).
    public func quantize(_ x: Float) -> Float {
        var q = (x / scale).rounded(.toNearestOrEven) - Float(offset)
        q = q < 0 ? 0 : q
        return q > Float(numSteps) ? Float(numSteps) : q
    }

    /// The float that level `q` stands for: `(q + offset) * scale`.
    public func dequantize(_ q: Float) -> Float {
        (q + Float(offset)) * scale
    }

    /// `dequantize(quantize(x))`.
    public func quantizeDequantize(_ x: Float) -> Float {
        dequantize(quantize(x))
    }

    /// Replaces every value by `quantizeDequantize(value)`, in place.
    public func fakeQuantize(_ data: inout [Float]) {
        data.withUnsafeMutableBufferPointer { fakeQuantize($0) }
    }

    /// Replaces every value by `quantizeDequantize(value)`, in place; the same
    /// results as the scalar path, in a loop the compiler vectorizes.
    ///
    /// Rounding adds and subtracts 1.5·2^23: for |v| <= 2^22 the sum lands in
    /// [2^23, 2^24], where float32 spacing is 1, so the hardware's
    /// round-to-nearest-even does the rounding. `v` is first clamped to one
    /// level beyond the grid's ends (|offset| + numSteps < 2^22 by construction),
    /// which changes no result and keeps the trick exact. NaN passes through
    /// (every comparison with it is false), as in AIMET.
    public func fakeQuantize(_ buffer: UnsafeMutableBufferPointer<Float>) {
        let s = scale
        let o = Float(offset)
        let top = Float(numSteps)
        let below = o - 1
        let above = o + top + 1
        let magic: Float = 12_582_912  // 1.5 * 2^23
        for i in buffer.indices {
            var v = buffer[i] / s
            v = v < below ? below : v
            v = v > above ? above : v
            var q = ((v + magic) - magic) - o
            q = q < 0 ? 0 : q
            q = q > top ? top : q
            buffer[i] = (q + o) * s
        }
    }

    /// Fake-quantizes `tensor` with one encoding per index of `axis` (per-channel:
    /// axis 0 for conv / linear weights, axis 1 for transposed-conv weights).
    public static func fakeQuantize(_ tensor: inout Tensor, perChannel encodings: [Encoding], axis: Int) throws {
        let (outer, channels, inner) = try channelLayout(tensor.shape, axis: axis)
        guard encodings.count == channels else {
            throw AimetError.shape("\(encodings.count) encodings for \(channels) channels along axis \(axis) of shape \(tensor.shape)")
        }
        tensor.data.withUnsafeMutableBufferPointer { data in
            for o in 0..<outer {
                for c in 0..<channels {
                    let start = (o * channels + c) * inner
                    encodings[c].fakeQuantize(UnsafeMutableBufferPointer(rebasing: data[start..<(start + inner)]))
                }
            }
        }
    }

    /// `shape` split around `axis` into (elements before, channels, elements after).
    static func channelLayout(_ shape: [Int], axis: Int) throws -> (outer: Int, channels: Int, inner: Int) {
        guard shape.indices.contains(axis) else {
            throw AimetError.invalid("channel axis \(axis) is out of range for shape \(shape)")
        }
        return (shape[..<axis].reduce(1, *), shape[axis], shape[(axis + 1)...].reduce(1, *))
    }
}

/// The grid an analyzer fits (AIMET quantsim config flags).
public struct EncodingSettings: Equatable, Sendable {
    public var bitwidth: Int
    public var isSymmetric: Bool
    /// `strict_symmetric`: a symmetric grid of `2^b - 2` steps, `-(2^(b-1) - 1) ... 2^(b-1) - 1`.
    public var strictSymmetric: Bool
    /// `unsigned_symmetric`: a symmetric encoding of values that are never
    /// negative uses the unsigned grid `0 ... 2^b - 1` (offset 0), as AIMET's
    /// libpymo does. Combined with `strictSymmetric` (which AIMET does not
    /// forbid), the unsigned grid keeps the strict `2^b - 2` steps, as libpymo.
    public var unsignedSymmetric: Bool

    public init(bitwidth: Int, symmetric: Bool, strictSymmetric: Bool = false, unsignedSymmetric: Bool = false) {
        self.bitwidth = bitwidth
        self.isSymmetric = symmetric
        self.strictSymmetric = strictSymmetric
        self.unsignedSymmetric = unsignedSymmetric
    }

    /// `2^b - 1`, or `2^b - 2` for a strict symmetric grid.
    public var numSteps: Int { (1 << bitwidth) - (isSymmetric && strictSymmetric ? 2 : 1) }

    /// Whether a range starting at `min` gets the unsigned symmetric grid.
    func usesUnsignedGrid(min: Float) -> Bool { isSymmetric && unsignedSymmetric && min >= 0 }

    func validate() throws { try Encoding.checkBitwidth(bitwidth) }
}

/// The smallest scale an analyzer produces: `min(float32 eps, 0.01 / numSteps)`,
/// which is float32 eps (AIMET v2's `_MINIMUM_SCALE`) for every bitwidth up to 16.
func minimumScale(numSteps: Int) -> Float {
    Swift.min(Float.ulpOfOne, 0.01 / Float(numSteps))
}
