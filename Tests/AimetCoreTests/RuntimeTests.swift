import Foundation
import Synchronization
import XCTest
@testable import AimetCore

/// Executor tests: every op on small hand-made cases against naive reference
/// loops written here (not the kernels under test), both plans (fused, and
/// exact with a hook), one and two threads; bad inputs; the digits model
/// against onnxruntime.
final class RuntimeTests: XCTestCase {
    // MARK: - Helpers

    private func random(_ shape: [Int], seed: UInt64, _ lo: Float = -1, _ hi: Float = 1) -> Tensor {
        var rng = TestRandom(seed)
        return try! Tensor(shape: shape, data: rng.floats(shape.reduce(1, *), lo, hi))
    }

    /// A graph of one node `op` reading `inputs` (graph inputs first, then
    /// parameters), producing "y".
    private func single(_ op: Op, inputs: [String: Tensor], params: [String: Tensor] = [:], order: [String],
                        attributes: [String: Attribute] = [:], declare: Bool = true) -> Graph {
        var g = Graph()
        g.inputs = inputs.keys.sorted().map { ValueInfo(name: $0, shape: declare ? inputs[$0]!.shape : nil) }
        g.params = params
        g.nodes = [Node(name: "n", op: op, inputs: order, outputs: ["y"], attributes: attributes)]
        g.outputs = [ValueInfo(name: "y", shape: nil)]
        return g
    }

    /// Runs `graph` four ways (fused / exact-with-hook × 1 / 2 threads), checks
    /// they agree, and returns output `name` of the first.
    private func run(_ graph: Graph, _ inputs: [String: Tensor], output name: String = "y", opset: Int = 17,
                     file: StaticString = #filePath, line: UInt = #line) throws -> Tensor {
        var results: [Tensor] = []
        for threads in [1, 2] {
            let executor = try Executor(graph: graph, opset: opset, threads: threads)
            results.append(try XCTUnwrap(executor.run(inputs)[name], file: file, line: line))
            var seen = Set<String>()
            results.append(try XCTUnwrap(executor.run(inputs) { value, _ in seen.insert(value) }[name], file: file, line: line))
            for node in graph.nodes where node.op != .constant {
                XCTAssertTrue(seen.contains(node.output), "hook did not see '\(node.output)'", file: file, line: line)
            }
        }
        for r in results.dropFirst() {
            XCTAssertEqual(r.shape, results[0].shape, file: file, line: line)
            assertClose(r.data, results[0].data, tolerance: 1e-5, file: file, line: line)
        }
        return results[0]
    }

    private func check(_ got: Tensor, _ expected: Tensor, tolerance: Float = 1e-5,
                       file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(got.shape, expected.shape, file: file, line: line)
        if got.shape == expected.shape { assertClose(got.data, expected.data, tolerance: tolerance, file: file, line: line) }
    }

    // MARK: - Reference implementations (direct loops over the definitions)

    /// Conv of x [N, C, H, W] (or [N, C, L]) with w [M, C/g, kH, kW] (or [M, C/g, K]);
    /// pads as ONNX: [begins..., ends...].
    private func refConv(_ x: Tensor, _ w: Tensor, _ b: [Float]?, strides: [Int], pads: [Int], dilations: [Int], group: Int) -> Tensor {
        let oneD = x.rank == 3
        let n = x.shape[0], c = x.shape[1], h = oneD ? 1 : x.shape[2], wd = x.shape.last!
        let m = w.shape[0], cg = w.shape[1], kh = oneD ? 1 : w.shape[2], kw = w.shape.last!
        let (sh, sw) = oneD ? (1, strides[0]) : (strides[0], strides[1])
        let (dh, dw) = oneD ? (1, dilations[0]) : (dilations[0], dilations[1])
        let (pt, pl, pb, pr) = oneD ? (0, pads[0], 0, pads[1]) : (pads[0], pads[1], pads[2], pads[3])
        let oh = (h + pt + pb - ((kh - 1) * dh + 1)) / sh + 1, ow = (wd + pl + pr - ((kw - 1) * dw + 1)) / sw + 1
        var y = [Float](repeating: 0, count: n * m * oh * ow)
        let mg = m / group
        for i in 0..<n { for o in 0..<m { for oy in 0..<oh { for ox in 0..<ow {
            var acc = Double(b?[o] ?? 0)
            let g = o / mg
            for j in 0..<cg { for ky in 0..<kh { for kx in 0..<kw {
                let iy = oy * sh - pt + ky * dh, ix = ox * sw - pl + kx * dw
                guard iy >= 0, iy < h, ix >= 0, ix < wd else { continue }
                acc += Double(x.data[((i * c + g * cg + j) * h + iy) * wd + ix]) * Double(w.data[((o * cg + j) * kh + ky) * kw + kx])
            } } }
            y[((i * m + o) * oh + oy) * ow + ox] = Float(acc)
        } } } }
        return try! Tensor(shape: oneD ? [n, m, ow] : [n, m, oh, ow], data: y)
    }

    /// ConvTranspose by its definition: every input pixel scatters its weighted window.
    private func refConvTranspose(_ x: Tensor, _ w: Tensor, _ b: [Float]?, strides: [Int], pads: [Int], dilations: [Int],
                                  group: Int, outputPadding: [Int]) -> Tensor {
        let oneD = x.rank == 3
        let n = x.shape[0], c = x.shape[1], h = oneD ? 1 : x.shape[2], wd = x.shape.last!
        let mg = w.shape[1], kh = oneD ? 1 : w.shape[2], kw = w.shape.last!, m = mg * group, cg = c / group
        let (sh, sw) = oneD ? (1, strides[0]) : (strides[0], strides[1])
        let (dh, dw) = oneD ? (1, dilations[0]) : (dilations[0], dilations[1])
        let (pt, pl, pb, pr) = oneD ? (0, pads[0], 0, pads[1]) : (pads[0], pads[1], pads[2], pads[3])
        let (oph, opw) = oneD ? (0, outputPadding[0]) : (outputPadding[0], outputPadding[1])
        let oh = sh * (h - 1) + oph + (kh - 1) * dh + 1 - pt - pb
        let ow = sw * (wd - 1) + opw + (kw - 1) * dw + 1 - pl - pr
        var y = [Double](repeating: 0, count: n * m * oh * ow)
        for i in 0..<n { for ci in 0..<c { for iy in 0..<h { for ix in 0..<wd {
            let g = ci / cg
            let v = Double(x.data[((i * c + ci) * h + iy) * wd + ix])
            for o in 0..<mg { for ky in 0..<kh { for kx in 0..<kw {
                let yy = iy * sh - pt + ky * dh, xx = ix * sw - pl + kx * dw
                guard yy >= 0, yy < oh, xx >= 0, xx < ow else { continue }
                y[((i * m + g * mg + o) * oh + yy) * ow + xx] += v * Double(w.data[((ci * mg + o) * kh + ky) * kw + kx])
            } } }
        } } } }
        for i in 0..<n { for o in 0..<m { for p in 0..<(oh * ow) { y[(i * m + o) * oh * ow + p] += Double(b?[o] ?? 0) } } }
        return try! Tensor(shape: oneD ? [n, m, ow] : [n, m, oh, ow], data: y.map { Float($0) })
    }

