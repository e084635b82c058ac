import XCTest
import CKernels
@testable import AimetCore

/// The runtime's C kernels (Sources/CKernels/depthwise.c, epilogue.c) on every
/// instruction set this processor has, against scalar references: the depthwise
/// 3×3 conv to float32 rounding (it uses fused multiply-adds where there are
/// any), the epilogue bit for bit (the same operations as the Swift loops).
final class RuntimeKernelTests: XCTestCase {
    let isas = [AIMETK_ISA_BASELINE, AIMETK_ISA_AVX2, AIMETK_ISA_AVX512].filter { $0.rawValue <= aimetk_best_isa().rawValue }

    /// One depthwise geometry: input `[n, c, inH, inW]`, `multiplier` output channels per input channel.
    struct Case: CustomStringConvertible {
        var n = 1
        var c = 1
        var multiplier = 1
        var inH: Int
        var inW: Int
        var strideH = 1
        var strideW = 1
        /// Top, left, bottom, right.
        var pads = [1, 1, 1, 1]
        var kH = 3
        var kW = 3
        var dilationH = 1
        var dilationW = 1
        var outH: Int { (inH + pads[0] + pads[2] - (kH - 1) * dilationH - 1) / strideH + 1 }
        var outW: Int { (inW + pads[1] + pads[3] - (kW - 1) * dilationW - 1) / strideW + 1 }
        var m: Int { c * multiplier }
        var description: String {
            "n \(n), c \(c)×\(multiplier), \(inH)×\(inW), window \(kH)×\(kW) dilation \(dilationH)×\(dilationW), "
                + "stride \(strideH)×\(strideW), pads \(pads)"
        }
    }

    /// `y = min(max(conv + bias + residual, lo), hi)` in double precision, one output at a time.
    func reference(_ t: Case, x: [Float], w: [Float], bias: [Float], residual: [Float]?, lo: Float, hi: Float) -> [Float] {
        var y = [Float](repeating: 0, count: t.n * t.m * t.outH * t.outW)
        for image in 0..<t.n {
            for o in 0..<t.m {
                let plane = (image * t.c + o / t.multiplier) * t.inH * t.inW
                for oy in 0..<t.outH {
                    for ox in 0..<t.outW {
                        var sum = Double(bias[o])
                        for ky in 0..<t.kH {
                            for kx in 0..<t.kW {
                                let iy = oy * t.strideH - t.pads[0] + ky * t.dilationH
                                let ix = ox * t.strideW - t.pads[1] + kx * t.dilationW
                                guard iy >= 0, iy < t.inH, ix >= 0, ix < t.inW else { continue }
                                sum += Double(w[(o * t.kH + ky) * t.kW + kx]) * Double(x[plane + iy * t.inW + ix])
                            }
                        }
                        let index = ((image * t.m + o) * t.outH + oy) * t.outW + ox
                        if let residual { sum += Double(residual[index]) }
                        y[index] = Swift.min(Swift.max(Float(sum), lo), hi)
                    }
                }
            }
        }
        return y
    }

    /// `body` with pointers to the buffers (`residual` optional) and a scratch area of
    /// `scratch(k)` floats of garbage (a kernel must not rely on its contents) for the job `k`.
    func withBuffers(_ x: [Float], _ w: [Float], _ bias: [Float], _ residual: [Float]?, _ y: inout [Float],
                     job: (UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>?,
                           UnsafeMutablePointer<Float>) -> aimetk_conv2d,
                     scratch: (UnsafePointer<aimetk_conv2d>) -> Int, _ body: (UnsafePointer<aimetk_conv2d>) -> Void) {
        x.withUnsafeBufferPointer { xb in w.withUnsafeBufferPointer { wb in bias.withUnsafeBufferPointer { bb in
            y.withUnsafeMutableBufferPointer { yb in
                func call(_ res: UnsafePointer<Float>?) {
                    var k = job(xb.baseAddress!, wb.baseAddress!, bb.baseAddress!, res, yb.baseAddress!)
                    var area = [Float](repeating: .nan, count: scratch(&k))
                    area.withUnsafeMutableBufferPointer { sb in
                        k.scratch = sb.baseAddress
                        body(&k)
                    }
                }
                if let residual { residual.withUnsafeBufferPointer { call($0.baseAddress) } } else { call(nil) }
            }
        } } }
    }

