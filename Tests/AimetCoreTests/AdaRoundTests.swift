import XCTest
import Foundation
@testable import AimetCore

/// AdaRound: the formulas against hand-computed values, every
/// engine's forward against the executor and its gradient against finite
/// differences, and the model-level invariants (rounding to floor or ceil,
/// never worse than nearest, deterministic, clear errors).
final class AdaRoundTests: XCTestCase {
    // MARK: - Formulas

    func testInitialVReproducesTheWeight() throws {
        var rng = TestRandom(11)
        let w = rng.floats(4000, -1, 1)
        let encoding = try EncodingAnalyzer.computeEncoding(of: w, scheme: .postTrainingTF,
                                                            settings: EncodingSettings(bitwidth: 4, symmetric: true))
        // Scalar formulas.
        for x in w {
            let q = x / encoding.scale
            let h = AdaRoundMath.softRounding(AdaRoundMath.initialV(rest: q - q.rounded(.down)))
            XCTAssertEqual(AdaRoundMath.softWeight(x, h: h, encoding: encoding), x, accuracy: 1e-6 * encoding.scale * 8)
        }
        // The vectorized state: soft weight = w before any step.
        let state = AdaRoundWeights(weight: w, encodings: [encoding], channelLayout: (w.count, 1), workers: 2)
        state.prepare(nil)
        let soft = state.softWeights()
        for (x, s) in zip(w, soft) { XCTAssertEqual(s, x, accuracy: 2e-6 * encoding.scale * 8) }
    }

    func testInitialVOutsideTheGridClamps() throws {
        // TF-enhanced clips outliers: their soft weight is the grid's end.
        var w = [Float](repeating: 0, count: 200)
        var rng = TestRandom(3)
        for i in w.indices { w[i] = rng.uniform(-0.1, 0.1) }
        w[7] = 3
        let encoding = try EncodingAnalyzer.computeEncoding(of: w, scheme: .postTrainingTFEnhanced,
                                                            settings: EncodingSettings(bitwidth: 4, symmetric: true))
        XCTAssertLessThan(encoding.max, 3)
        let state = AdaRoundWeights(weight: w, encodings: [encoding], channelLayout: (w.count, 1), workers: 1)
        state.prepare(nil)
        XCTAssertEqual(state.soft[7], encoding.max, accuracy: 1e-6)
        XCTAssertEqual(state.chain[7], 0)
    }

    func testSoftRoundingBoundsAndDerivative() {
        XCTAssertEqual(AdaRoundMath.softRounding(0), 0.5, accuracy: 1e-7)
        for v in stride(from: Float(-30), through: 30, by: 0.37) {
            let h = AdaRoundMath.softRounding(v)
            XCTAssertGreaterThanOrEqual(h, 0)
            XCTAssertLessThanOrEqual(h, 1)
        }
        // Saturation: sigmoid(V)·1.2 − 0.1 leaves [0, 1] below V = −log 11 and above log 11.
        XCTAssertEqual(AdaRoundMath.softRounding(-2.5), 0)
        XCTAssertEqual(AdaRoundMath.softRounding(2.5), 1)
        XCTAssertEqual(AdaRoundMath.softRoundingDerivative(2.5), 0)
        XCTAssertEqual(AdaRoundMath.softRoundingDerivative(0), 0.3, accuracy: 1e-7)
        XCTAssertEqual(AdaRoundMath.initialV(rest: 0), -logf(11), accuracy: 1e-6)
        XCTAssertEqual(AdaRoundMath.softRounding(AdaRoundMath.initialV(rest: 0.25)), 0.25, accuracy: 1e-6)
    }

    func testFastMathMatchesLibm() {
        var worstExp: Float = 0, worstPow: Float = 0
        for x in stride(from: Float(-80), through: 80, by: 0.0137) {
            worstExp = max(worstExp, abs(fastExp(x) - expf(x)) / expf(x))
        }
        for a in stride(from: Float(1e-4), through: 1, by: 0.000731) {
            for p in [Float(1), 2.5, 7.3, 19] {
                let expected = powf(a, p)
                guard expected > 1e-30 else { continue }
                worstPow = max(worstPow, abs(fastPow(a, p) - expected) / expected)
            }
        }
        XCTAssertLessThan(worstExp, 3e-7)
        XCTAssertLessThan(worstPow, 2e-4)
        XCTAssertEqual(fastPow(0, 3), 0)
        XCTAssertEqual(fastPow(1, 5), 1, accuracy: 1e-6)
    }

