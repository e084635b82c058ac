import Foundation
import XCTest
@testable import AimetCore

/// Encodings (quantize / dequantize) and the TF / TF-enhanced analyzers, against
/// hand-computed cases and AIMET's own results (Fixtures/, from aimet-torch 2.42).
final class QuantizationTests: XCTestCase {
    // MARK: - AIMET reference vectors

    func testAnalyzersMatchAimetVectors() throws {
        let reference = try QuantizationFixtures.aimetReference()
        var checked = 0
        for tensor in ["gauss", "skewed", "heavy_tail"] {
            let values = try QuantizationFixtures.tensor(tensor)
            for (scheme, name) in [(QuantScheme.postTrainingTF, "tf"), (.postTrainingTFEnhanced, "tf_enhanced")] {
                for bitwidth in [4, 8] {
                    for symmetric in [true, false] {
                        let key = "\(tensor)/\(name)/bw\(bitwidth)/\(symmetric ? "sym" : "asym")"
                        let expected = try XCTUnwrap(reference[key], key)
                        var analyzer = try EncodingAnalyzer(scheme: scheme)
                        try analyzer.update(values)
                        let range = try analyzer.computeRange(EncodingSettings(bitwidth: bitwidth, symmetric: symmetric))
                        XCTAssertLessThanOrEqual(QuantizationFixtures.relativeError(range.min, expected.min), 1e-5, key)
                        XCTAssertLessThanOrEqual(QuantizationFixtures.relativeError(range.max, expected.max), 1e-5, key)
                        // Not just close: AIMET's float32 arithmetic is reproduced bit for bit.
                        XCTAssertEqual(range.min, Float(expected.min), "\(key) min")
                        XCTAssertEqual(range.max, Float(expected.max), "\(key) max")
                        checked += 1
                    }
                }
            }
        }
        XCTAssertEqual(checked, 24)
        XCTAssertEqual(reference.count, 24)
    }

    func testEncodingFromAimetRangeIsAimetQuantizerGrid() throws {
        // AIMET's reference documents scale = (max - min) / (2^bw - 1), offset = round(min / scale).
        let reference = try QuantizationFixtures.aimetReference()
        for (key, range) in reference {
            let bitwidth = key.contains("/bw4/") ? 4 : 8
            let symmetric = key.hasSuffix("/sym")
            let encoding = try Encoding(min: Float(range.min), max: Float(range.max),
                                        settings: EncodingSettings(bitwidth: bitwidth, symmetric: symmetric))
            let scale = (Float(range.max) - Float(range.min)) / Float((1 << bitwidth) - 1)
            XCTAssertEqual(encoding.scale, scale, key)
            XCTAssertEqual(encoding.offset, Int((Float(range.min) / scale).rounded(.toNearestOrEven)), key)
            XCTAssertEqual(encoding.numSteps, (1 << bitwidth) - 1, key)
        }
    }

    // MARK: - Quantize / dequantize