    /// Pooling over a window; out size from the ONNX formula (floor or ceil,
    /// dropping a last window that starts in the end padding).
    private func refPool(_ x: Tensor, max isMax: Bool, kernel: [Int], strides: [Int], pads: [Int], dilations: [Int],
                         ceil: Bool, includePad: Bool) -> Tensor {
        let oneD = x.rank == 3
        let n = x.shape[0], c = x.shape[1], h = oneD ? 1 : x.shape[2], wd = x.shape.last!
        let (kh, kw) = oneD ? (1, kernel[0]) : (kernel[0], kernel[1])
        let (sh, sw) = oneD ? (1, strides[0]) : (strides[0], strides[1])
        let (dh, dw) = oneD ? (1, dilations[0]) : (dilations[0], dilations[1])
        let (pt, pl, pb, pr) = oneD ? (0, pads[0], 0, pads[1]) : (pads[0], pads[1], pads[2], pads[3])
        func size(_ i: Int, _ k: Int, _ s: Int, _ d: Int, _ p0: Int, _ p1: Int) -> Int {
            let span = i + p0 + p1 - ((k - 1) * d + 1)
            var o = (ceil ? (span + s - 1) / s : span / s) + 1
            if ceil && (o - 1) * s >= i + p0 { o -= 1 }
            return o
        }
        let oh = size(h, kh, sh, dh, pt, pb), ow = size(wd, kw, sw, dw, pl, pr)
        var y = [Float](repeating: 0, count: n * c * oh * ow)
        for p in 0..<(n * c) { for oy in 0..<oh { for ox in 0..<ow {
            var best = -Float.infinity, sum: Double = 0, count = 0
            for ky in 0..<kh { for kx in 0..<kw {
                let iy = oy * sh - pt + ky * dh, ix = ox * sw - pl + kx * dw
                let inside = iy >= 0 && iy < h && ix >= 0 && ix < wd
                let inPadded = iy >= -pt && iy < h + pb && ix >= -pl && ix < wd + pr
                if inside {
                    let v = x.data[(p * h + iy) * wd + ix]
                    best = max(best, v)
                    sum += Double(v)
                }
                if inside || (includePad && inPadded) { count += 1 }
            } }
            y[(p * oh + oy) * ow + ox] = isMax ? best : Float(sum / Double(max(count, 1)))
        } } }
        return try! Tensor(shape: oneD ? [n, c, ow] : [n, c, oh, ow], data: y)
    }

    /// numpy broadcasting of a binary function.
    private func refBroadcast(_ a: Tensor, _ b: Tensor, _ f: (Float, Float) -> Float) -> Tensor {
        let r = max(a.rank, b.rank)
        let sa = [Int](repeating: 1, count: r - a.rank) + a.shape, sb = [Int](repeating: 1, count: r - b.rank) + b.shape
        let out = zip(sa, sb).map { max($0, $1) }
        let total = out.reduce(1, *)
        var y = [Float](repeating: 0, count: total)
        for flat in 0..<total {
            var rest = flat, ia = 0, ib = 0, stepA = 1, stepB = 1
            for axis in stride(from: r - 1, through: 0, by: -1) {
                let i = rest % out[axis]
                rest /= out[axis]
                ia += (sa[axis] == 1 ? 0 : i) * stepA
                ib += (sb[axis] == 1 ? 0 : i) * stepB
                stepA *= sa[axis]
                stepB *= sb[axis]
            }
            y[flat] = f(a.data[ia], b.data[ib])
        }
        return try! Tensor(shape: out, data: y)
    }

    private func refMatMul(_ a: [Float], _ b: [Float], m: Int, k: Int, n: Int, transA: Bool = false, transB: Bool = false) -> [Float] {
        var y = [Float](repeating: 0, count: m * n)
        for i in 0..<m { for j in 0..<n {
            var acc: Double = 0
            for t in 0..<k { acc += Double(transA ? a[t * m + i] : a[i * k + t]) * Double(transB ? b[j * k + t] : b[t * n + j]) }
            y[i * n + j] = Float(acc)
        } }
        return y
    }

    // MARK: - Conv

    private func convCase(x: [Int], w: [Int], group: Int = 1, strides: [Int]? = nil, pads: [Int]? = nil,
                          dilations: [Int]? = nil, bias: Bool = true, seed: UInt64 = 1,
                          file: StaticString = #filePath, line: UInt = #line) throws {
        let r = x.count - 2
        let xs = random(x, seed: seed), ws = random(w, seed: seed + 1)
        let b = bias ? random([w[0]], seed: seed + 2) : nil
        var attributes: [String: Attribute] = ["group": .int(group)]
        if let strides { attributes["strides"] = .ints(strides) }
        if let pads { attributes["pads"] = .ints(pads) }
        if let dilations { attributes["dilations"] = .ints(dilations) }
        var params = ["w": ws]
        if let b { params["b"] = b }
        let g = single(.conv, inputs: ["x": xs], params: params, order: bias ? ["x", "w", "b"] : ["x", "w"], attributes: attributes)
        let got = try run(g, ["x": xs], file: file, line: line)
        let expected = refConv(xs, ws, b?.data, strides: strides ?? [Int](repeating: 1, count: r),
                               pads: pads ?? [Int](repeating: 0, count: 2 * r),
                               dilations: dilations ?? [Int](repeating: 1, count: r), group: group)
        check(got, expected, file: file, line: line)
    }

    func testConvAsymmetricPadsStridesDilations() throws {
        try convCase(x: [3, 3, 9, 10], w: [5, 3, 3, 2], strides: [2, 1], pads: [1, 0, 2, 1], dilations: [1, 2])
        try convCase(x: [2, 4, 7, 7], w: [6, 2, 3, 3], group: 2, pads: [1, 1, 1, 1], seed: 3)
        try convCase(x: [2, 3, 6, 5], w: [4, 3, 1, 1], bias: false, seed: 5)
        try convCase(x: [2, 3, 6, 5], w: [4, 3, 1, 1], strides: [2, 2], seed: 6)
        // A single image: the workers share out output channels.
        try convCase(x: [1, 5, 9, 8], w: [6, 5, 3, 3], strides: [2, 1], pads: [1, 1, 0, 0], seed: 8)
        try convCase(x: [1, 4, 40, 40], w: [6, 4, 3, 3], seed: 9)
        // 1-D: strides, pads, dilation, groups.
        try convCase(x: [2, 4, 11], w: [6, 2, 3], group: 2, strides: [2], pads: [2, 1], dilations: [2], seed: 7)
    }

    func testConvLargePlanesUseTilesAndSmallPlanesShareGEMMs() throws {
        // 40×40 output, k = 16·9: several column tiles per image.
        try convCase(x: [2, 16, 40, 40], w: [8, 16, 3, 3], pads: [1, 1, 1, 1], seed: 11)
        // 3×3 planes: several images per GEMM (pointwise and im2col).
        try convCase(x: [7, 5, 3, 3], w: [6, 5, 1, 1], seed: 12)
        try convCase(x: [7, 5, 4, 4], w: [6, 5, 3, 3], pads: [1, 1, 0, 0], seed: 13)
    }

