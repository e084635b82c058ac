import XCTest
import Foundation
import Dispatch
@testable import AimetCore

/// AdaRound timings and quality on representative layers and the digits
/// model. Skipped unless `AIMETCLE_ADAROUND_BENCH` is set; meant for a release
/// build:
///
///     swift build -c release -Xswiftc -enable-testing --product aimetclePackageTests
///     AIMETCLE_ADAROUND_BENCH=layers .build/release/aimetclePackageTests.xctest \
///         AimetCoreTests.AdaRoundBenchTests/testLayerSpeed
///
/// - `AIMETCLE_ADAROUND_BENCH=layers`: ms per step of each layer (64 cached
///   images, batch 32), whole images and `AIMETCLE_ADAROUND_POSITIONS` sampled
///   positions; `layers-quality` adds the reconstruction error after
///   `AIMETCLE_ADAROUND_STEPS` steps, whole images against the estimator.
///   `AIMETCLE_ADAROUND_ONLY` filters layers by name.
/// - `AIMETCLE_ADAROUND_BENCH=digits`: AdaRound on data/digits_mbv2.onnx, BN
///   folded and raw, W4 per-tensor (`AIMETCLE_ADAROUND_PERCHANNEL=1`: per
///   channel) with the 300 calibration images as 10 batches: total time, then
///   accuracy and logit MSE against FP32 on the test split with float
///   activations (W4) and in a W4A8 quantsim. `AIMETCLE_DIGITS_DIR` holds
///   `digits_x_calib.bin`, `digits_x_test.bin` (raw float32) and
///   `digits_y_test.bin` (raw int32) from data/digits.npz.
///   `AIMETCLE_ADAROUND_ITERATIONS` (default `2000,10000`), `AIMETCLE_ADAROUND_SEEDS`
///   (e.g. `0,1,2,3,4`: one run per seed, then the mean and range),
///   `AIMETCLE_ADAROUND_MODELS` (`folded,raw`), `AIMETCLE_ADAROUND_VERBOSE` (per layer).
/// - `AIMETCLE_ADAROUND_BENCH=layer-dump`: see `testLayerDump`.
final class AdaRoundBenchTests: XCTestCase {
    private var mode: String { ProcessInfo.processInfo.environment["AIMETCLE_ADAROUND_BENCH"] ?? "" }
    private func env(_ key: String) -> String? { ProcessInfo.processInfo.environment[key] }

    // MARK: - Layers

    struct BenchLayer {
        var name: String
        var node: Node
        var weight: Tensor
        var input: Tensor
        var target: Tensor
        var activation: AdaRoundActivation
    }

    static func benchLayer(_ name: String, _ op: Op, input inShape: [Int], weight wShape: [Int],
                           attributes: [String: Attribute], activation: AdaRoundActivation) throws -> BenchLayer {
        var rng = TestRandom(1)
        let fanIn = wShape.dropFirst().reduce(1, *)
        let bound = 1 / Float(fanIn).squareRoot()
        let weight = try Tensor(shape: wShape, data: rng.floats(wShape.reduce(1, *), -bound, bound))
        let input = try Tensor(shape: inShape, data: rng.floats(inShape.reduce(1, *), 0, 1))
        let node = Node(name: name, op: op, inputs: ["x", "w"], outputs: ["y"], attributes: attributes)
        var graph = Graph()
        graph.inputs = [ValueInfo(name: "x", shape: nil)]
        graph.params["w"] = weight
        graph.nodes = [node]
        graph.outputs = [ValueInfo(name: "y", shape: nil)]
        let target = try Executor(graph: graph).run(["x": input])["y"]!
        return BenchLayer(name: name, node: node, weight: weight, input: input, target: target, activation: activation)
    }