    func testQuantizeDequantizeHandComputed() throws {
        // 4-bit symmetric, scale 0.5: offset -8, grid -4 ... 3.5.
        let e = try Encoding(bitwidth: 4, isSymmetric: true, scale: 0.5, offset: -8)
        XCTAssertEqual(e.min, -4)
        XCTAssertEqual(e.max, 3.5)
        XCTAssertEqual(e.numSteps, 15)
        XCTAssertEqual(e.quantize(1.0), 10)          // 1.0 / 0.5 = 2, + 8
        XCTAssertEqual(e.dequantize(10), 1.0)
        XCTAssertEqual(e.quantizeDequantize(1.2), 1.0)  // 2.4 → 2
        XCTAssertEqual(e.quantizeDequantize(1.4), 1.5)  // 2.8 → 3
        // Round half to even, as torch.round: 0.5 → 0, 1.5 → 2, 2.5 → 2, -0.5 → -0, -1.5 → -2.
        XCTAssertEqual(e.quantize(0.25), 8)
        XCTAssertEqual(e.quantize(0.75), 10)
        XCTAssertEqual(e.quantize(1.25), 10)
        XCTAssertEqual(e.quantize(-0.25), 8)
        XCTAssertEqual(e.quantize(-0.75), 6)
        XCTAssertEqual(e.quantize(-1.25), 6)
        // Clamped to the grid.
        XCTAssertEqual(e.quantize(100), 15)
        XCTAssertEqual(e.quantizeDequantize(100), 3.5)
        XCTAssertEqual(e.quantize(-100), 0)
        XCTAssertEqual(e.quantizeDequantize(-100), -4)
        XCTAssertEqual(e.quantizeDequantize(.infinity), 3.5)
        XCTAssertEqual(e.quantizeDequantize(-.infinity), -4)
        XCTAssertTrue(e.quantizeDequantize(.nan).isNaN)

        // Asymmetric 8-bit, scale 0.25, offset -10: q = round(x / 0.25) + 10.
        let a = try Encoding(bitwidth: 8, isSymmetric: false, scale: 0.25, offset: -10)
        XCTAssertEqual(a.min, -2.5)
        XCTAssertEqual(a.max, 61.25)
        XCTAssertEqual(a.quantize(0), 10)
        XCTAssertEqual(a.quantize(0.125), 10)    // 0.5 → 0
        XCTAssertEqual(a.quantize(0.375), 12)    // 1.5 → 2
        XCTAssertEqual(a.quantize(-3), 0)
        XCTAssertEqual(a.quantize(70), 255)
    }

    func testFakeQuantizeBufferEqualsScalarPath() throws {
        let encodings = [
            try Encoding(bitwidth: 8, isSymmetric: false, scale: 0.0123, offset: -37),
            try Encoding(bitwidth: 8, isSymmetric: true, scale: 0.5, offset: -128),
            try Encoding(bitwidth: 4, isSymmetric: true, scale: 0.1, offset: -7, strictSymmetric: true),
            try Encoding(bitwidth: 2, isSymmetric: true, scale: 3, offset: 0),
            try Encoding(bitwidth: 16, isSymmetric: false, scale: 1e-4, offset: -65535),
            try Encoding(bitwidth: 16, isSymmetric: false, scale: 1e-3, offset: 2_000_000),
        ]
        var rng = TestRandom(11)
        for e in encodings {
            // Random values, exact ties (k + 1/2 steps), grid points, far outliers and non-finite values.
            var values = rng.floats(2000, e.min * 1.5 - 1, e.max * 1.5 + 1)
            values += (-300...300).map { (Float($0) + 0.5) * e.scale }
            values += (-300...300).map { Float($0) * e.scale }
            values += [0, -0, 1e30, -1e30, .infinity, -.infinity, .nan, .greatestFiniteMagnitude, .leastNonzeroMagnitude]
            var fast = values
            e.fakeQuantize(&fast)
            for (x, y) in zip(values, fast) {
                let expected = e.quantizeDequantize(x)
                XCTAssertTrue(expected.bitPattern == y.bitPattern || (expected.isNaN && y.isNaN),
                              "\(e): x = \(x): buffer \(y), scalar \(expected)")
            }
        }
    }

    func testPerChannelFakeQuantize() throws {
        var t = try Tensor(shape: [2, 3, 2], data: (0..<12).map { Float($0) * 0.3 - 1.7 })
        let original = t
        let encodings = try (0..<3).map { c in
            try Encoding(bitwidth: 4, isSymmetric: false, scale: Float(c + 1) * 0.1, offset: -5)
        }
        try Encoding.fakeQuantize(&t, perChannel: encodings, axis: 1)
        for i in 0..<12 {
            let channel = (i / 2) % 3
            XCTAssertEqual(t.data[i], encodings[channel].quantizeDequantize(original.data[i]))
        }
        XCTAssertThrowsError(try Encoding.fakeQuantize(&t, perChannel: encodings, axis: 0))
        XCTAssertThrowsError(try Encoding.fakeQuantize(&t, perChannel: encodings, axis: 3))
    }