    /// The kernels' description of case `t`.
    func job(_ t: Case, _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ bias: UnsafePointer<Float>,
             _ residual: UnsafePointer<Float>?, _ y: UnsafeMutablePointer<Float>, lo: Float, hi: Float) -> aimetk_conv2d {
        aimetk_conv2d(x: x, w: w, bias: bias, residual: residual, y: y, scratch: nil, channels: t.c, out_channels: t.m,
                      in_h: t.inH, in_w: t.inW, out_h: t.outH, out_w: t.outW, kernel_h: t.kH, kernel_w: t.kW,
                      dilation_h: t.dilationH, dilation_w: t.dilationW, stride_h: t.strideH, stride_w: t.strideW,
                      pad_top: t.pads[0], pad_left: t.pads[1], lo: lo, hi: hi)
    }

    /// Planes `planes` through `aimetk_depthwise3x3_planes` (or, `windowed`, `aimetk_depthwise_planes`)
    /// into `y` (other planes left as they are).
    func run(_ t: Case, x: [Float], w: [Float], bias: [Float], residual: [Float]?, lo: Float, hi: Float,
             planes: Range<Int>, isa: aimetk_isa, windowed: Bool = false, into y: inout [Float]) {
        withBuffers(x, w, bias, residual, &y, job: { job(t, $0, $1, $2, $3, $4, lo: lo, hi: hi) },
                    scratch: windowed ? aimetk_depthwise_scratch : aimetk_depthwise3x3_scratch) { k in
            if windowed {
                aimetk_depthwise_planes(k, planes.lowerBound, planes.upperBound, isa)
            } else {
                aimetk_depthwise3x3_planes(k, planes.lowerBound, planes.upperBound, isa)
            }
        }
    }

    /// Every case through a kernel: with and without a residual, three clamps, all planes
    /// and a worker's share (the planes around it must stay untouched), every instruction set.
    func checkDepthwise(_ cases: [Case], windowed: Bool, seed: UInt64) {
        var rng = TestRandom(seed)
        for t in cases {
            let x = rng.floats(t.n * t.c * t.inH * t.inW), w = rng.floats(t.m * t.kH * t.kW), bias = rng.floats(t.m)
            let outCount = t.n * t.m * t.outH * t.outW, planeCount = t.n * t.m
            let residualOptions: [[Float]?] = [nil, rng.floats(outCount)]
            for residual in residualOptions {
                for (lo, hi) in [(-Float.infinity, Float.infinity), (0, 6), (0, .infinity)] {
                    let expected = reference(t, x: x, w: w, bias: bias, residual: residual, lo: lo, hi: hi)
                    for planes in [0..<planeCount, (planeCount / 3)..<max(planeCount / 3 + 1, planeCount * 2 / 3)] {
                        for isa in isas {
                            var y = [Float](repeating: 12345, count: outCount)
                            run(t, x: x, w: w, bias: bias, residual: residual, lo: lo, hi: hi, planes: planes, isa: isa,
                                windowed: windowed, into: &y)
                            let written = (planes.lowerBound * t.outH * t.outW)..<(planes.upperBound * t.outH * t.outW)
                            let what = "\(t), residual \(residual != nil), clamp \(lo)...\(hi), planes \(planes), isa \(isa.rawValue)"
                            if let i = y.indices.first(where: { !written.contains($0) && y[$0] != 12345 }) {
                                XCTFail("\(what): y[\(i)] = \(y[i]) outside the planes")
                            }
                            if let i = written.first(where: { abs(y[$0] - expected[$0]) > 1e-5 * (1 + abs(expected[$0])) }) {
                                XCTFail("\(what): y[\(i)] = \(y[i]), expected \(expected[i])")
                            }
                        }
                    }
                }
            }
        }
    }