    /// The benchmark layers (AIMET's per-step cost in the issue) and two digits-sized ones.
    static let specs: [(name: String, op: Op, input: [Int], weight: [Int], attributes: [String: Attribute],
                        activation: AdaRoundActivation, samples: Int?)] = {
        let pad1 = ["pads": Attribute.ints([1, 1, 1, 1])]
        return [
            ("conv 64->64 3x3 @56", .conv, [64, 56, 56], [64, 64, 3, 3], pad1, .elementwise(.relu), nil),
            ("depthwise 144 3x3 @56", .conv, [144, 56, 56], [144, 1, 3, 3], pad1.merging(["group": .int(144)]) { $1 }, .elementwise(.clip(0, 6)), nil),
            ("pointwise 144->24 @56", .conv, [144, 56, 56], [24, 144, 1, 1], [:], .none, nil),
            ("linear 512->1000", .gemm, [512], [1000, 512], ["transB": .int(1)], .none, nil),
            ("conv 24->144 1x1 @4", .conv, [24, 4, 4], [144, 24, 1, 1], [:], .elementwise(.clip(0, 6)), nil),
            ("digits expand 16->96 @16", .conv, [16, 16, 16], [96, 16, 1, 1], [:], .elementwise(.clip(0, 6)), 300),
            ("digits dw 96 @16", .conv, [96, 16, 16], [96, 1, 3, 3], pad1.merging(["group": .int(96)]) { $1 }, .elementwise(.clip(0, 6)), 300),
        ]
    }()

    static func layers(samples n: Int, only: String?) throws -> [BenchLayer] {
        try specs.filter { spec in only.map { spec.name.contains($0) } ?? (spec.samples == nil) }.map {
            try benchLayer($0.name, $0.op, input: [$0.samples ?? n] + $0.input, weight: $0.weight, attributes: $0.attributes,
                           activation: $0.activation)
        }
    }

    func optimiser(_ l: BenchLayer, positions: Int?, bits: Int = 4) throws -> AdaRoundLayer {
        var p = AdaRoundParameters(numBatches: 1)
        p.positionSamples = positions
        p.threads = Int(env("AIMETCLE_ADAROUND_THREADS") ?? "0")!
        p.seed = UInt64(env("AIMETCLE_ADAROUND_SEED") ?? "0")!
        let enc = try AdaRoundLayer.weightEncodings(node: l.node, weight: l.weight, scheme: .postTrainingTFEnhanced,
                                                    settings: EncodingSettings(bitwidth: bits, symmetric: true), perChannel: false)
        return try AdaRoundLayer(node: l.node, weight: l.weight, bias: nil, input: l.input, target: l.target,
                                 activation: l.activation, encodings: enc, parameters: p)
    }

    /// Milliseconds per step of `optimize`, after a short warm-up.
    func msPerStep(_ layer: AdaRoundLayer, budget: Double = 3) -> Double {
        layer.optimize(iterations: 3)
        var steps = 5
        while true {
            let start = DispatchTime.now().uptimeNanoseconds
            layer.optimize(iterations: steps)
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            if seconds > budget / 3 || steps >= 20000 { return seconds * 1000 / Double(steps) }
            steps = Int(Double(steps) * min(20, max(2, budget / max(seconds, 1e-6))))
        }
    }