    // MARK: - Encoding construction

    func testEncodingFromRangeFollowsAimetQuantizer() throws {
        let asym = try Encoding(min: -1, max: 2, settings: EncodingSettings(bitwidth: 8, symmetric: false))
        let scale: Float = 3 / 255
        XCTAssertEqual(asym.scale, scale)
        XCTAssertEqual(asym.offset, -85)
        XCTAssertEqual(asym.min, -85 * scale)
        XCTAssertEqual(asym.max, 170 * scale)
        XCTAssertFalse(asym.isSymmetric)

        let sym = try Encoding(min: -128 * 0.01, max: 127 * 0.01, settings: EncodingSettings(bitwidth: 8, symmetric: true))
        XCTAssertEqual(sym.offset, -128)
        XCTAssertEqual(sym.numSteps, 255)
        XCTAssertEqual(sym.scale, (127 * 0.01 - -128 * 0.01) / 255)

        let strict = try Encoding(min: -1.27, max: 1.27, settings: EncodingSettings(bitwidth: 8, symmetric: true, strictSymmetric: true))
        XCTAssertEqual(strict.offset, -127)
        XCTAssertEqual(strict.numSteps, 254)
        XCTAssertTrue(strict.isStrictSymmetric)
        XCTAssertEqual(strict.quantize(-10), 0)
        XCTAssertEqual(strict.quantize(10), 254)
        XCTAssertEqual(strict.quantizeDequantize(10), 127 * strict.scale)

        let unsigned = try Encoding(min: 0, max: 2.55, settings: EncodingSettings(bitwidth: 8, symmetric: true, unsignedSymmetric: true))
        XCTAssertEqual(unsigned.offset, 0)
        XCTAssertTrue(unsigned.isUnsignedSymmetric)
        XCTAssertEqual(unsigned.min, 0)
        // unsigned_symmetric only applies when nothing is negative.
        let signed = try Encoding(min: -0.1, max: 2.55, settings: EncodingSettings(bitwidth: 8, symmetric: true, unsignedSymmetric: true))
        XCTAssertEqual(signed.offset, -128)
    }

    func testEncodingValidation() throws {
        for bitwidth in [-1, 0, 1, 17, 32] {
            assertQuantizationError(.invalidArgument, "out of range") {
                _ = try Encoding(bitwidth: bitwidth, isSymmetric: false, scale: 0.1, offset: 0)
            }
        }
        for scale: Float in [0, -0.1, .nan, .infinity] {
            XCTAssertThrowsError(try Encoding(bitwidth: 8, isSymmetric: false, scale: scale, offset: 0))
        }
        assertQuantizationError(.invalidArgument, "symmetric") {
            _ = try Encoding(bitwidth: 8, isSymmetric: true, scale: 0.1, offset: -5)
        }
        assertQuantizationError(.invalidArgument, "strict") {
            _ = try Encoding(bitwidth: 8, isSymmetric: false, scale: 0.1, offset: -5, strictSymmetric: true)
        }
        XCTAssertThrowsError(try Encoding(min: 1, max: 1, settings: EncodingSettings(bitwidth: 8, symmetric: false)))
        XCTAssertThrowsError(try Encoding(min: 0, max: .infinity, settings: EncodingSettings(bitwidth: 8, symmetric: false)))
        // File fields: min / max must lie on the scale / offset grid.
        XCTAssertThrowsError(try Encoding(bitwidth: 8, isSymmetric: false, min: -1, max: 1, scale: 0.1, offset: -10))
        let strict = try Encoding(bitwidth: 8, isSymmetric: true, min: -12.7, max: 12.7, scale: 0.1, offset: -127)
        XCTAssertTrue(strict.isStrictSymmetric)
        XCTAssertEqual(strict.min, -12.7)
    }