    func testDepthwiseThreeByThreeMatchesTheReferenceOnEveryInstructionSet() {
        print("depthwise 3×3: instruction sets tested \(isas.map(\.rawValue)) (best \(aimetk_best_isa().rawValue))")
        let cases: [Case] = [
            // Stride 1, "same" padding (the flat kernel): planes narrower than, equal to, wider than a vector.
            Case(n: 2, c: 5, inH: 7, inW: 7), Case(n: 3, c: 3, inH: 14, inW: 14), Case(c: 2, inH: 5, inW: 9),
            Case(n: 2, c: 17, inH: 2, inW: 2), Case(c: 3, inH: 1, inW: 1), Case(c: 2, inH: 17, inW: 19),
            Case(n: 2, c: 2, inH: 33, inW: 35), Case(c: 3, multiplier: 2, inH: 6, inW: 16),
            Case(c: 2, inH: 8, inW: 8, pads: [0, 1, 2, 1]), Case(c: 2, inH: 8, inW: 5, pads: [2, 1, 0, 1]),
            // Stride 1 otherwise (rows): no padding, wide padding, asymmetric.
            Case(c: 3, inH: 9, inW: 11, pads: [0, 0, 0, 0]), Case(n: 2, c: 2, inH: 6, inW: 21, pads: [2, 2, 2, 2]),
            Case(c: 2, inH: 7, inW: 18, pads: [1, 0, 1, 2]),
            // Stride 2 (rows; two rows per vector up to VL/2 outputs wide), odd and even sizes,
            // asymmetric padding, vertical stride 1 or 3.
            Case(n: 3, c: 3, inH: 5, inW: 16, strideH: 2, strideW: 2), Case(c: 2, inH: 4, inW: 34, strideH: 2, strideW: 2),
            Case(n: 2, c: 5, inH: 9, inW: 10, strideH: 2, strideW: 2), Case(c: 3, inH: 14, inW: 14, strideH: 2, strideW: 2),
            Case(n: 2, c: 3, inH: 37, inW: 40, strideH: 2, strideW: 2), Case(c: 4, inH: 3, inW: 3, strideH: 2, strideW: 2),
            Case(c: 3, inH: 12, inW: 12, strideH: 2, strideW: 2, pads: [0, 0, 1, 1]),
            Case(c: 2, multiplier: 3, inH: 8, inW: 33, strideH: 1, strideW: 2),
            Case(c: 2, inH: 11, inW: 9, strideH: 3, strideW: 2, pads: [1, 1, 0, 0]),
            Case(c: 2, inH: 10, inW: 7, strideH: 2, strideW: 1),
        ]
        checkDepthwise(cases, windowed: false, seed: 41)
    }