    func testLayerSpeed() throws {
        try XCTSkipUnless(mode.hasPrefix("layers"))
        let samples = Int(env("AIMETCLE_ADAROUND_SAMPLES") ?? "64")!
        let positionCounts = (env("AIMETCLE_ADAROUND_POSITIONS") ?? "2048,4096").split(separator: ",").compactMap { Int($0) }
        let only = env("AIMETCLE_ADAROUND_ONLY")
        for l in try Self.layers(samples: samples, only: only) {
            let images = msPerStep(try optimiser(l, positions: nil))
            var line = String(format: "%-24@ images %8.3f ms/step", l.name as NSString, images)
            if l.node.op == .conv {
                for s in positionCounts {
                    line += String(format: "   positions %5d: %7.3f ms/step", s, msPerStep(try optimiser(l, positions: s)))
                }
            }
            print(line)
        }
        guard mode == "layers-quality" else { return }
        let steps = Int(env("AIMETCLE_ADAROUND_STEPS") ?? "1000")!
        for l in try Self.layers(samples: samples, only: only) where l.node.op == .conv {
            var line = String(format: "%-24@ %d steps: MSE", l.name as NSString, steps)
            for positions in [nil] + positionCounts.map({ Optional($0) }) {
                let layer = try optimiser(l, positions: positions)
                let (_, report) = layer.run(iterations: steps)
                line += String(format: "  %@ nearest %.5g → %.5g (%.1f s)", positions.map { "pos \($0)" } ?? "images",
                               report.mseNearest, report.mseAdaRound, report.seconds)
            }
            print(line)
        }
    }

    // MARK: - Digits

    static func readFloats(_ path: String) throws -> [Float] {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        return data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    }

    /// `AIMETCLE_ADAROUND_BENCH=layer-dump`: for each 1x1 conv and Gemm of the
    /// BN-folded digits model, its float input and output on the 300
    /// calibration images (`{name}.input.bin`, `.target.bin`, raw float32),
    /// weight, bias and weight encoding (`.json`) into `AIMETCLE_DUMP_DIR`, and
    /// the reconstruction error of AdaRound (2000 iterations, seeds
    /// `AIMETCLE_ADAROUND_SEEDS`) on that data: a reference implementation can
    /// run the same layers and compare.
    func testLayerDump() throws {
        try XCTSkipUnless(mode == "layer-dump")
        let dir = env("AIMETCLE_DIGITS_DIR") ?? "/tmp"
        let out = env("AIMETCLE_DUMP_DIR") ?? "/tmp/adaround-dump"
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        var model = try Model.load(onnxFile: root.appendingPathComponent("data/digits_mbv2.onnx").path)
        _ = try BatchNormFold.foldAll(&model.graph)
        let calib = try Self.readFloats("\(dir)/digits_x_calib.bin")
        let batches: [[String: Tensor]] = try stride(from: 0, to: 300, by: 32).map { start in
            let n = min(32, 300 - start)
            return ["input": try Tensor(shape: [n, 1, 16, 16], data: Array(calib[(start * 256)..<((start + n) * 256)]))]
        }
        let graph = model.graph
        var data = try LayerData(graph: graph, opset: 17, threads: 0, batches: batches,
                                 targets: Set(AdaRound.findLayers(graph).map { graph.nodes[$0.end].output }))
        let iterations = Int(env("AIMETCLE_ADAROUND_ITERATIONS") ?? "2000") ?? 2000
        let seeds = (env("AIMETCLE_ADAROUND_SEEDS") ?? "0,1,2,3,4").split(separator: ",").compactMap { UInt64($0) }
        func write(_ data: [Float], _ path: String) throws {
            try data.withUnsafeBufferPointer { try Data(buffer: $0).write(to: URL(fileURLWithPath: path)) }
        }
        for (k, layer) in AdaRound.findLayers(graph).enumerated() {
            let node = graph.nodes[layer.node]
            guard let weight = graph.params[layer.weightName], node.op == .gemm || weight.shape.dropFirst(2).allSatisfy({ $0 == 1 }),
                  node.int("group", default: 1) == 1 else { continue }
            let (input, target) = try data.layer(node: layer.node, inputName: node.input, end: layer.end,
                                                 targetName: graph.nodes[layer.end].output, what: node.name)
            let encodings = try AdaRoundLayer.weightEncodings(node: node, weight: weight, scheme: .postTrainingTFEnhanced,
                                                              settings: EncodingSettings(bitwidth: 4, symmetric: true), perChannel: false)
            let activation = graph.adaRoundActivation(after: layer.node, opset: 17)
            let bias = layer.biasName.flatMap { graph.params[$0] }
            let base = "\(out)/layer\(k)"
            try write(input.data, "\(base).input.bin")
            try write(target.data, "\(base).target.bin")
            try write(weight.data, "\(base).weight.bin")
            try write(bias?.data ?? [], "\(base).bias.bin")
            let act: String
            switch activation {
            case .elementwise(.none): act = "none"
            case .elementwise(.clip(let lo, let hi)): act = "clip \(lo) \(hi)"
            case .elementwise(.relu): act = "relu"
            default: act = "other"
            }
            var results: [String] = []
            for seed in seeds {
                var p = AdaRoundParameters(numBatches: batches.count, iterations: iterations)
                p.seed = seed
                let optimiser = try AdaRoundLayer(node: node, weight: weight, bias: bias, input: input, target: target,
                                                  activation: activation, encodings: encodings, parameters: p)
                let (_, report) = optimiser.run(iterations: iterations)
                results.append(String(format: "%.6g", report.mseAdaRound))
                if seed == seeds[0] { results.insert(String(format: "%.6g", report.mseNearest), at: 0) }
            }
            let meta: [String: Any] = [
                "name": node.name, "op": node.op.onnxType, "input": input.shape, "target": target.shape, "weight": weight.shape,
                "transB": node.int("transB", default: 0), "scale": encodings[0].scale, "offset": encodings[0].offset,
                "num_steps": encodings[0].numSteps, "activation": act, "mse_nearest": results[0],
                "mse_adaround": Array(results.dropFirst()),
            ]
            try JSONSerialization.data(withJSONObject: meta, options: [.sortedKeys]).write(to: URL(fileURLWithPath: "\(base).json"))
            print("layer\(k) \(node.name) \(act): nearest \(results[0]) adaround \(results.dropFirst().joined(separator: " "))")
        }
    }