    // MARK: - TF (min-max)

    func testMinMaxHandComputed() throws {
        var a = MinMaxEncodingAnalyzer()
        try a.update([0.5, -1, 3, 2])
        let asym = try a.computeRange(EncodingSettings(bitwidth: 8, symmetric: false))
        XCTAssertEqual(asym.min, -1)
        XCTAssertEqual(asym.max, 3)
        // Symmetric: d = max(3 / 127, 1 / 128) = 3 / 127; range [-128 d, 127 d].
        let sym = try a.computeRange(EncodingSettings(bitwidth: 8, symmetric: true))
        let d: Float = 3 / 127
        XCTAssertEqual(sym.min, -128 * d)
        XCTAssertEqual(sym.max, 127 * d)
        // Strict symmetric: 127 steps each way, d = max(3 / 127, 1 / 127).
        let strict = try a.computeRange(EncodingSettings(bitwidth: 8, symmetric: true, strictSymmetric: true))
        XCTAssertEqual(strict.min, -127 * d)
        XCTAssertEqual(strict.max, 127 * d)
        let encoding = try a.computeEncoding(EncodingSettings(bitwidth: 8, symmetric: true, strictSymmetric: true))
        XCTAssertEqual(encoding.offset, -127)
        XCTAssertEqual(encoding.numSteps, 254)
    }

    func testZeroIsForcedIntoTheRange() throws {
        var positive = MinMaxEncodingAnalyzer()
        try positive.update([2, 5, 3])
        let p = try positive.computeRange(EncodingSettings(bitwidth: 8, symmetric: false))
        XCTAssertEqual(p.min, 0)
        XCTAssertEqual(p.max, 5)
        var negative = MinMaxEncodingAnalyzer()
        try negative.update([-2, -5])
        let n = try negative.computeRange(EncodingSettings(bitwidth: 8, symmetric: false))
        XCTAssertEqual(n.min, -5)
        XCTAssertEqual(n.max, 0)
        let e = try negative.computeEncoding(EncodingSettings(bitwidth: 8, symmetric: false))
        XCTAssertEqual(e.offset, -255)
        XCTAssertEqual(e.quantizeDequantize(0), 0)
        // TF-enhanced too: every candidate grid holds 0.
        var sqnr = try SqnrEncodingAnalyzer()
        try sqnr.update([2, 5, 3, 4])
        let s = try sqnr.computeEncoding(EncodingSettings(bitwidth: 8, symmetric: false))
        XCTAssertLessThanOrEqual(s.min, 0)
        XCTAssertEqual(s.quantizeDequantize(0), 0)
    }

    func testUnsignedSymmetricForNonNegativeValues() throws {
        var a = MinMaxEncodingAnalyzer()
        try a.update([0.5, 2, 1])
        let unsigned = try a.computeEncoding(EncodingSettings(bitwidth: 8, symmetric: true, unsignedSymmetric: true))
        XCTAssertTrue(unsigned.isSymmetric)
        XCTAssertEqual(unsigned.offset, 0)
        XCTAssertEqual(unsigned.min, 0)
        XCTAssertEqual(unsigned.scale, 2 / 255)
        // Without the flag, the same values get the signed grid.
        let signed = try a.computeEncoding(EncodingSettings(bitwidth: 8, symmetric: true))
        XCTAssertEqual(signed.offset, -128)
        XCTAssertEqual(signed.scale, (127 * (2 / Float(127)) + 128 * (2 / Float(127))) / 255)
        // TF-enhanced: offset 0, scales searched up to about max / 255.
        var s = try SqnrEncodingAnalyzer()
        try s.update((0..<1000).map { Float($0) / 500 })
        let e = try s.computeEncoding(EncodingSettings(bitwidth: 8, symmetric: true, unsignedSymmetric: true))
        XCTAssertEqual(e.offset, 0)
        XCTAssertEqual(e.max, 2, accuracy: 0.05)
    }