    /// 3×3 stride-1 convs with ≥ 16 channels take the Winograd F(4×4, 3×3) path:
    /// odd output sizes (padding tiles), asymmetric pads, several images per
    /// block, several row blocks per image, and a fused residual + Relu.
    func testWinogradConv() throws {
        try convCase(x: [2, 16, 9, 11], w: [20, 16, 3, 3], pads: [1, 1, 1, 1], seed: 14)
        try convCase(x: [3, 24, 6, 5], w: [16, 24, 3, 3], pads: [0, 2, 1, 0], seed: 15)
        try convCase(x: [1, 16, 60, 70], w: [16, 16, 3, 3], pads: [1, 1, 1, 1], seed: 16)
        try convCase(x: [5, 16, 3, 4], w: [16, 16, 3, 3], seed: 17)
        try convCase(x: [6, 17, 4, 5], w: [18, 17, 3, 3], pads: [1, 1, 1, 1], seed: 19)
        var b = GraphBuilder(input: "x", shape: [1, 16, 7, 9])
        b.conv("c", "x", cin: 16, cout: 16, k: 3, pad: 1, bias: true)
        b.op(.add, "sum", ["c", "x"])
        b.op(.relu, "y", ["sum"])
        b.output("y")
        let executor = try Executor(graph: b.graph)
        XCTAssertEqual(executor.program.fused.steps.map(\.op), ["Conv+Add+Relu"])
        let x = random([3, 16, 7, 9], seed: 18)
        let conv = refConv(x, b.graph.params["c.weight"]!, b.graph.params["c.bias"]!.data, strides: [1, 1], pads: [1, 1, 1, 1],
                           dilations: [1, 1], group: 1)
        check(try run(b.graph, ["x": x]), try Tensor(shape: x.shape, data: zip(conv.data, x.data).map { max($0 + $1, 0) }))
    }

    func testDepthwiseConv() throws {
        // The vectorized 3×3 kernel: stride 1 and 2, widths around multiples of 8, asymmetric pads.
        for (k, width) in [5, 8, 13, 16, 23].enumerated() {
            try convCase(x: [2, 3, 6, width], w: [3, 1, 3, 3], group: 3, pads: [1, 1, 1, 1], seed: UInt64(20 + k))
            try convCase(x: [2, 3, 7, width], w: [3, 1, 3, 3], group: 3, strides: [2, 2], pads: [1, 1, 1, 1], seed: UInt64(30 + k))
        }
        try convCase(x: [1, 2, 9, 17], w: [2, 1, 3, 3], group: 2, strides: [1, 2], pads: [0, 1, 2, 0], seed: 40)
        try convCase(x: [1, 2, 9, 17], w: [2, 1, 3, 3], group: 2, strides: [3, 1], pads: [2, 0, 0, 2], seed: 41)
        // Channel multiplier 2, 5×5, dilation (the generic kernel), 1-D depthwise.
        try convCase(x: [2, 3, 8, 9], w: [6, 1, 3, 3], group: 3, pads: [1, 1, 1, 1], seed: 42)
        try convCase(x: [2, 2, 9, 9], w: [2, 1, 5, 5], group: 2, strides: [2, 2], pads: [2, 2, 2, 2], seed: 43)
        try convCase(x: [2, 2, 9, 9], w: [2, 1, 3, 3], group: 2, pads: [2, 2, 2, 2], dilations: [2, 2], seed: 44)
        try convCase(x: [2, 4, 12], w: [4, 1, 3], group: 4, pads: [1, 1], seed: 45)
    }

    func testConvAutoPad() throws {
        let x = random([1, 2, 7, 8], seed: 50), w = random([3, 2, 3, 3], seed: 51)
        // SAME: out = ceil(in / s); total pad (out-1)·s + k − in: rows (4-1)·2+3−7 = 2, cols (4-1)·2+3−8 = 1.
        for (mode, pads) in [("SAME_UPPER", [1, 0, 1, 1]), ("SAME_LOWER", [1, 1, 1, 0]), ("VALID", [0, 0, 0, 0])] {
            let g = single(.conv, inputs: ["x": x], params: ["w": w], order: ["x", "w"],
                           attributes: ["auto_pad": .string(mode), "strides": .ints([2, 2])])
            check(try run(g, ["x": x]), refConv(x, w, nil, strides: [2, 2], pads: pads, dilations: [1, 1], group: 1))
        }
    }

    // MARK: - ConvTranspose

    private func convTransposeCase(x: [Int], w: [Int], group: Int = 1, strides: [Int], pads: [Int], dilations: [Int],
                                   outputPadding: [Int], seed: UInt64, file: StaticString = #filePath, line: UInt = #line) throws {
        let xs = random(x, seed: seed), ws = random(w, seed: seed + 1), b = random([w[1] * group], seed: seed + 2)
        let g = single(.convTranspose, inputs: ["x": xs], params: ["w": ws, "b": b], order: ["x", "w", "b"],
                       attributes: ["group": .int(group), "strides": .ints(strides), "pads": .ints(pads),
                                    "dilations": .ints(dilations), "output_padding": .ints(outputPadding)])
        let expected = refConvTranspose(xs, ws, b.data, strides: strides, pads: pads, dilations: dilations,
                                        group: group, outputPadding: outputPadding)
        check(try run(g, ["x": xs], file: file, line: line), expected, file: file, line: line)
    }

    func testConvTranspose() throws {
        try convTransposeCase(x: [2, 3, 4, 5], w: [3, 4, 3, 3], strides: [2, 2], pads: [1, 0, 1, 1], dilations: [1, 1],
                              outputPadding: [1, 0], seed: 60)
        try convTransposeCase(x: [2, 4, 3, 4], w: [4, 2, 2, 3], group: 2, strides: [1, 2], pads: [0, 1, 0, 0],
                              dilations: [2, 1], outputPadding: [0, 1], seed: 61)
        try convTransposeCase(x: [2, 2, 6], w: [2, 3, 4], strides: [3], pads: [1, 2], dilations: [1], outputPadding: [2], seed: 62)
        // output_shape: the padding follows (total = 2·(4−1) + 3 − 8 = 1 → begin 1, end 0 unless SAME_UPPER).
        let x = random([1, 2, 4, 4], seed: 63), w = random([2, 3, 3, 3], seed: 64)
        let g = single(.convTranspose, inputs: ["x": x], params: ["w": w], order: ["x", "w"],
                       attributes: ["strides": .ints([2, 2]), "output_shape": .ints([8, 8])])
        check(try run(g, ["x": x]), refConvTranspose(x, w, nil, strides: [2, 2], pads: [1, 1, 0, 0], dilations: [1, 1],
                                                     group: 1, outputPadding: [0, 0]))
    }

    // MARK: - Gemm, MatMul