    func testBetaScheduleEndpointsAndMidpoint() {
        let n = 10000, warm = 0.2
        XCTAssertFalse(AdaRoundMath.roundingActive(iteration: 1999, iterations: n, warmStart: warm))
        XCTAssertTrue(AdaRoundMath.roundingActive(iteration: 2000, iterations: n, warmStart: warm))
        XCTAssertEqual(AdaRoundMath.beta(iteration: 2000, iterations: n, warmStart: warm, range: (20, 2)), 20)
        XCTAssertEqual(AdaRoundMath.beta(iteration: 6000, iterations: n, warmStart: warm, range: (20, 2)), 11, accuracy: 1e-5)
        XCTAssertEqual(AdaRoundMath.beta(iteration: n, iterations: n, warmStart: warm, range: (20, 2)), 2, accuracy: 1e-5)
        // A quarter of the way: 2 + 9·(1 + cos(π/4)).
        XCTAssertEqual(AdaRoundMath.beta(iteration: 4000, iterations: n, warmStart: warm, range: (20, 2)),
                       Float(2 + 9 * (1 + cos(Double.pi / 4))), accuracy: 1e-5)
    }

    func testAdamStepsMatchTorch() {
        // torch.optim.Adam(lr=1e-3) on one float32 parameter 1.0 with gradients
        // 0.5, −0.25, 0.125 (values from torch's float32 update sequence).
        let adam = AdamSchedule()
        var p: Float = 1, m: Float = 0, s: Float = 0
        adam.step(&p, m: &m, s: &s, gradient: 0.5, t: 1)
        XCTAssertEqual(p, 0.999, accuracy: 1e-7)
        adam.step(&p, m: &m, s: &s, gradient: -0.25, t: 2)
        XCTAssertEqual(p, 0.9987337, accuracy: 1e-7)
        XCTAssertEqual(s, 0.00031225002, accuracy: 1e-11)
        adam.step(&p, m: &m, s: &s, gradient: 0.125, t: 3)
        XCTAssertEqual(p, 0.9983933, accuracy: 1e-7)
        XCTAssertEqual(m, 0.0305, accuracy: 1e-8)

        // The vectorized update is the same arithmetic.
        let w: [Float] = [0.3, -0.2, 0.05, 0.7]
        let encoding = try! Encoding(bitwidth: 4, isSymmetric: true, scale: 0.1, offset: -8)
        let state = AdaRoundWeights(weight: w, encodings: [encoding], channelLayout: (4, 1), workers: 1)
        let v0 = Array(state.v)
        for e in 0..<4 { state.gradient[e] = 0.5; state.chain[e] = 1; state.roundGrad[e] = 0 }
        state.step(t: 1, adam: adam, next: nil, prepareNext: false)
        for e in 0..<4 {
            var v = v0[e], mm: Float = 0, ss: Float = 0
            adam.step(&v, m: &mm, s: &ss, gradient: 0.5, t: 1)
            XCTAssertEqual(state.v[e], v, accuracy: 1e-7)
            XCTAssertEqual(state.adamM[e], mm)
            XCTAssertEqual(state.adamV[e], ss)
        }
    }

    // MARK: - Engines against the executor

    /// One layer (plus its activation) as a graph, its calibration data, and
    /// the executor's output for a given weight.
    struct LayerCase {
        var graph: Graph
        var node: Node
        var activation: AdaRoundActivation
        var input: Tensor

        func output(weight: Tensor) throws -> Tensor {
            var g = graph
            g.params[node.inputs[1]] = weight
            g.outputs = [ValueInfo(name: node.output, shape: nil)]
            return try Executor(graph: g, threads: 1).run([g.inputs[0].name: input])[node.output]!
        }

        func layer(_ parameters: AdaRoundParameters, encodings: [Encoding]? = nil, bits: Int = 4,
                   perChannel: Bool = false) throws -> AdaRoundLayer {
            let weight = graph.params[node.inputs[1]]!
            let enc = try encodings ?? AdaRoundLayer.weightEncodings(
                node: node, weight: weight, scheme: .postTrainingTF,
                settings: EncodingSettings(bitwidth: bits, symmetric: true), perChannel: perChannel)
            return try AdaRoundLayer(node: node, weight: weight, bias: node.inputs.count > 2 ? graph.params[node.inputs[2]] : nil,
                                     input: input, target: try output(weight: weight), activation: activation,
                                     encodings: enc, parameters: parameters)
        }

        /// The reconstruction error of `weight` computed with the executor.
        func referenceError(_ weight: Tensor) throws -> Double {
            let a = try output(weight: weight), b = try output(weight: graph.params[node.inputs[1]]!)
            let channelAxis = a.rank == 2 || node.op == .matMul ? a.rank - 1 : 1
            let channels = a.shape[channelAxis]
            let inner = a.shape[(channelAxis + 1)...].reduce(1, *)
            var sum = 0.0
            for i in 0..<a.count {
                let c = (i / inner) % channels
                let d = Double(activation.apply(a.data[i], channel: c) - activation.apply(b.data[i], channel: c))
                sum += d * d
            }
            return sum / Double(a.count / channels)
        }
    }