    func testMinimumScaleWidensTinyRanges() throws {
        let eps = Float.ulpOfOne
        var zeros = MinMaxEncodingAnalyzer()
        try zeros.update([0, 0, 0])
        let asym = try zeros.computeRange(EncodingSettings(bitwidth: 8, symmetric: false))
        XCTAssertEqual(asym.min, 0)
        XCTAssertEqual(asym.max, 255 * eps)
        let sym = try zeros.computeRange(EncodingSettings(bitwidth: 8, symmetric: true))
        XCTAssertEqual(sym.min, -128 * eps)
        XCTAssertEqual(sym.max, 127 * eps)
        XCTAssertEqual(try zeros.computeEncoding(EncodingSettings(bitwidth: 8, symmetric: false)).scale, eps)
        // AIMET adds num_steps · eps to a range narrower than that (it does not set it to exactly that).
        var tiny = MinMaxEncodingAnalyzer()
        try tiny.update([0, 1e-6])
        let t = try tiny.computeRange(EncodingSettings(bitwidth: 8, symmetric: false))
        XCTAssertEqual(t.max, 1e-6 + 255 * eps)
        // Not below the threshold: unchanged.
        var small = MinMaxEncodingAnalyzer()
        try small.update([0, 1e-4])
        XCTAssertEqual(try small.computeRange(EncodingSettings(bitwidth: 8, symmetric: false)).max, 1e-4)
        // TF-enhanced of zeros: every candidate scale is at least eps.
        var s = try SqnrEncodingAnalyzer()
        try s.update([0, 0])
        XCTAssertGreaterThanOrEqual(try s.computeEncoding(EncodingSettings(bitwidth: 8, symmetric: true)).scale, eps * 0.999)
        XCTAssertGreaterThanOrEqual(try s.computeEncoding(EncodingSettings(bitwidth: 8, symmetric: false)).scale, eps * 0.999)
    }

    func testIncrementalMinMaxEqualsOneShot() throws {
        let values = try QuantizationFixtures.tensor("heavy_tail")
        var oneShot = MinMaxEncodingAnalyzer()
        try oneShot.update(values)
        var batched = MinMaxEncodingAnalyzer()
        for start in stride(from: 0, to: values.count, by: 700) {
            try batched.update(Array(values[start..<min(start + 700, values.count)]))
        }
        XCTAssertEqual(batched, oneShot)
        for bitwidth in [4, 8, 16] {
            for symmetric in [true, false] {
                let settings = EncodingSettings(bitwidth: bitwidth, symmetric: symmetric)
                XCTAssertEqual(try batched.computeEncoding(settings), try oneShot.computeEncoding(settings))
            }
        }
    }

    // MARK: - TF-enhanced (SQNR)

    func testSqnrClipsAnOutlierWhereTFCannot() throws {
        // 5000 values in [-1, 1] and one at 10, at 4 bits: keeping the outlier would
        // put most values on one level; clipping it (noise weighted 3x) costs less.
        var rng = TestRandom(5)
        var values = rng.floats(5000, -1, 1)
        values.append(10)
        var tf = MinMaxEncodingAnalyzer()
        try tf.update(values)
        var sqnr = try SqnrEncodingAnalyzer()
        try sqnr.update(values)
        for symmetric in [true, false] {
            let settings = EncodingSettings(bitwidth: 4, symmetric: symmetric)
            XCTAssertEqual(try tf.computeRange(settings).max, 10, accuracy: 1e-5)
            XCTAssertLessThan(try sqnr.computeRange(settings).max, 7)
        }
    }