    func testDepthwiseAnyWindowMatchesTheReferenceOnEveryInstructionSet() {
        let cases: [Case] = [
            // Stride 1, "same" padding (flat): 5×5 and 7×7 on planes narrower than, equal to, wider than a vector.
            Case(n: 2, c: 3, inH: 7, inW: 7, pads: [2, 2, 2, 2], kH: 5, kW: 5),
            Case(c: 2, inH: 14, inW: 14, pads: [2, 2, 2, 2], kH: 5, kW: 5),
            Case(n: 2, c: 3, inH: 7, inW: 7, pads: [3, 3, 3, 3], kH: 7, kW: 7),
            Case(c: 2, inH: 3, inW: 3, pads: [3, 3, 3, 3], kH: 7, kW: 7),
            Case(c: 2, multiplier: 2, inH: 19, inW: 33, pads: [3, 3, 3, 3], kH: 7, kW: 7),
            Case(c: 3, inH: 9, inW: 10, pads: [1, 2, 3, 2], kH: 5, kW: 5),
            // Dilated, non-square, one-row windows (a 1-D conv), even windows.
            Case(c: 2, inH: 12, inW: 12, pads: [2, 2, 2, 2], dilationH: 2, dilationW: 2),
            Case(c: 2, inH: 11, inW: 20, pads: [4, 2, 4, 2], dilationH: 4, dilationW: 2),
            Case(c: 3, inH: 9, inW: 17, pads: [0, 3, 0, 3], kH: 1, kW: 7),
            Case(c: 3, inH: 1, inW: 40, pads: [0, 2, 0, 2], kH: 1, kW: 5),
            Case(c: 2, inH: 13, inW: 6, pads: [2, 0, 2, 0], kH: 5, kW: 1),
            Case(c: 2, inH: 8, inW: 8, pads: [1, 1, 2, 2], kH: 4, kW: 4),
            Case(c: 2, inH: 10, inW: 9, pads: [1, 2, 1, 0], kH: 3, kW: 5),
            // Stride 1 otherwise (rows): no padding, wider than "same", asymmetric.
            Case(c: 2, inH: 11, inW: 13, pads: [0, 0, 0, 0], kH: 5, kW: 5),
            Case(n: 2, c: 2, inH: 6, inW: 21, pads: [3, 4, 3, 4], kH: 5, kW: 5),
            // Stride 2, odd and even sizes, vertical stride 1 or 3; and the 3×3 windows.
            Case(n: 2, c: 3, inH: 14, inW: 14, strideH: 2, strideW: 2, pads: [2, 2, 2, 2], kH: 5, kW: 5),
            Case(c: 2, inH: 15, inW: 37, strideH: 2, strideW: 2, pads: [1, 2, 2, 1], kH: 5, kW: 5),
            Case(c: 2, inH: 9, inW: 9, strideH: 2, strideW: 2, pads: [3, 3, 3, 3], kH: 7, kW: 7),
            Case(c: 2, multiplier: 3, inH: 8, inW: 33, strideH: 1, strideW: 2, pads: [2, 2, 2, 2], kH: 5, kW: 5),
            Case(c: 2, inH: 11, inW: 9, strideH: 3, strideW: 2, pads: [1, 1, 0, 0]),
            Case(n: 2, c: 5, inH: 7, inW: 7), Case(c: 3, inH: 14, inW: 14, strideH: 2, strideW: 2),
        ]
        checkDepthwise(cases, windowed: true, seed: 43)
    }

    /// `DepthwiseConv` (the executor's entry) agrees with the reference on a geometry
    /// the C kernel runs and with a non-clamp activation applied after it.
    func testDepthwiseConvRunsTheKernelAndOtherActivations() {
        let t = Case(n: 2, c: 3, multiplier: 2, inH: 9, inW: 13, strideH: 2, strideW: 2)
        var rng = TestRandom(5)
        let x = rng.floats(t.n * t.c * t.inH * t.inW), w = rng.floats(t.m * 9), bias = rng.floats(t.m)
        let g = ConvGeometry(inH: t.inH, inW: t.inW, outH: t.outH, outW: t.outW, kH: 3, kW: 3, strideH: 2, strideW: 2,
                             dilationH: 1, dilationW: 1, padTop: 1, padLeft: 1, padBottom: 1, padRight: 1)
        let linear = reference(t, x: x, w: w, bias: bias, residual: nil, lo: -.infinity, hi: .infinity)
        for (activation, f) in [(Activation.leakyRelu(0.1), { (v: Float) in v >= 0 ? v : 0.1 * v }),
                                (Activation.clip(-0.5, 0.5), { (v: Float) in Swift.min(Swift.max(v, -0.5), 0.5) })] {
            var y = [Float](repeating: 0, count: linear.count)
            x.withUnsafeBufferPointer { xb in w.withUnsafeBufferPointer { wb in bias.withUnsafeBufferPointer { bb in
                y.withUnsafeMutableBufferPointer { yb in
                    let conv = DepthwiseConv(job: ConvJob(x: xb.baseAddress!, w: wb.baseAddress!, bias: bb.baseAddress!, g: g,
                                                          channels: t.c, outChannels: t.m, y: yb.baseAddress!,
                                                          activation: activation, residual: nil))
                    XCTAssertTrue(conv.isThreeByThree)
                    conv.run(planes: 0..<(t.n * t.m), workspace: Workspace())
                }
            } } }
            for i in y.indices where abs(y[i] - f(linear[i])) > 1e-5 * (1 + abs(linear[i])) {
                XCTFail("\(activation): y[\(i)] = \(y[i]), expected \(f(linear[i]))")
                break
            }
        }
    }