    static func makeCase(_ op: Op, inShape: [Int], weightShape: [Int], attributes: [String: Attribute] = [:],
                         bias: Bool = true, activation: AdaRoundActivation = .elementwise(.relu), seed: UInt64 = 5) -> LayerCase {
        var rng = TestRandom(seed)
        var graph = Graph()
        graph.inputs = [ValueInfo(name: "x", shape: [-1] + inShape.dropFirst())]
        graph.params["w"] = try! Tensor(shape: weightShape, data: rng.floats(weightShape.reduce(1, *), -0.5, 0.5))
        var inputs = ["x", "w"]
        if bias {
            let out: Int
            switch op {
            case .convTranspose: out = weightShape[1] * (attributes["group"]?.intValue ?? 1)
            case .gemm: out = attributes["transB"]?.intValue == 1 ? weightShape[0] : weightShape[1]
            default: out = weightShape[0]
            }
            graph.params["b"] = try! Tensor(shape: [out], data: rng.floats(out, -0.2, 0.2))
            inputs.append("b")
        }
        let node = Node(name: "layer", op: op, inputs: inputs, outputs: ["y"], attributes: attributes)
        graph.nodes = [node]
        graph.outputs = [ValueInfo(name: "y", shape: nil)]
        let input = try! Tensor(shape: inShape, data: rng.floats(inShape.reduce(1, *), -1, 1))
        return LayerCase(graph: graph, node: node, activation: activation, input: input)
    }

    static var cases: [(String, LayerCase, Bool)] {
        let conv2 = ["pads": Attribute.ints([1, 1, 1, 1])]
        return [
            ("conv 3x3", makeCase(.conv, inShape: [3, 3, 6, 5], weightShape: [4, 3, 3, 3], attributes: conv2), false),
            ("conv grouped s2 dilated", makeCase(.conv, inShape: [2, 4, 9, 8], weightShape: [6, 2, 3, 3],
                                                 attributes: ["group": .int(2), "strides": .ints([2, 2]), "dilations": .ints([2, 1]),
                                                              "pads": .ints([2, 1, 1, 0])], activation: .elementwise(.clip(0, 0.6))), false),
            ("conv 1x1", makeCase(.conv, inShape: [3, 5, 4, 4], weightShape: [6, 5, 1, 1], activation: .none), false),
            ("conv 1-D", makeCase(.conv, inShape: [2, 3, 11], weightShape: [4, 3, 3], attributes: ["pads": .ints([1, 0])]), false),
            ("depthwise 3x3", makeCase(.conv, inShape: [3, 4, 7, 6], weightShape: [4, 1, 3, 3],
                                       attributes: ["group": .int(4), "pads": .ints([1, 1, 1, 1])]), false),
            ("depthwise 3x3 s2", makeCase(.conv, inShape: [2, 4, 9, 10], weightShape: [4, 1, 3, 3],
                                          attributes: ["group": .int(4), "strides": .ints([2, 2]), "pads": .ints([1, 1, 1, 1])],
                                          activation: .elementwise(.clip(0, 0.5))), false),
            ("depthwise 5x5 multiplier 2", makeCase(.conv, inShape: [2, 3, 8, 7], weightShape: [6, 1, 5, 5],
                                                    attributes: ["group": .int(3), "pads": .ints([2, 2, 2, 2])],
                                                    activation: .prelu([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])), false),
            ("conv transpose", makeCase(.convTranspose, inShape: [2, 4, 4, 5], weightShape: [4, 3, 3, 3],
                                        attributes: ["strides": .ints([2, 2]), "pads": .ints([1, 1, 1, 1]),
                                                     "output_padding": .ints([1, 0])]), false),
            ("conv transpose grouped", makeCase(.convTranspose, inShape: [2, 4, 3, 3], weightShape: [4, 2, 2, 2],
                                                attributes: ["group": .int(2)], activation: .elementwise(.leakyRelu(0.1))), false),
            ("gemm transB", makeCase(.gemm, inShape: [7, 6], weightShape: [5, 6], attributes: ["transB": .int(1), "alpha": .float(0.5)],
                                     activation: .elementwise(.clip(-0.2, 0.3))), false),
            ("gemm [in, out]", makeCase(.gemm, inShape: [7, 6], weightShape: [6, 5]), false),
            ("matmul 3-D", makeCase(.matMul, inShape: [4, 3, 6], weightShape: [6, 5], bias: false), false),
            ("conv positions", makeCase(.conv, inShape: [3, 3, 6, 5], weightShape: [4, 3, 3, 3], attributes: conv2), true),
            ("conv grouped positions", makeCase(.conv, inShape: [2, 4, 9, 8], weightShape: [6, 2, 3, 3],
                                                attributes: ["group": .int(2), "strides": .ints([2, 2]), "dilations": .ints([2, 1]),
                                                             "pads": .ints([2, 1, 1, 0])], activation: .prelu([0.2])), true),
            ("depthwise positions", makeCase(.conv, inShape: [2, 4, 9, 10], weightShape: [4, 1, 3, 3],
                                             attributes: ["group": .int(4), "strides": .ints([2, 2]), "pads": .ints([1, 1, 1, 1])],
                                             activation: .elementwise(.clip(0, 0.5))), true),
            ("depthwise dilated positions", makeCase(.conv, inShape: [2, 9, 8, 7], weightShape: [9, 1, 3, 3],
                                                     attributes: ["group": .int(9), "dilations": .ints([2, 2]),
                                                                  "pads": .ints([2, 1, 2, 3])],
                                                     activation: .prelu((1...9).map { Float($0) / 10 })), true),
        ]
    }