    func testIncrementalSqnrIsCloseToOneShot() throws {
        for name in ["gauss", "skewed", "heavy_tail"] {
            let values = try QuantizationFixtures.tensor(name)
            var oneShot = try SqnrEncodingAnalyzer()
            try oneShot.update(values)
            // Batches in an order that makes the range grow several times.
            let sorted = values.sorted { abs($0) < abs($1) }
            var batched = try SqnrEncodingAnalyzer()
            for start in stride(from: 0, to: sorted.count, by: 1000) {
                try batched.update(Array(sorted[start..<min(start + 1000, sorted.count)]))
            }
            XCTAssertEqual(batched.observedMin, oneShot.observedMin)
            XCTAssertEqual(batched.observedMax, oneShot.observedMax)
            XCTAssertEqual(batched.counts.reduce(0, +), Float(values.count), "every value stays counted once")
            for bitwidth in [4, 8] {
                for symmetric in [true, false] {
                    let settings = EncodingSettings(bitwidth: bitwidth, symmetric: symmetric)
                    let a = try batched.computeRange(settings)
                    let b = try oneShot.computeRange(settings)
                    let width = b.max - b.min
                    XCTAssertEqual(a.min, b.min, accuracy: 0.1 * width, "\(name) bw\(bitwidth) sym \(symmetric)")
                    XCTAssertEqual(a.max, b.max, accuracy: 0.1 * width, "\(name) bw\(bitwidth) sym \(symmetric)")
                }
            }
        }
    }

    func testHistogramMergeHandComputed() throws {
        // 4 bins over [0, 4]: counts [1, 0, 0, 1]. Then 8 widens to [0, 8] (bins of 2):
        // old bin [0, 1) → new bin 0; old bin [3, 4) → new bin 1 (it ends inside it);
        // the new value 8 → last bin.
        var a = try SqnrEncodingAnalyzer(binCount: 4)
        try a.update([0, 4])
        XCTAssertEqual(a.counts, [1, 0, 0, 1])
        XCTAssertEqual(a.binEdges, [0, 1, 2, 3, 4])
        try a.update([8])
        XCTAssertEqual(a.counts, [1, 1, 0, 1])
        XCTAssertEqual(a.binEdges, [0, 2, 4, 6, 8])

        // 2 bins over [0, 2]: counts [2, 2]. Then -1 widens to [-1, 2] (bins of 1.5):
        // old bin [0, 1) overlaps new bin [-1, 0.5) by half: round(0.5 · 2) = 1 stays,
        // 1 moves to the next bin; old bin [1, 2) lies in new bin [0.5, 2).
        var b = try SqnrEncodingAnalyzer(binCount: 2)
        try b.update([0, 0.9, 1.1, 2])
        XCTAssertEqual(b.counts, [2, 2])
        try b.update([-1])
        XCTAssertEqual(b.counts, [2, 3])
        XCTAssertEqual(b.observedMin, -1)
        XCTAssertEqual(b.observedMax, 2)

        // A batch inside the current range adds to the bins as they are.
        try b.update([1.9, -0.9])
        XCTAssertEqual(b.counts, [3, 4])
    }

    func testSqnrHistogramOfASingleValue() throws {
        var a = try SqnrEncodingAnalyzer()
        try a.update([3, 3, 3])
        XCTAssertEqual(a.binEdges.first, 2.5)
        XCTAssertEqual(a.binEdges.last, 3.5)
        XCTAssertEqual(a.counts[256], 3)
        // Widening a single-value histogram moves its counts whole (AIMET divides by zero here).
        try a.update([-3])
        XCTAssertEqual(a.counts.reduce(0, +), 4)
        XCTAssertFalse(a.counts.contains { $0.isNaN })
        XCTAssertEqual(a.counts[0], 1)
        XCTAssertEqual(a.counts[511], 3)
    }