    func testGemm() throws {
        // Few rows, many columns: the workers share out columns.
        let wide = random([2, 300], seed: 69), wideB = random([2000, 300], seed: 68)
        let gw = single(.gemm, inputs: ["a": wide], params: ["b": wideB], order: ["a", "b"], attributes: ["transB": .int(1)])
        check(try run(gw, ["a": wide]), try Tensor(shape: [2, 2000], data: refMatMul(wide.data, wideB.data, m: 2, k: 300, n: 2000, transB: true)))
        let a = random([4, 3], seed: 70), b = random([5, 3], seed: 71)
        for (cShape, cSeed) in [([5], UInt64(72)), ([4, 1], 73), ([], 74), ([4, 5], 75)] {
            let c = random(cShape, seed: cSeed)
            let g = single(.gemm, inputs: ["a": a], params: ["b": b, "c": c], order: ["a", "b", "c"],
                           attributes: ["alpha": .float(0.5), "beta": .float(2), "transB": .int(1)])
            let ab = refMatMul(a.data, b.data, m: 4, k: 3, n: 5, transB: true)
            let cb = refBroadcast(try Tensor(shape: [4, 5], repeating: 0), c, { $0 + $1 })
            check(try run(g, ["a": a]), try Tensor(shape: [4, 5], data: (0..<20).map { 0.5 * ab[$0] + 2 * cb.data[$0] }))
        }
        // transA, no C, B a runtime input.
        let at = random([3, 4], seed: 76), bt = random([3, 5], seed: 77)
        var g = single(.gemm, inputs: ["a": at, "b": bt], order: ["a", "b"], attributes: ["transA": .int(1)])
        g.inputs = [ValueInfo(name: "a", shape: [3, 4]), ValueInfo(name: "b", shape: [3, 5])]
        let executor = try Executor(graph: g)
        check(try XCTUnwrap(executor.run(["a": at, "b": bt])["y"]),
              try Tensor(shape: [4, 5], data: refMatMul(at.data, bt.data, m: 4, k: 3, n: 5, transA: true)))
    }

    func testMatMul() throws {
        // [2, 3, 4] × [4, 5]: batch axes fold into rows.
        let a = random([2, 3, 4], seed: 80), b = random([4, 5], seed: 81)
        let g = single(.matMul, inputs: ["a": a], params: ["b": b], order: ["a", "b"])
        let rows = refMatMul(a.data, b.data, m: 6, k: 4, n: 5)
        check(try run(g, ["a": a]), try Tensor(shape: [2, 3, 5], data: rows))
        // Two rows, many columns: the workers share out columns.
        let aw = random([2, 300], seed: 87), bw = random([300, 2000], seed: 88)
        let gw = single(.matMul, inputs: ["a": aw], params: ["b": bw], order: ["a", "b"])
        check(try run(gw, ["a": aw]), try Tensor(shape: [2, 2000], data: refMatMul(aw.data, bw.data, m: 2, k: 300, n: 2000)))
        // Broadcast batches [2, 1, 3, 4] × [5, 4, 2] → [2, 5, 3, 2].
        let a2 = random([2, 1, 3, 4], seed: 82), b2 = random([5, 4, 2], seed: 83)
        let g2 = single(.matMul, inputs: ["a": a2], params: ["b": b2], order: ["a", "b"])
        var expected: [Float] = []
        for i in 0..<2 { for j in 0..<5 {
            expected += refMatMul(Array(a2.data[(i * 12)..<(i * 12 + 12)]), Array(b2.data[(j * 8)..<(j * 8 + 8)]), m: 3, k: 4, n: 2)
        } }
        check(try run(g2, ["a": a2]), try Tensor(shape: [2, 5, 3, 2], data: expected))
        // 1-D operands: [4] × [3, 4, 2] → [3, 2]; [2, 4] × [4] → [2].
        let v = random([4], seed: 84), b3 = random([3, 4, 2], seed: 85)
        let g3 = single(.matMul, inputs: ["v": v], params: ["b": b3], order: ["v", "b"])
        check(try run(g3, ["v": v]), try Tensor(shape: [3, 2], data: (0..<3).flatMap {
            refMatMul(v.data, Array(b3.data[($0 * 8)..<($0 * 8 + 8)]), m: 1, k: 4, n: 2)
        }))
        let a4 = random([2, 4], seed: 86)
        let g4 = single(.matMul, inputs: ["a": a4], params: ["v": v], order: ["a", "v"])
        check(try run(g4, ["a": a4]), try Tensor(shape: [2], data: refMatMul(a4.data, v.data, m: 2, k: 4, n: 1)))
    }

    // MARK: - Elementwise

    func testBinaryOpsBroadcast() throws {
        let x = random([2, 3, 4, 5], seed: 90, 0.5, 2)
        let ops: [(Op, (Float, Float) -> Float)] = [(.add, { $0 + $1 }), (.sub, { $0 - $1 }), (.mul, { $0 * $1 }),
                                                    (Op(onnxType: "Div"), { $0 / $1 })]
        for (k, shape) in [[3, 1, 1], [5], [2, 1, 4, 1], [], [2, 3, 4, 5], [1, 3, 4, 1]].enumerated() {
            let c = random(shape, seed: UInt64(91 + k), 0.5, 2)
            for (op, f) in ops {
                check(try run(single(op, inputs: ["x": x], params: ["c": c], order: ["x", "c"]), ["x": x]), refBroadcast(x, c, f))
                check(try run(single(op, inputs: ["x": x], params: ["c": c], order: ["c", "x"]), ["x": x]), refBroadcast(c, x, f))
            }
        }
        // Both operands broadcast: [3, 1] + [1, 4].
        let a = random([2, 3, 1], seed: 99), b = random([1, 4], seed: 100)
        check(try run(single(.add, inputs: ["a": a], params: ["b": b], order: ["a", "b"]), ["a": a]), refBroadcast(a, b, +))
    }

    func testActivations() throws {
        let x = random([2, 3, 4, 5], seed: 110, -8, 8)
        func unary(_ op: Op, _ attributes: [String: Attribute] = [:], _ f: (Float) -> Float) throws {
            let g = single(op, inputs: ["x": x], order: ["x"], attributes: attributes)
            check(try run(g, ["x": x]), try Tensor(shape: x.shape, data: x.data.map(f)))
        }
        try unary(.relu) { max($0, 0) }
        try unary(.leakyRelu, ["alpha": .float(0.2)]) { $0 >= 0 ? $0 : 0.2 * $0 }
        try unary(.leakyRelu) { $0 >= 0 ? $0 : 0.01 * $0 }
        try unary(.sigmoid) { 1 / (1 + exp(-$0)) }
        // Clip as attributes (opset < 11, graphs built in memory).
        try unary(.clip, ["min": .float(-1), "max": .float(6)]) { min(max($0, -1), 6) }
        try unary(.clip, ["max": .float(2)]) { min($0, 2) }
        // Clip bounds as initializers, a Constant node, or omitted.
        var g = single(.clip, inputs: ["x": x], params: ["lo": try Tensor(shape: [], data: [0])], order: ["x", "lo", "hi"])
        g.nodes.insert(Node(name: "c", op: .constant, inputs: [], outputs: ["hi"], attributes: ["value": .tensor(try Tensor(shape: [], data: [6]))]), at: 0)
        check(try run(g, ["x": x]), try Tensor(shape: x.shape, data: x.data.map { min(max($0, 0), 6) }))
        let g2 = single(.clip, inputs: ["x": x], params: ["hi": try Tensor(shape: [1], data: [3])], order: ["x", "", "hi"])
        check(try run(g2, ["x": x]), try Tensor(shape: x.shape, data: x.data.map { min($0, 3) }))
        // min > max: ONNX's min(max(x, min), max) is max everywhere.
        try unary(.clip, ["min": .float(1), "max": .float(-1)]) { _ in -1 }
    }