    static func parameters(positions: Bool, threads: Int = 2) -> AdaRoundParameters {
        var p = AdaRoundParameters(numBatches: 1, iterations: 10)
        p.threads = threads
        p.batchSize = 2
        p.positionSamples = positions ? 20 : nil   // fewer than 2 images' positions in every case
        return p
    }

    func testEnginesReproduceTheExecutor() throws {
        for (name, c, positions) in Self.cases {
            for threads in [1, 2] {
                let layer = try c.layer(Self.parameters(positions: positions, threads: threads))
                let weight = c.graph.params["w"]!
                XCTAssertEqual(try layer.reconstructionError(weight), 0, accuracy: 1e-9, name)
                var rng = TestRandom(99)
                let other = try Tensor(shape: weight.shape, data: weight.data.map { $0 + rng.uniform(-0.1, 0.1) })
                let expected = try c.referenceError(other)
                XCTAssertGreaterThan(expected, 0, name)
                XCTAssertEqual(try layer.reconstructionError(other), expected, accuracy: 1e-4 * expected, "\(name), \(threads) threads")
                XCTAssertEqual(try layer.reconstructionError(layer.nearestWeight), try c.referenceError(layer.nearestWeight),
                               accuracy: 1e-4 * expected, name)
            }
        }
    }

    func testEstimatorOnlyWhereItSamplesLess() throws {
        let all = Dictionary(uniqueKeysWithValues: Self.cases.map { ($0.0, $0.1) })
        var p = Self.parameters(positions: true)
        XCTAssertTrue(try all["conv 3x3"]!.layer(p).engine.takesPositions)
        XCTAssertTrue(try all["depthwise 3x3"]!.layer(p).engine.takesPositions)
        // A depthwise multiplier above 1, transposed convs and linear layers keep whole samples.
        XCTAssertFalse(try all["depthwise 5x5 multiplier 2"]!.layer(p).engine.takesPositions)
        XCTAssertFalse(try all["conv transpose"]!.layer(p).engine.takesPositions)
        XCTAssertFalse(try all["gemm transB"]!.layer(p).engine.takesPositions)
        // 2 images × 30 positions: sampling 60 or more saves nothing.
        p.positionSamples = 60
        XCTAssertFalse(try all["conv 3x3"]!.layer(p).engine.takesPositions)
        p.positionSamples = 59
        XCTAssertTrue(try all["conv 3x3"]!.layer(p).engine.takesPositions)
    }

    // MARK: - Gradients

    /// Central differences of the total loss (reconstruction, plus rounding
    /// when `rounding` is given) in V, element by element.
    func checkGradient(_ name: String, _ c: LayerCase, positions: Bool, rounding: AdaRoundWeights.Rounding?) throws {
        let layer = try c.layer(Self.parameters(positions: positions))
        let count = layer.weights.count
        var rng = TestRandom(21)
        let v = rng.floats(count, -1.8, 1.8)
        XCTAssertEqual(layer.engine.takesPositions, positions, name)
        let total = positions ? layer.engine.sampleCount * layer.engine.positionsPerSample : layer.engine.sampleCount
        let samples = Array(stride(from: 0, to: total, by: positions ? 3 : 1))
        let (_, gradient) = layer.objective(v: v, samples: samples, rounding: rounding)
        let eps: Float = 1e-2
        var worst: Float = 0
        let largest = gradient.map(abs).max()!
        XCTAssertGreaterThan(largest, 0, name)
        for e in 0..<count {
            var plus = v, minus = v
            plus[e] += eps
            minus[e] -= eps
            let lp = layer.objective(v: plus, samples: samples, rounding: rounding).loss
            let lm = layer.objective(v: minus, samples: samples, rounding: rounding).loss
            let numeric = Float((lp - lm) / Double(2 * eps))
            worst = max(worst, abs(numeric - gradient[e]) / max(abs(gradient[e]), 0.05 * largest))
        }
        XCTAssertLessThan(worst, 1e-2, "\(name), rounding \(rounding != nil): worst relative error \(worst)")
    }

    func testGradientsMatchFiniteDifferences() throws {
        for (name, c, positions) in Self.cases {
            try checkGradient(name, c, positions: positions, rounding: nil)
            try checkGradient(name, c, positions: positions, rounding: AdaRoundWeights.Rounding(beta: 3.5, regParam: 1e-3))
        }
    }

    func testRoundingGradientAlone() throws {
        // With zero data error the gradient is the rounding loss's: compare with its closed form.
        let c = Self.makeCase(.gemm, inShape: [3, 4], weightShape: [2, 4], attributes: ["transB": .int(1)])
        let layer = try c.layer(Self.parameters(positions: false))
        let v: [Float] = [-1.2, -0.3, 0.01, 0.4, 0.9, 1.7, -2.0, 0.2]
        let rounding = AdaRoundWeights.Rounding(beta: 4, regParam: 0.5)
        let (_, g) = layer.objective(v: v, samples: [], rounding: rounding)
        for (e, x) in v.enumerated() {
            let h = AdaRoundMath.softRounding(x), u = 2 * h - 1
            let expected = -0.5 * 4 * powf(abs(u), 3) * (u > 0 ? 1 : -1) * 2 * AdaRoundMath.softRoundingDerivative(x)
            XCTAssertEqual(g[e], expected, accuracy: 1e-5 * max(1, abs(expected)))
        }
    }