    func testSqnrSkipsNaNAndCountsInfinityAtTheEnds() throws {
        var a = try SqnrEncodingAnalyzer()
        try a.update([-1, .nan, 1, .infinity, -.infinity, 0.5])
        XCTAssertEqual(a.observedMin, -1)
        XCTAssertEqual(a.observedMax, 1)
        XCTAssertEqual(a.counts.reduce(0, +), 5)
        XCTAssertEqual(a.counts[0], 2)
        XCTAssertEqual(a.counts[511], 2)
        try a.update([.infinity, 0])
        XCTAssertEqual(a.counts[511], 3)
        assertQuantizationError(.numeric, "NaN or infinite") { try a.update([.nan, .infinity]) }
        // TF rejects non-finite values outright.
        var tf = MinMaxEncodingAnalyzer()
        assertQuantizationError(.numeric, "not finite") { try tf.update([1, .nan]) }
        assertQuantizationError(.numeric, "not finite") { try tf.update([1, -.infinity]) }
    }

    // MARK: - Per-channel

    func testPerChannelEncodingsUseEachChannelsValues() throws {
        // A conv weight [3, 2, 2]: channel c holds values scaled by c + 1.
        var rng = TestRandom(3)
        let base = rng.floats(4)
        let conv = try Tensor(shape: [3, 2, 2], data: (0..<3).flatMap { c in base.map { $0 * Float(c + 1) } })
        for scheme in [QuantScheme.postTrainingTF, .postTrainingTFEnhanced] {
            let settings = EncodingSettings(bitwidth: 8, symmetric: true)
            let encodings = try EncodingAnalyzer.computePerChannelEncodings(of: conv, axis: 0, scheme: scheme, settings: settings)
            XCTAssertEqual(encodings.count, 3)
            for c in 0..<3 {
                let expected = try EncodingAnalyzer.computeEncoding(of: Array(conv.data[(c * 4)..<(c * 4 + 4)]), scheme: scheme, settings: settings)
                XCTAssertEqual(encodings[c], expected)
            }
        }
        // A transposed conv weight [Cin = 2, Cout = 3, 1, 1]: output channels along axis 1.
        let transposed = try Tensor(shape: [2, 3, 1, 1], data: [1, -2, 3, -4, 5, -6])
        let encodings = try EncodingAnalyzer.computePerChannelEncodings(
            of: transposed, axis: 1, scheme: .postTrainingTF, settings: EncodingSettings(bitwidth: 8, symmetric: false))
        for (c, values) in [[1, -4], [-2, 5], [3, -6]].enumerated() {
            var a = MinMaxEncodingAnalyzer()
            try a.update(values.map { Float($0) })
            XCTAssertEqual(encodings[c], try a.computeEncoding(EncodingSettings(bitwidth: 8, symmetric: false)))
        }
        XCTAssertThrowsError(try EncodingAnalyzer.computePerChannelEncodings(
            of: transposed, axis: 4, scheme: .postTrainingTF, settings: EncodingSettings(bitwidth: 8, symmetric: false)))
    }

    // MARK: - Errors and names

    func testBitwidthOutOfRangeIsAnError() throws {
        var tf = MinMaxEncodingAnalyzer()
        try tf.update([1, 2])
        var sqnr = try SqnrEncodingAnalyzer()
        try sqnr.update([1, 2])
        for bitwidth in [0, 1, 17, 64] {
            let settings = EncodingSettings(bitwidth: bitwidth, symmetric: false)
            assertQuantizationError(.invalidArgument, "bitwidth \(bitwidth) is out of range") { _ = try tf.computeEncoding(settings) }
            assertQuantizationError(.invalidArgument, "bitwidth \(bitwidth) is out of range") { _ = try sqnr.computeEncoding(settings) }
            assertQuantizationError(.invalidArgument, "out of range") {
                _ = try EncodingAnalyzer.computeEncoding(of: [1, 2], scheme: .postTrainingTF, settings: settings)
            }
        }
        for bitwidth in 2...16 {
            for symmetric in [true, false] {
                let settings = EncodingSettings(bitwidth: bitwidth, symmetric: symmetric)
                let e = try sqnr.computeEncoding(settings)
                XCTAssertEqual(e.numSteps, (1 << bitwidth) - 1)
                XCTAssertEqual(try tf.computeEncoding(settings).bitwidth, bitwidth)
            }
        }
    }