    func testPRelu() throws {
        let x = random([2, 3, 4, 5], seed: 120)
        // [C, 1, 1]: per channel (PyTorch's export).
        let s = random([3, 1, 1], seed: 121)
        let g = single(.prelu, inputs: ["x": x], params: ["s": s], order: ["x", "s"])
        check(try run(g, ["x": x]), refBroadcast(x, s) { $0 < 0 ? $0 * $1 : $0 })
        // [5]: ONNX broadcasting aligns it with the last axis.
        let s2 = random([5], seed: 122)
        let g2 = single(.prelu, inputs: ["x": x], params: ["s": s2], order: ["x", "s"])
        check(try run(g2, ["x": x]), refBroadcast(x, s2) { $0 < 0 ? $0 * $1 : $0 })
        // [3] does not broadcast to [2, 3, 4, 5] under ONNX rules.
        let g3 = single(.prelu, inputs: ["x": x], params: ["s": random([3], seed: 123)], order: ["x", "s"])
        assertThrows(.shapeMismatch, containing: "slope") { _ = try Executor(graph: g3).run(["x": x]) }
    }

    func testBatchNormalizationAndFusedActivation() throws {
        let x = random([2, 3, 4, 4], seed: 130)
        let gamma = random([3], seed: 131, 0.5, 2), beta = random([3], seed: 132)
        let mean = random([3], seed: 133), variance = random([3], seed: 134, 0.1, 2)
        var g = single(.batchNormalization, inputs: ["x": x], params: ["g": gamma, "b": beta, "m": mean, "v": variance],
                       order: ["x", "g", "b", "m", "v"], attributes: ["epsilon": .float(1e-3)])
        var expected = x.data
        for i in 0..<expected.count {
            let c = (i / 16) % 3
            expected[i] = (expected[i] - mean.data[c]) / (variance.data[c] + 1e-3).squareRoot() * gamma.data[c] + beta.data[c]
        }
        check(try run(g, ["x": x]), try Tensor(shape: x.shape, data: expected))
        // BN → Relu runs as one fused step without a hook.
        g.nodes[0].outputs = ["t"]
        g.nodes.append(Node(name: "r", op: .relu, inputs: ["t"], outputs: ["y"]))
        check(try run(g, ["x": x]), try Tensor(shape: x.shape, data: expected.map { max($0, 0) }))
    }

    func testSoftmaxAxisSemanticsByOpset() throws {
        let x = random([2, 3, 4], seed: 140, -3, 3)
        let g = single(.softmax, inputs: ["x": x], order: ["x"], attributes: ["axis": .int(1)])
        // Opset 13+: over axis 1 alone.
        var v13 = x.data
        for i in 0..<2 { for k in 0..<4 {
            let idx = (0..<3).map { (i * 3 + $0) * 4 + k }
            let top = idx.map { x.data[$0] }.max()!
            let sum = idx.reduce(Float(0)) { $0 + exp(x.data[$1] - top) }
            for j in idx { v13[j] = exp(x.data[j] - top) / sum }
        } }
        check(try run(g, ["x": x], opset: 13), try Tensor(shape: x.shape, data: v13))
        // Opset < 13: flattened to [2, 12], over the 12.
        var v11 = x.data
        for i in 0..<2 {
            let row = Array(x.data[(i * 12)..<(i * 12 + 12)])
            let top = row.max()!
            let sum = row.reduce(Float(0)) { $0 + exp($1 - top) }
            for j in 0..<12 { v11[i * 12 + j] = exp(row[j] - top) / sum }
        }
        check(try run(g, ["x": x], opset: 11), try Tensor(shape: x.shape, data: v11))
        // A long row: the sum runs in float64 (float32 accumulation drifts by ~1e-4 here).
        let long = random([1, 100_000], seed: 141, -5, 5)
        let soft = try run(single(.softmax, inputs: ["x": long], order: ["x"]), ["x": long])
        let top = Double(long.data.max()!)
        let sum = long.data.reduce(0.0) { $0 + Foundation.exp(Double($1) - top) }
        let worst = zip(soft.data, long.data).map { abs(Double($0) / (Foundation.exp(Double($1) - top) / sum) - 1) }.max()!
        XCTAssertLessThan(worst, 2e-6)
        // Default axis 13+: the last.
        let g2 = single(.softmax, inputs: ["x": x], order: ["x"])
        let out = try run(g2, ["x": x])
        for row in 0..<6 { XCTAssertEqual(out.data[(row * 4)..<(row * 4 + 4)].reduce(0, +), 1, accuracy: 1e-6) }
    }

    // MARK: - Pooling

    func testPooling() throws {
        let x = random([2, 3, 9, 10], seed: 150)
        for (k, (kernel, strides, pads, dilations, ceil)) in [
            ([3, 3], [2, 2], [1, 1, 1, 1], [1, 1], false),
            ([3, 3], [2, 2], [0, 0, 0, 0], [1, 1], true),
            ([2, 3], [2, 3], [1, 0, 0, 1], [1, 1], true),
            ([2, 2], [1, 2], [0, 1, 1, 0], [2, 1], true),
            ([3, 3], [1, 1], [1, 1, 1, 1], [1, 1], false),
        ].enumerated() {
            var attributes: [String: Attribute] = ["kernel_shape": .ints(kernel), "strides": .ints(strides), "pads": .ints(pads),
                                                   "dilations": .ints(dilations), "ceil_mode": .int(ceil ? 1 : 0)]
            check(try run(single(.maxPool, inputs: ["x": x], order: ["x"], attributes: attributes), ["x": x]),
                  refPool(x, max: true, kernel: kernel, strides: strides, pads: pads, dilations: dilations, ceil: ceil, includePad: false),
                  file: #filePath, line: UInt(#line))
            for include in [false, true] {
                attributes["count_include_pad"] = .int(include ? 1 : 0)
                check(try run(single(.averagePool, inputs: ["x": x], order: ["x"], attributes: attributes), ["x": x]),
                      refPool(x, max: false, kernel: kernel, strides: strides, pads: pads, dilations: dilations, ceil: ceil, includePad: include))
            }
            _ = k
        }
        // 1-D pooling, and a wide row (the vectorized stride-2 path).
        let x1 = random([2, 2, 11], seed: 151)
        check(try run(single(.maxPool, inputs: ["x": x1], order: ["x"],
                             attributes: ["kernel_shape": .ints([3]), "strides": .ints([2]), "pads": .ints([1, 1])]), ["x": x1]),
              refPool(x1, max: true, kernel: [3], strides: [2], pads: [1, 1], dilations: [1], ceil: false, includePad: false))
        let x2 = random([1, 2, 5, 45], seed: 152)
        check(try run(single(.maxPool, inputs: ["x": x2], order: ["x"],
                             attributes: ["kernel_shape": .ints([3, 3]), "strides": .ints([2, 2]), "pads": .ints([1, 1, 1, 1])]), ["x": x2]),
              refPool(x2, max: true, kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], dilations: [1, 1], ceil: false, includePad: false))
        // Global average.
        let got = try run(single(.globalAveragePool, inputs: ["x": x], order: ["x"]), ["x": x])
        XCTAssertEqual(got.shape, [2, 3, 1, 1])
        for p in 0..<6 { XCTAssertEqual(got.data[p], x.data[(p * 90)..<(p * 90 + 90)].reduce(0, +) / 90, accuracy: 1e-5) }
    }

    // MARK: - Shapes