    // MARK: - Model level

    /// conv 3x3 → relu → depthwise s2 → relu6 → conv 1x1 → GAP → flatten → gemm.
    static func tinyModel() -> (Model, [[String: Tensor]]) {
        var b = GraphBuilder(input: "x", shape: [1, 3, 8, 8])
        b.conv("c1", "x", cin: 3, cout: 8, k: 3, pad: 1, bias: true)
        b.op(.relu, "r1", ["c1"])
        b.conv("dw", "r1", cin: 8, cout: 8, k: 3, groups: 8, pad: 1)
        b.graph.nodes[b.graph.nodes.count - 1].attributes["strides"] = .ints([2, 2])
        b.relu6("r2", "dw")
        b.conv("pw", "r2", cin: 8, cout: 6, k: 1, bias: true)
        b.op(.globalAveragePool, "gap", ["pw"])
        b.op(.flatten, "flat", ["gap"])
        b.gemm("fc", "flat", fin: 6, fout: 5)
        b.output("fc")
        var rng = TestRandom(77)
        let batches = (0..<3).map { _ in ["x": try! Tensor(shape: [4, 3, 8, 8], data: rng.floats(4 * 3 * 64, -1, 1))] }
        return (Model(graph: b.graph), batches)
    }

    static func modelParameters(iterations: Int = 120) -> AdaRoundParameters {
        var p = AdaRoundParameters(numBatches: 3, iterations: iterations)
        p.batchSize = 4
        p.seed = 7
        return p
    }

    func testActivationDetection() throws {
        let (model, _) = Self.tinyModel()
        let g = model.graph
        XCTAssertEqual(g.adaRoundActivation(after: g.nodeIndex(named: "c1")!, opset: 17), .elementwise(.relu))
        XCTAssertEqual(g.adaRoundActivation(after: g.nodeIndex(named: "dw")!, opset: 17), .elementwise(.clip(0, 6)))
        XCTAssertEqual(g.adaRoundActivation(after: g.nodeIndex(named: "pw")!, opset: 17), .none)
        // A second reader of the conv's output: no activation in the loss.
        var shared = g
        shared.nodes.append(Node(name: "extra", op: .relu, inputs: ["c1"], outputs: ["extra"]))
        XCTAssertEqual(shared.adaRoundActivation(after: g.nodeIndex(named: "c1")!, opset: 17), .none)
    }

    /// AIMET applies any activation module that follows the layer (Sigmoid,
    /// Tanh, Hardsigmoid, Hardswish, ELU, ...), not only the ReLU family.
    func testPointwiseActivationDetection() throws {
        func detected(_ op: Op, _ attributes: [String: Attribute] = [:]) throws -> AdaRoundActivation {
            var g = Self.tinyModel().0.graph
            let i = g.nodeIndex(named: "r1")!
            g.nodes[i] = Node(name: "r1", op: op, inputs: ["c1"], outputs: g.nodes[i].outputs, attributes: attributes)
            return g.adaRoundActivation(after: g.nodeIndex(named: "c1")!, opset: 17)
        }
        XCTAssertEqual(try detected(.sigmoid), .elementwise(.sigmoid))
        XCTAssertEqual(try detected(Op(onnxType: "Tanh")), .elementwise(.tanh))
        XCTAssertEqual(try detected(Op(onnxType: "HardSigmoid")), .elementwise(.hardSigmoid(alpha: 0.2, beta: 0.5)))
        XCTAssertEqual(try detected(Op(onnxType: "HardSigmoid"), ["alpha": .float(1.0 / 6)]), .elementwise(.hardSigmoid(alpha: 1.0 / 6, beta: 0.5)))
        XCTAssertEqual(try detected(Op(onnxType: "HardSwish")), .elementwise(.hardSwish))
        XCTAssertEqual(try detected(Op(onnxType: "Elu"), ["alpha": .float(0.5)]), .elementwise(.elu(alpha: 0.5, gamma: 1)))
        XCTAssertEqual(try detected(Op(onnxType: "Gelu"), ["approximate": .string("tanh")]), .elementwise(.gelu(tanhApproximation: true)))
        XCTAssertEqual(try detected(Op(onnxType: "Gelu")), .elementwise(.gelu(tanhApproximation: false)))
        XCTAssertEqual(try detected(Op(onnxType: "Softmax")), .none)
        XCTAssertEqual(try detected(Op(onnxType: "Exp")), .none)
    }