    func testNoStatisticsAndEmptyBatchesAreErrors() throws {
        let settings = EncodingSettings(bitwidth: 8, symmetric: false)
        assertQuantizationError(.invalidArgument, "no statistics") { _ = try MinMaxEncodingAnalyzer().computeEncoding(settings) }
        assertQuantizationError(.invalidArgument, "no statistics") { _ = try SqnrEncodingAnalyzer().computeEncoding(settings) }
        var a = try EncodingAnalyzer(scheme: .postTrainingTFEnhanced)
        assertQuantizationError(.invalidArgument, "empty") { try a.update([]) }
        try a.update([1, 2])
        XCTAssertTrue(a.hasStatistics)
        a.reset()
        XCTAssertFalse(a.hasStatistics)
    }

    func testQuantSchemeNames() throws {
        XCTAssertEqual(QuantScheme.allCases.map(\.rawValue), [
            "post_training_tf", "post_training_tf_enhanced", "training_range_learning_with_tf_init",
            "training_range_learning_with_tf_enhanced_init", "post_training_percentile",
        ])
        XCTAssertEqual(try QuantScheme(name: "post_training_tf_enhanced"), .postTrainingTFEnhanced)
        XCTAssertEqual(QuantScheme.trainingRangeLearningWithTFInit.calibration, .minMax)
        XCTAssertEqual(QuantScheme.trainingRangeLearningWithTFEnhancedInit.calibration, .sqnr)
        assertQuantizationError(.unknownName, "post_training_tf") { _ = try QuantScheme(name: "tf") }
        assertQuantizationError(.unsupported, "post_training_percentile") { _ = try EncodingAnalyzer(scheme: .postTrainingPercentile) }
    }
}

// MARK: - Helpers

/// Shared by the Quantization*Tests files.
enum QuantizationFixtures {
    static func url(_ name: String) -> URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures").appendingPathComponent(name)
    }

    /// A tensor of Fixtures/ (raw little-endian float32).
    static func tensor(_ name: String) throws -> [Float] {
        let data = try Data(contentsOf: url("encoding_tensor_\(name).f32"))
        let bytes = [UInt8](data)
        return stride(from: 0, to: bytes.count, by: 4).map { i in
            var bits = UInt32(bytes[i + 3])
            for k in (0..<3).reversed() { bits = bits << 8 | UInt32(bytes[i + k]) }
            return Float(bitPattern: bits)
        }
    }

    /// AIMET's analyzer results: key "tensor/scheme/bwN/sym|asym" → (min, max).
    static func aimetReference() throws -> [String: (min: Double, max: Double)] {
        let data = try Data(contentsOf: url("aimet_encodings.json"))
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: [String: Double]])
        return try json.mapValues { (try XCTUnwrap($0["min"]), try XCTUnwrap($0["max"])) }
    }

    static func relativeError(_ x: Float, _ reference: Double) -> Double {
        abs(Double(x) - reference) / Swift.max(abs(reference), 1e-30)
    }
}

/// Fails unless `body` throws an AimetError of `kind` whose message contains `fragment`.
func assertQuantizationError(_ kind: AimetError.Kind, _ fragment: String, file: StaticString = #filePath, line: UInt = #line,
                             _ body: () throws -> Void) {
    do {
        try body()
        XCTFail("expected an AimetError containing '\(fragment)'", file: file, line: line)
    } catch let error as AimetError {
        XCTAssertEqual(error.kind, kind, error.message, file: file, line: line)
        XCTAssertTrue(error.message.contains(fragment), "'\(error.message)' does not contain '\(fragment)'", file: file, line: line)
    } catch {
        XCTFail("unexpected error \(error)", file: file, line: line)
    }
}