    func testFlattenReshapeConcatIdentityDropout() throws {
        let x = random([2, 3, 4, 5], seed: 160)
        for (axis, shape) in [(0, [1, 120]), (2, [6, 20]), (-1, [24, 5]), (4, [120, 1])] {
            let got = try run(single(.flatten, inputs: ["x": x], order: ["x"], attributes: ["axis": .int(axis)]), ["x": x])
            XCTAssertEqual(got.shape, shape)
            XCTAssertEqual(got.data, x.data)
        }
        // Reshape: an int64 initializer with 0 (copy) and -1 (inferred); the in-memory attribute form.
        var g = single(.reshape, inputs: ["x": x], order: ["x", "s"])
        g.constants = ["s"]
        g.intConstants["s"] = IntTensor(shape: [3], values: [0, -1, 5])
        XCTAssertEqual(try run(g, ["x": x]).shape, [2, 12, 5])
        let g2 = single(.reshape, inputs: ["x": x], order: ["x"], attributes: ["shape": .ints([-1, 60])])
        XCTAssertEqual(try run(g2, ["x": x]).shape, [2, 60])
        // allowzero = 1: a 0 is a real 0 (here invalid: 120 elements do not fit [0, 120]).
        let g3 = single(.reshape, inputs: ["x": x], order: ["x"], attributes: ["shape": .ints([0, 120]), "allowzero": .int(1)])
        assertThrows(.shapeMismatch, containing: "cannot reshape") { _ = try Executor(graph: g3).run(["x": x]) }
        // Concat on axis 1 and -1, with a constant operand.
        let c = random([2, 2, 4, 5], seed: 161)
        let cat = try run(single(.concat, inputs: ["x": x], params: ["c": c], order: ["x", "c"], attributes: ["axis": .int(1)]), ["x": x])
        XCTAssertEqual(cat.shape, [2, 5, 4, 5])
        XCTAssertEqual(Array(cat.data[0..<60]), Array(x.data[0..<60]))
        XCTAssertEqual(Array(cat.data[60..<100]), Array(c.data[0..<40]))
        let c2 = random([2, 3, 4, 2], seed: 162)
        let cat2 = try run(single(.concat, inputs: ["x": x], params: ["c": c2], order: ["x", "c"], attributes: ["axis": .int(-1)]), ["x": x])
        XCTAssertEqual(cat2.shape, [2, 3, 4, 7])
        XCTAssertEqual(Array(cat2.data[0..<7]), Array(x.data[0..<5]) + Array(c2.data[0..<2]))
        // Identity, Dropout with an (absent) mask.
        XCTAssertEqual(try run(single(.identity, inputs: ["x": x], order: ["x"]), ["x": x]).data, x.data)
        var d = single(.dropout, inputs: ["x": x], order: ["x"])
        d.nodes[0].outputs = ["y", "mask"]
        XCTAssertEqual(try run(d, ["x": x]).data, x.data)
        // training_mode (opset 12+): a constant false runs as Identity, true is refused.
        for (flag, ok) in [(0, true), (1, false)] {
            var t = single(.dropout, inputs: ["x": x], params: ["ratio": try Tensor(shape: [], data: [0.5])], order: ["x", "ratio", "training"])
            t.constants = ["training"]
            t.intConstants["training"] = IntTensor(shape: [], values: [flag])
            if ok {
                XCTAssertEqual(try run(t, ["x": x]).data, x.data)
            } else {
                assertThrows(.unsupported, containing: "training_mode = 1") { _ = try Executor(graph: t) }
            }
        }
    }

    // MARK: - Fusion and plans

    /// conv → bn → add(skip) → relu, plus a conv → bn whose output is also a
    /// graph output (the BN folds, the Relu after it stays a separate step).
    func testFusedResidualBlockMatchesReference() throws {
        var b = GraphBuilder(input: "x", shape: [1, 4, 6, 6])
        b.conv("c1", "x", cin: 4, cout: 4, k: 3, pad: 1, bias: true)
        b.bn("bn1", "c1", channels: 4)
        b.op(.add, "sum", ["bn1", "x"])
        b.op(.relu, "y", ["sum"])
        b.conv("c2", "y", cin: 4, cout: 2, k: 1)
        b.bn("bn2", "c2", channels: 2)
        b.op(.relu, "z", ["bn2"])
        b.output("z", "bn2")
        let x = random([3, 4, 6, 6], seed: 170)
        let g = b.graph
        let executor = try Executor(graph: g)
        XCTAssertEqual(executor.program.fused.steps.map(\.op), ["Conv+BatchNormalization+Add+Relu", "Conv+BatchNormalization", "Relu"])
        // Reference, node by node.
        func bn(_ t: Tensor, _ name: String) -> Tensor {
            func p(_ field: String) -> [Float] { g.params["\(name).\(field)"]!.data }
            let (gamma, beta, mean, variance) = (p("weight"), p("bias"), p("running_mean"), p("running_var"))
            let c = t.shape[1], plane = t.count / t.shape[0] / c
            return try! Tensor(shape: t.shape, data: t.data.enumerated().map { i, v in
                let ch = (i / plane) % c
                return (v - mean[ch]) / (variance[ch] + 1e-5).squareRoot() * gamma[ch] + beta[ch]
            })
        }
        let c1 = refConv(x, g.params["c1.weight"]!, g.params["c1.bias"]!.data, strides: [1, 1], pads: [1, 1, 1, 1], dilations: [1, 1], group: 1)
        let y = try Tensor(shape: x.shape, data: zip(bn(c1, "bn1").data, x.data).map { max($0 + $1, 0) })
        let bn2 = bn(refConv(y, g.params["c2.weight"]!, nil, strides: [1, 1], pads: [0, 0, 0, 0], dilations: [1, 1], group: 1), "bn2")
        for hook in [nil, { (_: String, _: inout Tensor) in }] as [((String, inout Tensor) throws -> Void)?] {
            let out = try executor.run(["x": x], hook: hook)
            check(out["bn2"]!, bn2)
            check(out["z"]!, try Tensor(shape: bn2.shape, data: bn2.data.map { max($0, 0) }))
        }
    }

    /// A residual Add that broadcasts the conv's output ([N, 1, H, W] + [N, 4, H, W],
    /// either operand order) or the other operand ([4, 1, 1]): still one fused step,
    /// the sum of the broadcast shape, on both plans (`run` compares them).
    func testFusedAddBroadcastsEitherOperand() throws {
        let x = random([3, 4, 5, 6], seed: 171)
        for (cout, order) in [(1, ["c", "x"]), (1, ["x", "c"]), (4, ["c", "shift"])] {
            var b = GraphBuilder(input: "x", shape: [1, 4, 5, 6])
            b.conv("c", "x", cin: 4, cout: cout, k: 3, pad: 1, bias: true)
            b.graph.params["shift"] = random([4, 1, 1], seed: 172)
            b.op(.add, "sum", order)
            b.op(.relu, "y", ["sum"])
            b.output("y")
            let g = b.graph
            XCTAssertEqual(try Executor(graph: g).program.fused.steps.map(\.op), ["Conv+Add+Relu"])
            let c = refConv(x, g.params["c.weight"]!, g.params["c.bias"]!.data, strides: [1, 1], pads: [1, 1, 1, 1],
                            dilations: [1, 1], group: 1)
            let other = order.contains("x") ? x : g.params["shift"]!
            let planes = 5 * 6, cPlanes = c.shape[1]
            let expected = try Tensor(shape: x.shape, data: (0..<x.count).map { i in
                let image = i / (4 * planes), ch = i / planes % 4, p = i % planes
                let conv = c.data[(image * cPlanes + ch % cPlanes) * planes + p]
                return max(conv + (order.contains("x") ? other.data[i] : other.data[ch]), 0)
            })
            check(try run(g, ["x": x]), expected)
        }
    }