    /// torch's SiLU exports as `Mul(x, Sigmoid(x))`; AIMET applies the SiLU module.
    func testSiLUPatternDetection() throws {
        func graph(mulInputs: [String], extraReader: Bool = false) -> Graph {
            var g = Self.tinyModel().0.graph
            let i = g.nodeIndex(named: "r1")!
            let output = g.nodes[i].outputs
            g.nodes[i] = Node(name: "r1", op: .mul, inputs: mulInputs, outputs: output)
            g.nodes.insert(Node(name: "sig", op: .sigmoid, inputs: ["c1"], outputs: ["sig"]), at: i)
            if extraReader { g.nodes.insert(Node(name: "extra", op: .relu, inputs: ["sig"], outputs: ["extra"]), at: i + 1) }
            return g
        }
        func detected(_ g: Graph) throws -> AdaRoundActivation {
            g.adaRoundActivation(after: g.nodeIndex(named: "c1")!, opset: 17)
        }
        XCTAssertEqual(try detected(graph(mulInputs: ["c1", "sig"])), .elementwise(.silu))
        XCTAssertEqual(try detected(graph(mulInputs: ["sig", "c1"])), .elementwise(.silu))
        // Sigmoid(x)²: the layer is followed by a plain Sigmoid.
        XCTAssertEqual(try detected(graph(mulInputs: ["sig", "sig"])), .elementwise(.sigmoid))
        XCTAssertEqual(try detected(graph(mulInputs: ["c1", "sig"], extraReader: true)), .none)
        // The model still runs, and AdaRound with it.
        var p = Self.modelParameters(iterations: 20)
        p.threads = 1
        let g = graph(mulInputs: ["c1", "sig"])
        let result = try AdaRound.apply(model: Model(graph: g), inputs: Self.tinyModel().1, parameters: p)
        XCTAssertEqual(result.report.count, 4)
    }

    static let pointwiseActivations: [Activation] = [
        .sigmoid, .tanh, .hardSigmoid(alpha: 0.2, beta: 0.5), .hardSwish, .elu(alpha: 0.7, gamma: 1),
        .elu(alpha: 1.673_263_2, gamma: 1.050_701), .celu(alpha: 0.5), .softplus, .softsign, .thresholdedRelu(alpha: 0.3),
        .gelu(tanhApproximation: false), .gelu(tanhApproximation: true), .mish, .silu,
    ]

    /// Values from the ONNX definitions; derivatives against central differences (away from kinks).
    func testPointwiseActivationValuesAndDerivatives() {
        XCTAssertEqual(Activation.sigmoid.value(0), 0.5)
        XCTAssertEqual(Activation.hardSwish.value(3), 3)
        XCTAssertEqual(Activation.hardSwish.value(-3), 0)
        XCTAssertEqual(Activation.hardSwish.value(1), 1 * (1.0 / 6 + 0.5), accuracy: 1e-6)
        XCTAssertEqual(Activation.hardSigmoid(alpha: 0.2, beta: 0.5).value(1), 0.7, accuracy: 1e-6)
        XCTAssertEqual(Activation.elu(alpha: 2, gamma: 1).value(-1), 2 * (expf(-1) - 1), accuracy: 1e-6)
        XCTAssertEqual(Activation.celu(alpha: 2).value(-1), 2 * (expf(-0.5) - 1), accuracy: 1e-6)
        XCTAssertEqual(Activation.softplus.value(0), logf(2), accuracy: 1e-6)
        XCTAssertEqual(Activation.softplus.value(50), 50)
        XCTAssertEqual(Activation.softsign.value(-3), -0.75)
        XCTAssertEqual(Activation.thresholdedRelu(alpha: 1).value(0.5), 0)
        XCTAssertEqual(Activation.gelu(tanhApproximation: false).value(1), 0.841_344_7, accuracy: 1e-6)
        XCTAssertEqual(Activation.mish.value(1), 1 * tanhf(logf(1 + expf(1))), accuracy: 1e-6)
        XCTAssertEqual(Activation.silu.value(1), 0.731_058_6, accuracy: 1e-6)
        let kinks: [Float] = [-3, 3, -2.5, 2.5, 0, 0.3]
        for f in Self.pointwiseActivations {
            for x in stride(from: Float(-4.1), through: 4.1, by: 0.37) where kinks.allSatisfy({ abs($0 - x) > 0.02 }) {
                let h: Float = 1e-3
                let numeric = (Double(f.value(x + h)) - Double(f.value(x - h))) / Double(2 * h)
                XCTAssertEqual(Double(f.derivative(x)), numeric, accuracy: 2e-3 * max(1, abs(numeric)), "\(f) at \(x)")
            }
        }
    }

    func testPointwiseActivationGradients() throws {
        let conv2 = ["pads": Attribute.ints([1, 1, 1, 1])]
        // (ThresholdedRelu jumps at alpha: finite differences across the jump say nothing.)
        for f in Self.pointwiseActivations where f != .thresholdedRelu(alpha: 0.3) {
            let conv = Self.makeCase(.conv, inShape: [3, 3, 6, 5], weightShape: [4, 3, 3, 3], attributes: conv2, activation: .elementwise(f))
            let linear = Self.makeCase(.gemm, inShape: [7, 6], weightShape: [5, 6], attributes: ["transB": .int(1)],
                                       activation: .elementwise(f))
            let depthwise = Self.makeCase(.conv, inShape: [3, 4, 7, 6], weightShape: [4, 1, 3, 3],
                                          attributes: ["group": .int(4), "pads": .ints([1, 1, 1, 1])], activation: .elementwise(f))
            for (name, c) in [("conv", conv), ("gemm", linear), ("depthwise", depthwise)] {
                try checkGradient("\(name) \(f)", c, positions: false, rounding: nil)
            }
            try checkGradient("conv positions \(f)", conv, positions: true, rounding: nil)
        }
    }