    /// The dense stride-2 conv `y[n, o] = clamp(Σ_c conv(x[n, c], w[o, c]) + bias + residual)` in double precision.
    func denseReference(_ t: Case, m: Int, x: [Float], w: [Float], bias: [Float], residual: [Float]?, lo: Float,
                        hi: Float) -> [Float] {
        var y = [Float](repeating: 0, count: t.n * m * t.outH * t.outW)
        for image in 0..<t.n {
            for o in 0..<m {
                for oy in 0..<t.outH {
                    for ox in 0..<t.outW {
                        var sum = Double(bias[o])
                        for c in 0..<t.c {
                            for ky in 0..<3 {
                                for kx in 0..<3 {
                                    let iy = oy * 2 - t.pads[0] + ky, ix = ox * 2 - t.pads[1] + kx
                                    guard iy >= 0, iy < t.inH, ix >= 0, ix < t.inW else { continue }
                                    sum += Double(w[((o * t.c + c) * 3 + ky) * 3 + kx])
                                        * Double(x[((image * t.c + c) * t.inH + iy) * t.inW + ix])
                                }
                            }
                        }
                        let index = ((image * m + o) * t.outH + oy) * t.outW + ox
                        if let residual { sum += Double(residual[index]) }
                        y[index] = Swift.min(Swift.max(Float(sum), lo), hi)
                    }
                }
            }
        }
        return y
    }

    func testDenseThreeByThreeStrideTwoMatchesTheReferenceOnEveryInstructionSet() {
        // Output channels in whole and partial blocks of 8; odd and even sizes; padding.
        let cases: [(Case, Int)] = [
            (Case(n: 2, c: 3, inH: 17, inW: 20, strideH: 2, strideW: 2), 32),
            (Case(c: 3, inH: 8, inW: 8, strideH: 2, strideW: 2), 13),
            (Case(n: 2, c: 1, inH: 35, inW: 9, strideH: 2, strideW: 2, pads: [0, 0, 1, 1]), 5),
            (Case(c: 4, inH: 3, inW: 40, strideH: 2, strideW: 2, pads: [1, 1, 0, 0]), 9),
        ]
        var rng = TestRandom(77)
        for (t, m) in cases {
            let x = rng.floats(t.n * t.c * t.inH * t.inW), w = rng.floats(m * t.c * 9), bias = rng.floats(m)
            let plane = t.outH * t.outW, outCount = t.n * m * plane
            let g = ConvGeometry(inH: t.inH, inW: t.inW, outH: t.outH, outW: t.outW, kH: 3, kW: 3, strideH: 2, strideW: 2,
                                 dilationH: 1, dilationW: 1, padTop: t.pads[0], padLeft: t.pads[1],
                                 padBottom: t.pads[2], padRight: t.pads[3])
            for residual in [nil, rng.floats(outCount)] as [[Float]?] {
                for (lo, hi) in [(-Float.infinity, Float.infinity), (0, 6)] {
                    let expected = denseReference(t, m: m, x: x, w: w, bias: bias, residual: residual, lo: lo, hi: hi)
                    // Every image, and output channels 2 ..< m − 1 of the last one (planes around it untouched).
                    let lastImage = t.n - 1, channels = 2..<(m - 1)
                    for isa in isas {
                        var y = [Float](repeating: 12345, count: outCount)
                        withBuffers(x, w, bias, residual, &y, job: { xp, wp, bp, rp, yp in
                            ConvJob(x: xp, w: wp, bias: bp, g: g, channels: t.c, outChannels: m, y: yp, activation: .clip(lo, hi),
                                    residual: rp).kernel
                        }, scratch: aimetk_dense3x3s2_scratch) { k in
                            for image in 0..<lastImage { aimetk_dense3x3s2(k, image, 0, m, isa) }
                            aimetk_dense3x3s2(k, lastImage, channels.lowerBound, channels.upperBound, isa)
                        }
                        let written = { (i: Int) in i < lastImage * m * plane || channels.contains(i / plane - lastImage * m) }
                        let what = "\(t) → \(m), residual \(residual != nil), clamp \(lo)...\(hi), isa \(isa.rawValue)"
                        if let i = y.indices.first(where: { !written($0) && y[$0] != 12345 }) {
                            XCTFail("\(what): y[\(i)] = \(y[i]) outside the channels")
                        }
                        if let i = y.indices.first(where: { written($0) && abs(y[$0] - expected[$0]) > 1e-5 * (1 + abs(expected[$0])) }) {
                            XCTFail("\(what): y[\(i)] = \(y[i]), expected \(expected[i])")
                        }
                    }
                }
            }
            // Through `DenseConv3x3` (one image per item, channels split over 3 parts) with an activation applied after.
            let linear = denseReference(t, m: m, x: x, w: w, bias: bias, residual: nil, lo: -.infinity, hi: .infinity)
            var y = [Float](repeating: 0, count: outCount)
            x.withUnsafeBufferPointer { xb in w.withUnsafeBufferPointer { wb in bias.withUnsafeBufferPointer { bb in
                y.withUnsafeMutableBufferPointer { yb in
                    let job = ConvJob(x: xb.baseAddress!, w: wb.baseAddress!, bias: bb.baseAddress!, g: g, channels: t.c,
                                      outChannels: m, y: yb.baseAddress!, activation: .leakyRelu(0.1), residual: nil)
                    let conv = DenseConv3x3(job, images: 1, workers: 3)
                    conv.run(items: 0..<conv.itemCount(images: t.n), workspace: Workspace())
                }
            } } }
            for i in y.indices where abs(y[i] - (linear[i] >= 0 ? linear[i] : 0.1 * linear[i])) > 1e-5 * (1 + abs(linear[i])) {
                XCTFail("\(t) → \(m) through DenseConv3x3: y[\(i)] = \(y[i]), expected \(linear[i]) before LeakyRelu")
                break
            }
        }
    }