    /// Stages of different chunk sizes (forced by a tiny chunk budget), a skip
    /// connection across a stage boundary, views as graph outputs: all agree
    /// with the exact plan.
    func testStagedChunksMatchExactPlan() throws {
        var b = GraphBuilder(input: "x", shape: [1, 3, 12, 12])
        b.conv("c1", "x", cin: 3, cout: 8, k: 3, pad: 1, bias: true)
        b.op(.relu, "r1", ["c1"])
        b.op(.maxPool, "p", ["r1"], attributes: ["kernel_shape": .ints([2, 2]), "strides": .ints([2, 2])])
        b.conv("c2", "p", cin: 8, cout: 8, k: 3, pad: 1)
        b.bn("bn2", "c2", channels: 8)
        b.op(.add, "sum", ["bn2", "p"])
        b.op(.relu, "r2", ["sum"])
        b.op(.flatten, "flat", ["r2"])
        b.gemm("fc", "flat", fin: 288, fout: 5)
        b.op(.reshape, "view", ["fc"], attributes: ["shape": .ints([-1, 5, 1])])
        b.output("fc", "flat", "p", "view")
        let x = random([7, 3, 12, 12], seed: 220)
        let reference = try Executor(graph: b.graph).run(["x": x]) { _, _ in }
        for budget in [300, 600, 1 << 18] {
            for threads in [1, 2, 3] {
                let executor = try Executor(graph: b.graph, opset: 17, threads: threads, chunkBudget: budget)
                let out = try executor.run(["x": x])
                for name in ["fc", "flat", "p", "view"] { check(out[name]!, reference[name]!) }
                let again = try executor.run(["x": x])
                XCTAssertEqual(again["fc"]!.data, out["fc"]!.data, "a second run reuses the arenas")
            }
        }
        let staged = try Executor(graph: b.graph, opset: 17, threads: 2, chunkBudget: 600)
        _ = try staged.run(["x": x])
        let schedule = try XCTUnwrap(staged.cachedSchedule(for: [[7, 3, 12, 12]]))
        XCTAssertEqual(schedule.stages.map { $0.chunks.count }, [7, 4, 2], "chunks of 1, 2, then 4 items (in multiples of the 2 workers, at most one per item)")
    }

    func testHookSeesInputsAndNodeOutputsAndCanChangeThem() throws {
        var b = GraphBuilder(input: "x", shape: [1, 2, 4, 4])
        b.conv("c", "x", cin: 2, cout: 3, k: 3, pad: 1)
        b.op(.relu, "r", ["c"])
        b.op(.globalAveragePool, "p", ["r"])
        b.output("p")
        let executor = try Executor(graph: b.graph)
        let x = random([2, 2, 4, 4], seed: 180)
        var order: [String] = []
        let zeroed = try executor.run(["x": x]) { name, tensor in
            order.append(name)
            if name == "r" { tensor.data = [Float](repeating: 0, count: tensor.count) }
        }
        XCTAssertEqual(order, ["x", "c", "r", "p"])
        XCTAssertEqual(zeroed["p"]!.data, [Float](repeating: 0, count: 6))
        XCTAssertNotEqual(try executor.run(["x": x])["p"]!.data, zeroed["p"]!.data)
        // Tensors the hook keeps stay as they were when later runs reuse memory.
        var kept: [String: Tensor] = [:]
        _ = try executor.run(["x": x]) { name, tensor in kept[name] = tensor }
        let x2 = random([2, 2, 4, 4], seed: 181)
        for _ in 0..<2 { _ = try executor.run(["x": x2]) { name, tensor in tensor.data[0] += 1 } }
        var fresh: [String: Tensor] = [:]
        _ = try Executor(graph: b.graph).run(["x": x]) { name, tensor in fresh[name] = tensor }
        XCTAssertEqual(kept, fresh)
        assertThrows(.shapeMismatch, containing: "hook changed 'c'") {
            _ = try executor.run(["x": x]) { name, tensor in if name == "c" { tensor.data.removeLast() } }
        }
    }