    /// Every adarounded weight is `(clamp(floor(w/s) + {0 or 1} − o, 0, n) + o)·s`,
    /// and quantizes back to itself under the exported encodings.
    func assertRoundingInvariant(_ original: Graph, _ result: AdaRound.Result, file: StaticString = #filePath, line: UInt = #line) {
        for entry in result.encodings.paramEncodings {
            let w = original.params[entry.name]!, r = result.model.graph.params[entry.name]!
            let node = original.nodes.first { $0.inputs.count > 1 && $0.inputs[1] == entry.name }!
            let axis = AdaRoundLayer.channelAxis(of: node)
            let (outer, channels, inner) = try! Encoding.channelLayout(w.shape, axis: axis)
            XCTAssertEqual(outer * channels * inner, w.count)
            var violations = 0
            for i in 0..<w.count {
                let enc = entry.encodings.count == 1 ? entry.encodings[0] : entry.encodings[(i / inner) % channels]
                let f = (w.data[i] / enc.scale).rounded(.down)
                let candidates = [f, f + 1].map { k -> Float in
                    (min(max(k - Float(enc.offset), 0), Float(enc.numSteps)) + Float(enc.offset)) * enc.scale
                }
                if !candidates.contains(r.data[i]) { violations += 1 }
                if enc.quantizeDequantize(r.data[i]) != r.data[i] { violations += 1 }
            }
            XCTAssertEqual(violations, 0, "\(entry.name)", file: file, line: line)
        }
    }

    func testModelRoundingInvariantPerTensorAndPerChannel() throws {
        let (model, batches) = Self.tinyModel()
        for perChannel in [false, true] {
            var p = Self.modelParameters()
            p.perChannel = perChannel
            var seen: [String] = []
            let result = try AdaRound.apply(model: model, inputs: batches, parameters: p) { name, index, count, report in
                XCTAssertEqual(count, 4)
                XCTAssertEqual(index, seen.count)
                XCTAssertEqual(report.name, name)
                seen.append(name)
            }
            XCTAssertEqual(seen, ["c1", "dw", "pw", "fc"])
            XCTAssertEqual(result.report.map(\.weightName), ["c1.weight", "dw.weight", "pw.weight", "fc.weight"])
            XCTAssertEqual(result.encodings.paramEncodings.map { $0.encodings.count }, perChannel ? [8, 8, 6, 5] : [1, 1, 1, 1])
            assertRoundingInvariant(model.graph, result)
            // Only weights change.
            for (name, tensor) in model.graph.params where !name.hasSuffix(".weight") {
                XCTAssertEqual(result.model.graph.params[name], tensor)
            }
            XCTAssertEqual(result.model.graph.nodes, model.graph.nodes)
        }
    }

    func testNeverWorseThanNearestAndUsuallyBetter() throws {
        let (model, batches) = Self.tinyModel()
        var p = Self.modelParameters(iterations: 400)
        p.paramBitwidth = 3
        let result = try AdaRound.apply(model: model, inputs: batches, parameters: p)
        for r in result.report {
            XCTAssertTrue(r.keptNearest || r.mseAdaRound < r.mseNearest, "\(r)")
            XCTAssertEqual(r.iterations, 400)
            XCTAssertEqual(r.bitwidth, 3)
        }
        XCTAssertLessThan(result.report[0].mseAdaRound, result.report[0].mseNearest)
        XCTAssertFalse(result.report[0].keptNearest)
    }

    func testLayerRunKeepsNearestWhenNotBeaten() throws {
        // No iterations: hard rounding of the initial V (h = rest, V ≥ 0 ⇔ rest ≥ ½) is
        // round-to-nearest, which is not strictly better than itself.
        let c = Self.makeCase(.conv, inShape: [3, 3, 6, 5], weightShape: [4, 3, 3, 3], attributes: ["pads": .ints([1, 1, 1, 1])])
        let layer = try c.layer(Self.parameters(positions: false))
        let (weight, report) = layer.run(iterations: 0)
        XCTAssertTrue(report.keptNearest)
        XCTAssertEqual(weight, layer.nearestWeight)
        XCTAssertEqual(report.mseNearest, try layer.reconstructionError(layer.nearestWeight), accuracy: 1e-12)
    }