    func testDigitsModel() throws {
        try XCTSkipUnless(mode.hasPrefix("digits"))
        let dir = env("AIMETCLE_DIGITS_DIR") ?? "/tmp"
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let raw = try Model.load(onnxFile: root.appendingPathComponent("data/digits_mbv2.onnx").path)
        let calib = try Self.readFloats("\(dir)/digits_x_calib.bin"), test = try Self.readFloats("\(dir)/digits_x_test.bin")
        let labels = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/digits_y_test.bin")).withUnsafeBytes { Array($0.bindMemory(to: Int32.self)) }
        let image = 256
        let batches: [[String: Tensor]] = stride(from: 0, to: 300, by: 32).map { start in
            let n = min(32, 300 - start)
            return ["input": try! Tensor(shape: [n, 1, 16, 16], data: Array(calib[(start * image)..<((start + n) * image)]))]
        }
        let testInput = ["input": try Tensor(shape: [300, 1, 16, 16], data: test)]
        let iterations = (env("AIMETCLE_ADAROUND_ITERATIONS") ?? "2000,10000").split(separator: ",").map { Int($0)! }
        let positionOptions: [Int?] = (env("AIMETCLE_ADAROUND_POSITIONS") ?? "none").split(separator: ",").map { $0 == "none" ? nil : Int($0)! }
        let perChannelOptions = (env("AIMETCLE_ADAROUND_PERCHANNEL") ?? "0").split(separator: ",").map { $0 == "1" }
        let seeds = (env("AIMETCLE_ADAROUND_SEEDS") ?? "0").split(separator: ",").map { UInt64($0)! }
        let models = (env("AIMETCLE_ADAROUND_MODELS") ?? "folded,raw").split(separator: ",").map(String.init)
        var folded = raw
        _ = try BatchNormFold.foldAll(&folded.graph)

        func logits(_ model: Model) throws -> Tensor { try Executor(model: model).run(testInput)["logits"]! }
        func accuracy(_ t: Tensor) -> Double {
            var correct = 0
            for i in 0..<300 {
                let row = t.data[(i * 10)..<((i + 1) * 10)]
                if row.firstIndex(of: row.max()!)! - i * 10 == Int(labels[i]) { correct += 1 }
            }
            return Double(correct) / 3
        }
        func mse(_ a: Tensor, _ b: Tensor) -> Double {
            zip(a.data, b.data).reduce(0) { $0 + Double(($1.0 - $1.1) * ($1.0 - $1.1)) } / Double(a.count)
        }
        /// W4A8 quantsim logits: frozen param encodings (or computed, nearest) and 8-bit activations on the calibration data.
        func simulated(_ model: Model, _ encodings: EncodingsFile?, perChannel: Bool) throws -> Tensor {
            var options = QuantSim.Options()
            options.paramBitwidth = 4
            options.perChannel = perChannel
            let sim = try QuantSim(model: model, options: options)
            if let encodings { try sim.setParamEncodings(encodings, freeze: true) }
            sim.beginCalibration()
            for b in batches { _ = try sim.run(b) }
            try sim.endCalibration()
            return try sim.run(testInput)["logits"]!
        }
        let fp32 = try logits(raw)
        print(String(format: "FP32: accuracy %.2f%%", accuracy(fp32)))
        for (label, model) in [("BN folded", folded), ("raw", raw)] where models.contains(label == "raw" ? "raw" : "folded") {
            for perChannel in perChannelOptions {
                let nearest = try simulated(model, nil, perChannel: perChannel)
                print(String(format: "%@ %@ W4A8 nearest: accuracy %.2f%%, logit MSE %.4f", label, perChannel ? "per-channel" : "per-tensor",
                             accuracy(nearest), mse(nearest, fp32)))
                for n in iterations {
                    for positions in positionOptions {
                      var errors: [Double] = [], worstAccuracy = 100.0
                      for seed in seeds {
                        var p = AdaRoundParameters(numBatches: batches.count, iterations: n)
                        p.paramBitwidth = 4
                        p.perChannel = perChannel
                        p.positionSamples = positions
                        p.seed = seed
                        let start = DispatchTime.now().uptimeNanoseconds
                        let result = try AdaRound.apply(model: model, inputs: batches, parameters: p)
                        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                        let w4 = try logits(result.model)
                        let w4a8 = try simulated(result.model, result.encodings, perChannel: perChannel)
                        let kept = result.report.filter(\.keptNearest).count
                        errors.append(mse(w4a8, fp32))
                        worstAccuracy = min(worstAccuracy, accuracy(w4a8))
                        print(String(format: "%@ %@ AdaRound %5d its %@ seed %d: %.1f s; W4 acc %.2f%% MSE %.4f; W4A8 acc %.2f%% MSE %.4f; kept nearest %d/%d",
                                     label, perChannel ? "per-channel" : "per-tensor", n, positions.map { "pos \($0)" } ?? "images", Int(seed),
                                     seconds, accuracy(w4), mse(w4, fp32), accuracy(w4a8), mse(w4a8, fp32), kept, result.report.count))
                        if env("AIMETCLE_ADAROUND_VERBOSE") != nil {
                            for r in result.report {
                                print(String(format: "   %-44@ %6.0f it/s  MSE %.5g → %.5g%@", r.name as NSString, r.iterationsPerSecond,
                                             r.mseNearest, r.mseAdaRound, r.keptNearest ? " (kept nearest)" : ""))
                            }
                        }
                      }
                      if seeds.count > 1 {
                          print(String(format: "%@ %@ AdaRound %5d its %@, %d seeds: W4A8 logit MSE mean %.4f, range %.4f ... %.4f; lowest accuracy %.2f%%",
                                       label, perChannel ? "per-channel" : "per-tensor", n, positions.map { "pos \($0)" } ?? "images",
                                       seeds.count, errors.reduce(0, +) / Double(errors.count), errors.min() ?? 0, errors.max() ?? 0,
                                       worstAccuracy))
                      }
                    }
                }
            }
        }
    }
}