    func testAnyBatchSizeAndConcurrentRuns() throws {
        var b = GraphBuilder(input: "x", shape: [1, 3, 8, 8])
        b.conv("c", "x", cin: 3, cout: 4, k: 3, pad: 1, bias: true)
        b.op(.relu, "r", ["c"])
        b.output("r")
        let executor = try Executor(graph: b.graph)
        let x = random([5, 3, 8, 8], seed: 190)
        let expected = refConv(x, b.graph.params["c.weight"]!, b.graph.params["c.bias"]!.data, strides: [1, 1], pads: [1, 1, 1, 1],
                               dilations: [1, 1], group: 1)
        let relu = try Tensor(shape: expected.shape, data: expected.data.map { max($0, 0) })
        check(try executor.run(["x": x])["r"]!, relu)
        let results = Mutex<[Tensor]>([])
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            let out = try! executor.run(["x": x])["r"]!
            results.withLock { $0.append(out) }
        }
        for r in results.withLock({ $0 }) { check(r, relu) }
    }

    // MARK: - Errors

    func testBadInputsAreErrors() throws {
        var b = GraphBuilder(input: "x", shape: [1, 3, 8, 8])
        b.conv("c", "x", cin: 3, cout: 4, k: 3)
        b.output("c")
        let executor = try Executor(graph: b.graph)
        let x = random([2, 3, 8, 8], seed: 200)
        assertThrows(.unknownName, containing: "'y'") { _ = try executor.run(["x": x, "y": x]) }
        assertThrows(.invalidArgument, containing: "missing input 'x'") { _ = try executor.run([:]) }
        assertThrows(.shapeMismatch, containing: "expected shape [N, 3, 8, 8]") {
            _ = try executor.run(["x": self.random([2, 1, 8, 8], seed: 1)])
        }
        assertThrows(.shapeMismatch, containing: "got [3, 8, 8]") { _ = try executor.run(["x": self.random([3, 8, 8], seed: 1)]) }
        var bad = x
        bad.data[17] = .nan
        // Non-finite values are inputs like any other (an attention mask's -inf); NaN propagates.
        XCTAssertTrue(try executor.run(["x": bad]).values.first!.data.contains { $0.isNaN })
        bad.data[17] = -.infinity
        XCTAssertNoThrow(try executor.run(["x": bad]))
        // Undeclared input shape: the conv names itself.
        var g = b.graph
        g.inputs[0].shape = nil
        assertThrows(.shapeMismatch, containing: "node 'c' (Conv): input has 1 channels, the weight expects 3") {
            _ = try Executor(graph: g).run(["x": self.random([2, 1, 8, 8], seed: 1)])
        }
        assertThrows(.shapeMismatch, containing: "smaller than the window") {
            _ = try Executor(graph: g).run(["x": self.random([2, 3, 2, 8], seed: 1)])
        }
    }

    func testUnsupportedOpsFailAtCompileTime() throws {
        var b = GraphBuilder(input: "x", shape: [1, 3, 4, 4])
        b.op(Op(onnxType: "NonMaxSuppression"), "n", ["x"])
        b.output("n")
        assertThrows(.unsupported, containing: "node 'n' (NonMaxSuppression): the executor does not run 'NonMaxSuppression' nodes") {
            _ = try Executor(graph: b.graph)
        }
        var c = GraphBuilder(input: "x", shape: [1, 3, 4, 4])
        c.graph.nodes.append(Node(name: "custom", op: Op(customType: "Conv"), inputs: ["x"], outputs: ["y"]))
        c.output("y")
        assertThrows(.unsupported, containing: "node 'custom' (Conv): the executor does not run 'Conv' nodes of a custom domain") {
            _ = try Executor(graph: c.graph)
        }
        var d = GraphBuilder(input: "x", shape: [1, 3, 4, 4])
        d.op(.reshape, "r", ["x", "x"])
        d.output("r")
        assertThrows(.invalidArgument, containing: "node 'r' (Reshape): the shape input is float32, expected int64") { _ = try Executor(graph: d.graph) }
    }

    // MARK: - ONNX integers

    /// Integer initializers and Constant nodes reach the executor and survive a save unchanged.
    func testIntegerConstantsFromOnnx() throws {
        var proto = Onnx_ModelProto()
        proto.irVersion = 8
        var opset = Onnx_OperatorSetIdProto()
        opset.version = 13
        proto.opsetImport = [opset]
        var shape = Onnx_TensorProto()
        shape.name = "shape"
        shape.dataType = Int32(Onnx_TensorProto.DataType.int64.rawValue)
        shape.dims = [2]
        shape.rawData = Data([Int64(0), Int64(-1)].flatMap { withUnsafeBytes(of: $0.littleEndian) { Array($0) } })
        var constant = Onnx_NodeProto()
        constant.opType = "Constant"
        constant.name = "k"
        constant.output = ["shape2"]
        var value = Onnx_AttributeProto()
        value.name = "value"
        value.type = .tensor
        value.t.dataType = Int32(Onnx_TensorProto.DataType.int32.rawValue)
        value.t.dims = [3]
        value.t.int32Data = [0, 2, -1]
        constant.attribute = [value]
        var r1 = Onnx_NodeProto()
        r1.opType = "Reshape"; r1.name = "r1"; r1.input = ["x", "shape"]; r1.output = ["flat"]
        var r2 = Onnx_NodeProto()
        r2.opType = "Reshape"; r2.name = "r2"; r2.input = ["flat", "shape2"]; r2.output = ["y"]
        proto.graph.node = [constant, r1, r2]
        proto.graph.initializer = [shape]
        var input = Onnx_ValueInfoProto()
        input.name = "x"
        var output = Onnx_ValueInfoProto()
        output.name = "y"
        proto.graph.input = [input]
        proto.graph.output = [output]
        let model = try Model(onnxData: proto.serializedBytes())
        XCTAssertEqual(model.graph.intConstants["shape"], IntTensor(shape: [2], values: [0, -1]))
        XCTAssertEqual(model.graph.intConstants["shape2"], IntTensor(shape: [3], values: [0, 2, -1], elementType: 6))
        let x = random([2, 3, 4], seed: 210)
        let y = try Executor(model: model).run(["x": x])["y"]!
        XCTAssertEqual(y.shape, [2, 2, 6])
        XCTAssertEqual(y.data, x.data)
        // The Constant node became a constant at load: it is saved as an int32 initializer.
        let saved = try Onnx_ModelProto(serializedBytes: model.onnxData())
        XCTAssertEqual(saved.graph.initializer.first, proto.graph.initializer[0])
        XCTAssertEqual(saved.graph.initializer.map(\.name), ["shape", "shape2"])
        XCTAssertEqual(saved.graph.initializer.last?.dataType, Int32(Onnx_TensorProto.DataType.int32.rawValue))
        XCTAssertEqual(saved.graph.initializer.last?.int32Data, [0, 2, -1])
        XCTAssertEqual(saved.graph.node, [r1, r2])
        // A graph built in memory writes its integer constants as int64.
        var g = Graph()
        g.inputs = [ValueInfo(name: "x", shape: [2, 3, 4])]
        g.constants = ["s"]
        g.intConstants["s"] = IntTensor(shape: [2], values: [0, -1])
        g.nodes = [Node(name: "r", op: .reshape, inputs: ["x", "s"], outputs: ["y"])]
        g.outputs = [ValueInfo(name: "y", shape: nil)]
        let reloaded = try Model(onnxData: Model(graph: g).onnxData())
        XCTAssertEqual(reloaded.graph.intConstants["s"], IntTensor(shape: [2], values: [0, -1]))
        XCTAssertEqual(try Executor(model: reloaded).run(["x": x])["y"]!.shape, [2, 12])
    }

    // MARK: - A real model against onnxruntime

    private static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()

    private func fixture(_ name: String) throws -> [Float] {
        let data = try Data(contentsOf: RuntimeTests.folder.appendingPathComponent("Fixtures").appendingPathComponent(name))
        return data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    }

    /// data/digits_mbv2.onnx on the first 32 test images against onnxruntime's
    /// logits. The fixtures (raw little-endian float32) were made once with
    /// onnxruntime 1.31 (repository root as working directory):
    ///
    ///     import numpy as np, onnxruntime as ort
    ///     x = np.load("data/digits.npz")["x_test"][:32].astype(np.float32)
    ///     s = ort.InferenceSession("data/digits_mbv2.onnx", providers=["CPUExecutionProvider"])
    ///     y = s.run(None, {s.get_inputs()[0].name: x})[0]
    ///     x.astype("<f4").tofile("Tests/AimetCoreTests/Fixtures/digits_x32.bin")       # 32×1×16×16
    ///     y.astype("<f4").tofile("Tests/AimetCoreTests/Fixtures/digits_logits.bin")    # 32×10
    func testDigitsModelMatchesOnnxruntime() throws {
        let path = RuntimeTests.folder.deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("data").appendingPathComponent("digits_mbv2.onnx").path
        let executor = try Executor(model: try Model.load(onnxFile: path))
        let x = try Tensor(shape: [32, 1, 16, 16], data: fixture("digits_x32.bin"))
        let expected = try fixture("digits_logits.bin")
        let fused = try XCTUnwrap(executor.run(["input": x])["logits"])
        XCTAssertEqual(fused.shape, [32, 10])
        assertClose(fused.data, expected, tolerance: 1e-4)
        var seen: [String] = []
        let exact = try XCTUnwrap(executor.run(["input": x]) { name, _ in seen.append(name) }["logits"])
        assertClose(exact.data, expected, tolerance: 1e-4)
        XCTAssertEqual(seen.first, "input")
        XCTAssertEqual(seen.count, 1 + executor.graph.nodes.filter { $0.op != .constant }.count)
        // Any batch size: one image alone gives its row.
        let one = try Tensor(shape: [1, 1, 16, 16], data: Array(x.data[256..<512]))
        assertClose(try XCTUnwrap(executor.run(["input": one])["logits"]).data, Array(expected[10..<20]), tolerance: 1e-4)
    }
}