    func testSameSeedSameWeightsBitForBit() throws {
        let (model, batches) = Self.tinyModel()
        for positions in [nil, 50] as [Int?] {
            var p = Self.modelParameters(iterations: 80)
            p.positionSamples = positions
            let a = try AdaRound.apply(model: model, inputs: batches, parameters: p)
            let b = try AdaRound.apply(model: model, inputs: batches, parameters: p)
            XCTAssertEqual(a.model.graph.params, b.model.graph.params)
            XCTAssertEqual(a.report.map(\.mseAdaRound), b.report.map(\.mseAdaRound))
            assertRoundingInvariant(model.graph, a)
        }
    }

    func testEncodingsFileReloadsIntoQuantSimBitExact() throws {
        let (model, batches) = Self.tinyModel()
        let result = try AdaRound.apply(model: model, inputs: batches, parameters: Self.modelParameters(iterations: 60))
        let text = try result.encodings.jsonText()
        XCTAssertTrue(text.contains("\"param_encodings\""))
        XCTAssertFalse(text.contains("activation_encodings"))
        XCTAssertFalse(text.contains("version"))
        let reread = try EncodingsFile(json: Data(text.utf8))
        XCTAssertEqual(reread.paramEncodings.map(\.name).sorted(), ["c1.weight", "dw.weight", "fc.weight", "pw.weight"])
        for entry in result.encodings.paramEncodings {
            XCTAssertEqual(reread.paramEncodings(named: entry.name), entry.encodings)
        }
        var options = QuantSim.Options()
        options.paramBitwidth = 4
        let sim = try QuantSim(model: result.model, options: options)
        try sim.setParamEncodings(reread, freeze: true)
        try sim.computeParamEncodings()
        let quantized = try sim.quantizedParams()
        for entry in result.encodings.paramEncodings {
            XCTAssertEqual(quantized[entry.name], result.model.graph.params[entry.name], entry.name)
        }
    }

    func testIgnoreListAndOverrides() throws {
        let (model, batches) = Self.tinyModel()
        var p = Self.modelParameters(iterations: 20)
        p.ignore = ["dw"]                            // node name
        p.paramBitwidthOverrides = ["pw.weight": 8, "fc": 6]   // weight name, module path
        let result = try AdaRound.apply(model: model, inputs: batches, parameters: p)
        XCTAssertEqual(result.report.map(\.name), ["c1", "pw", "fc"])
        XCTAssertEqual(result.report.map(\.bitwidth), [4, 8, 6])
        XCTAssertEqual(result.model.graph.params["dw.weight"], model.graph.params["dw.weight"])
        XCTAssertNil(result.encodings.paramEncodings(named: "dw.weight"))
        // Default iterations: 15000 when a bitwidth is below 8, else 10000.
        XCTAssertEqual(AdaRoundParameters(numBatches: 1).resolvedIterations(bitwidths: [8, 4]), 15000)
        XCTAssertEqual(AdaRoundParameters(numBatches: 1).resolvedIterations(bitwidths: [8, 16]), 10000)
        XCTAssertEqual(AdaRoundParameters(numBatches: 1, iterations: 32).resolvedIterations(bitwidths: [4]), 32)
    }

    func testBadInputsGiveClearErrors() throws {
        let (model, batches) = Self.tinyModel()
        var p = Self.modelParameters(iterations: 5)
        p.numBatches = 4
        assertThrows(.invalidArgument, containing: "only 3") { _ = try AdaRound.apply(model: model, inputs: batches, parameters: p) }
        p.numBatches = 1
        assertThrows(.invalidArgument, containing: "empty") { _ = try AdaRound.apply(model: model, inputs: [], parameters: p) }
        for bits in [1, 17] {
            var q = p
            q.paramBitwidth = bits
            assertThrows(.invalidArgument, containing: "2...16") { _ = try AdaRound.apply(model: model, inputs: batches, parameters: q) }
        }
        var q = p
        q.paramBitwidthOverrides = ["c1": 32]
        assertThrows(.invalidArgument, containing: "2...16") { _ = try AdaRound.apply(model: model, inputs: batches, parameters: q) }
        q = p
        q.ignore = ["conv_that_is_not_there"]
        assertThrows(.unknownName, containing: "conv_that_is_not_there") { _ = try AdaRound.apply(model: model, inputs: batches, parameters: q) }
        q = p
        q.paramBitwidthOverrides = ["nope": 8]
        assertThrows(.unknownName, containing: "nope") { _ = try AdaRound.apply(model: model, inputs: batches, parameters: q) }
        q = p
        q.scheme = .postTrainingPercentile
        assertThrows(.invalidArgument, containing: "post_training_tf") { _ = try AdaRound.apply(model: model, inputs: batches, parameters: q) }
        q = p
        q.numBatches = 0
        assertThrows(.invalidArgument, containing: "num_batches") { _ = try AdaRound.apply(model: model, inputs: batches, parameters: q) }
        // Batches whose images differ in size cannot be cached together.
        q = p
        q.numBatches = 2
        var mixed = batches
        mixed[1] = ["x": try Tensor(shape: [2, 3, 9, 9], data: [Float](repeating: 0.5, count: 2 * 3 * 81))]
        XCTAssertThrowsError(try AdaRound.apply(model: model, inputs: mixed, parameters: q))
    }
}
