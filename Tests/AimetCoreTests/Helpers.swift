import XCTest
@testable import AimetCore

/// Deterministic pseudo-random floats (the core's SplitMix64), so tests need no seeds from outside.
struct TestRandom {
    private var generator: SplitMix64
    init(_ seed: UInt64) { generator = SplitMix64(seed: seed) }
    mutating func next() -> UInt64 { generator.next() }
    /// Uniform in [lo, hi).
    mutating func uniform(_ lo: Float = -1, _ hi: Float = 1) -> Float {
        lo + (hi - lo) * Float(next() >> 40) / Float(1 << 24)
    }
    mutating func floats(_ n: Int, _ lo: Float = -1, _ hi: Float = 1) -> [Float] {
        (0..<n).map { _ in uniform(lo, hi) }
    }
}

func makeLayer(_ kind: LayerKind, _ shape: [Int], groups: Int = 1, bias: Bool = true,
               padded: Bool = false, seed: UInt64 = 1, name: String = "l") -> WeightLayer {
    var rng = TestRandom(seed)
    let w = try! Tensor(shape: shape, data: rng.floats(shape.reduce(1, *)))
    let outChannels = kind.isTransposed ? shape[1] * groups : shape[0]
    return try! WeightLayer(name: name, kind: kind, weight: w,
                            bias: bias ? rng.floats(outChannels) : nil, groups: groups, padded: padded)
}

func makeBatchNorm(_ n: Int, seed: UInt64 = 7, eps: Float = 1e-5) -> BatchNormParams {
    var rng = TestRandom(seed)
    return try! BatchNormParams(name: "bn", gamma: rng.floats(n, 0.5, 2), beta: rng.floats(n),
                                runningMean: rng.floats(n), runningVar: rng.floats(n, 0.1, 3), eps: eps)
}

/// A feature map `[C, H, W]` (batch 1) in row-major order.
struct FeatureMap {
    var c: Int, h: Int, w: Int
    var data: [Float]
    subscript(ch: Int, y: Int, x: Int) -> Float {
        get { data[(ch * h + y) * w + x] }
        set { data[(ch * h + y) * w + x] = newValue }
    }
    static func random(_ c: Int, _ h: Int, _ w: Int, seed: UInt64) -> FeatureMap {
        var rng = TestRandom(seed)
        return FeatureMap(c: c, h: h, w: w, data: rng.floats(c * h * w, -2, 2))
    }
    func map(_ f: (Float) -> Float) -> FeatureMap { FeatureMap(c: c, h: h, w: w, data: data.map(f)) }
}

/// Naive stride-1 reference forward of a layer (oracle for invariants): direct
/// loops over the definition; 1-D convs and linear run as 2-D with H = 1 / 1x1.
func forward(_ layer: WeightLayer, _ x: FeatureMap, padding: Int = 0) -> FeatureMap {
    let s = layer.weight.shape
    let kh = s.count == 4 ? s[2] : 1
    let kw = s.count >= 3 ? s.last! : 1
    let g = layer.groups
    let cout = layer.outChannels, cin = layer.inChannels
    let inPerGroup = cin / g, outPerGroup = cout / g
    let w = layer.weight.data
    if layer.kind.isTransposed {
        // y[o, y+ky, x+kx] += x[i, y, x] * W[i, o % outPerGroup, ky, kx]
        var out = FeatureMap(c: cout, h: x.h + kh - 1, w: x.w + kw - 1,
                             data: [Float](repeating: 0, count: cout * (x.h + kh - 1) * (x.w + kw - 1)))
        for i in 0..<cin {
            let group = i / inPerGroup
            for oj in 0..<outPerGroup {
                let o = group * outPerGroup + oj
                for yy in 0..<x.h { for xx in 0..<x.w { for ky in 0..<kh { for kx in 0..<kw {
                    out[o, yy + ky, xx + kx] += x[i, yy, xx] * w[((i * outPerGroup + oj) * kh + ky) * kw + kx]
                } } } }
            }
        }
        for o in 0..<cout { for t in 0..<(out.h * out.w) { out.data[o * out.h * out.w + t] += layer.bias?[o] ?? 0 } }
        return out
    }
    let ph = s.count == 4 ? padding : 0
    let oh = x.h + 2 * ph - kh + 1, ow = x.w + 2 * padding - kw + 1
    var out = FeatureMap(c: cout, h: oh, w: ow, data: [Float](repeating: 0, count: cout * oh * ow))
    for o in 0..<cout {
        let group = o / outPerGroup
        for yy in 0..<oh { for xx in 0..<ow {
            var acc = Double(layer.bias?[o] ?? 0)
            for j in 0..<inPerGroup { for ky in 0..<kh { for kx in 0..<kw {
                let iy = yy + ky - ph, ix = xx + kx - padding
                guard iy >= 0, iy < x.h, ix >= 0, ix < x.w else { continue }
                acc += Double(x[group * inPerGroup + j, iy, ix]) * Double(w[((o * inPerGroup + j) * kh + ky) * kw + kx])
            } } }
            out[o, yy, xx] = Float(acc)
        } }
    }
    return out
}

func batchNorm(_ bn: BatchNormParams, _ x: FeatureMap) -> FeatureMap {
    var out = x
    for ch in 0..<x.c {
        let sigma = (bn.runningVar[ch] + bn.eps).squareRoot()
        for t in 0..<(x.h * x.w) {
            let i = ch * x.h * x.w + t
            out.data[i] = (x.data[i] - bn.runningMean[ch]) / sigma * bn.gamma[ch] + bn.beta[ch]
        }
    }
    return out
}

func relu(_ x: FeatureMap) -> FeatureMap { x.map { max(0, $0) } }

/// Largest |a - b| relative to the largest |b| (scale-aware comparison).
func relativeError(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count)
    let scale = max(b.map(abs).max() ?? 0, 1e-12)
    return zip(a, b).map { abs($0 - $1) }.max()! / scale
}

func assertClose(_ a: [Float], _ b: [Float], tolerance: Float = 1e-5,
                 file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, b.count, file: file, line: line)
    guard a.count == b.count else { return }
    XCTAssertLessThanOrEqual(relativeError(a, b), tolerance, file: file, line: line)
}

func assertThrows(_ kind: AimetError.Kind, containing text: String, file: StaticString = #filePath,
                  line: UInt = #line, _ body: () throws -> Void) {
    do {
        try body()
        XCTFail("expected an error containing '\(text)'", file: file, line: line)
    } catch let error as AimetError {
        XCTAssertEqual(error.kind, kind, "\(error.message)", file: file, line: line)
        XCTAssertTrue(error.message.contains(text), "'\(error.message)' lacks '\(text)'", file: file, line: line)
    } catch {
        XCTFail("unexpected error \(error)", file: file, line: line)
    }
}