    func testBiasClampIsTheSwiftEpilogueBitForBitOnEveryInstructionSet() {
        var rng = TestRandom(9)
        for n in [0, 1, 5, 15, 16, 17, 40, 100] {
            var x = rng.floats(n, -8, 8)
            if n > 3 { x[2] = .nan; x[3] = -0.0 }
            let residual = rng.floats(n)
            for (lo, hi) in [(-Float.infinity, Float.infinity), (0, 6), (0, .infinity), (-1, 1)] {
                for useResidual in [false, true] {
                    let bias: Float = 0.25
                    let expected = x.indices.map { i -> Float in
                        let v = x[i] + bias + (useResidual ? residual[i] : 0)
                        return Swift.min(Swift.max(v, lo), hi)
                    }
                    for isa in isas {
                        for inPlace in [false, true] {
                            var y = inPlace ? x : [Float](repeating: 7, count: n)
                            let source = x
                            source.withUnsafeBufferPointer { xb in residual.withUnsafeBufferPointer { rb in
                                y.withUnsafeMutableBufferPointer { yb in
                                    guard let out = yb.baseAddress else { return }
                                    aimetk_bias_clamp(inPlace ? UnsafePointer(out) : xb.baseAddress, out, n, bias,
                                                      useResidual ? rb.baseAddress : nil, lo, hi, isa)
                                }
                            } }
                            for i in 0..<n where !(y[i].bitPattern == expected[i].bitPattern || (y[i].isNaN && expected[i].isNaN)) {
                                XCTFail("n \(n), clamp \(lo)...\(hi), residual \(useResidual), in place \(inPlace), isa \(isa.rawValue): " +
                                        "y[\(i)] = \(y[i]), expected \(expected[i])")
                            }
                        }
                    }
                }
            }
        }
    }
}
