import AimetCore
import ArgumentParser
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

/// `aimetcle adaround MODEL.onnx --data calib.npy -o OUT.onnx`: AIMET's
/// Adaround.apply_adaround on an ONNX file.
struct AdaRoundCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "adaround",
        abstract: "AdaRound the weights of an ONNX model and write the model and its weight encodings.",
        discussion: """
            Learns, layer by layer (Conv, ConvTranspose, Gemm/MatMul with constant weights), \
            whether each weight rounds up or down, so that the layer's output on the \
            calibration data stays close to the float model's (AIMET's AdaRound). Writes the \
            model with the adarounded, dequantized weights to -o and the weight encodings \
            (AIMET's JSON, param_encodings) to --encodings (default: -o with the extension \
            .encodings); a quantization simulation loads them with \
            set_and_freeze_param_encodings. Both files are written together at the end, \
            through temporary files: a failure writes neither.

            --data is a .npy array of calibration inputs [N, ...] for the model's single \
            input; it is cut into batches of --batch-size (the last may be smaller) and the \
            first --num-batches are used. Prints one line per layer (iterations/s and the \
            reconstruction MSE with nearest rounding → adarounded); --quiet prints nothing.

            On error, prints one line `error: <message>` to stderr, writes nothing and \
            exits with status 1.

            Examples:
              aimetcle adaround model.onnx --data calib.npy -o ada.onnx
              aimetcle adaround model.onnx --data calib.npy --param-bw 4 --iterations 2000 \\
                  -o ada.onnx --encodings ada.encodings
              aimetcle adaround model.onnx --data calib.npy -o ada.onnx --per-channel --json
            """
    )

    @Argument(help: ArgumentHelp("The ONNX model.", valueName: "model.onnx"))
    var model: String

    @Option(help: ArgumentHelp("Calibration inputs: a float32/float64 .npy array [N, ...].", valueName: "calib.npy"))
    var data: String

    @Option(name: [.customShort("o"), .customLong("out")],
            help: ArgumentHelp("Where to write the adarounded model.", valueName: "out.onnx"))
    var out: String

    @Option(help: ArgumentHelp("Where to write the weight encodings (default: OUT with extension .encodings).",
                               valueName: "out.encodings"))
    var encodings: String?

    @Option(name: .customLong("param-bw"), help: "Weight bitwidth (2..16).")
    var paramBitwidth = 4

    @Option(help: "Optimisation steps per layer (default: AIMET's, 10000; 15000 below 8 bits).")
    var iterations: Int?

    @Option(name: .customLong("batch-size"), help: "Samples per calibration batch cut from --data.")
    var batchSize = 32

    @Option(name: .customLong("num-batches"), help: "How many batches to use (default: all).")
    var numBatches: Int?

    @Option(help: "Weight encodings: tf (min-max) or tf-enhanced (SQNR search).")
    var scheme = "tf-enhanced"

    @Flag(name: .customLong("per-channel"), help: "One weight encoding per output channel.")
    var perChannel = false

    @Option(help: ArgumentHelp("An AIMET quantsim config JSON file (weight symmetry, per-channel).", valueName: "file"))
    var config: String?

    @Option(parsing: .upToNextOption, help: ArgumentHelp("Layers not to adaround (node, weight or module names).",
                                                         valueName: "name"))
    var ignore: [String] = []

    @Option(name: .customLong("bw-override"), parsing: .upToNextOption,
            help: ArgumentHelp("A layer's own weight bitwidth.", valueName: "name=bits"))
    var overrides: [String] = []

    @Option(name: .customLong("reg-param"), help: "Weight of the rounding loss.")
    var regParam: Float = 0.01

    @Option(name: .customLong("beta-range"), parsing: .upToNextOption, help: "Start and end of the annealed beta.")
    var betaRange: [Double] = [20, 2]

    @Option(name: .customLong("warm-start"), help: "Fraction of the steps without rounding loss.")
    var warmStart: Double = 0.2

    @Option(name: .customLong("position-samples"),
            help: "Estimator for convolutions: output positions per step drawn from all cached images (default: off).")
    var positionSamples: Int?

    @Option(help: "Seed of the mini-batch draws.")
    var seed: UInt64 = 0

    @Flag(name: .shortAndLong, help: "Print nothing on success.")
    var quiet = false

    @Flag(help: "Print one JSON object (per-layer report and timings) at the end instead of text.")
    var json = false

    func run() throws {
        try reportingErrors {
            let encodingsPath = encodings ?? Self.replacingExtension(out, with: ".encodings")
            for target in [out, encodingsPath] where target == model || sameFile(target, model) {
                throw CommandFailure("'\(target)' is the input model; choose another output file")
            }
            guard out != encodingsPath else { throw CommandFailure("-o and --encodings name the same file '\(out)'") }
            let parameters = try makeParameters()
            let (loaded, loadMs) = try timed { try Model.load(onnxFile: model) }
            let batches = try calibrationBatches(for: loaded)
            var parametersUsed = parameters
            parametersUsed.numBatches = numBatches ?? batches.count
            let progress: AdaRound.Progress? = quiet || json ? nil : { name, index, count, r in
                let outcome = r.keptNearest ? "kept nearest" : "adarounded"
                print("layer \(index + 1)/\(count) \(name): \(Int(r.iterationsPerSecond.rounded())) it/s, "
                      + "MSE \(short(Float(r.mseNearest))) → \(short(Float(r.mseAdaRound))) (\(outcome))")
                fflush(nil)  // every stream: Swift 6 rejects the global `stdout`
            }
            let (result, adaroundMs) = try timed {
                try AdaRound.apply(model: loaded, inputs: batches, parameters: parametersUsed, progress: progress)
            }
            let ((), saveMs) = try timed {
                try FileIO.writeAtomically([(try result.model.onnxData(), out),
                                            (Data(try result.encodings.jsonText().utf8), encodingsPath)])
            }
            if quiet { return }
            if json {
                let object: JSON = .object([
                    ("model", .string(model)), ("out", .string(out)), ("encodings", .string(encodingsPath)),
                    ("layers", .array(result.report.map(\.json))),
                    ("timings_ms", .object([("load", .double(loadMs)), ("adaround", .double(adaroundMs)),
                                            ("save", .double(saveMs))])),
                ])
                print(object.text(pretty: true))
                return
            }
            let kept = result.report.filter(\.keptNearest).count
            print("AdaRounded \(plural(result.report.count, "layer")) of \(model) → \(out), encodings → \(encodingsPath)"
                  + (kept > 0 ? " (\(kept) kept nearest rounding)" : ""))
            print("Timings: load \(ms(loadMs)), adaround \(ms(adaroundMs)), save \(ms(saveMs))")
        }
    }

    private func makeParameters() throws -> AdaRoundParameters {
        guard batchSize >= 1 else { throw CommandFailure("--batch-size must be at least 1, got \(batchSize)") }
        if let numBatches, numBatches < 1 { throw CommandFailure("--num-batches must be at least 1, got \(numBatches)") }
        guard betaRange.count == 2 else { throw CommandFailure("--beta-range takes two numbers (start end), got \(betaRange.count)") }
        var p = AdaRoundParameters(numBatches: 1, iterations: iterations)
        p.paramBitwidth = paramBitwidth
        switch scheme {
        case "tf": p.scheme = .postTrainingTF
        case "tf-enhanced", "tf_enhanced": p.scheme = .postTrainingTFEnhanced
        default: throw CommandFailure("--scheme must be tf or tf-enhanced, got '\(scheme)'")
        }
        if perChannel { p.perChannel = true }
        if let config { p.config = try QuantSimConfig(json: try FileIO.read(config)) }
        p.ignore = ignore
        for entry in overrides {
            let parts = entry.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty, let bits = Int(parts[1]) else {
                throw CommandFailure("--bw-override takes name=bits, got '\(entry)'")
            }
            p.paramBitwidthOverrides[String(parts[0])] = bits
        }
        p.regParam = regParam
        p.betaRange = (betaRange[0], betaRange[1])
        p.warmStart = warmStart
        p.positionSamples = positionSamples
        p.seed = seed
        return p
    }

    /// --data cut into batches for the model's single input.
    private func calibrationBatches(for model: Model) throws -> [[String: Tensor]] {
        let inputs = model.graph.inputs
        guard inputs.count == 1 else {
            throw CommandFailure("the model has \(inputs.count) inputs; the command line feeds one (use the Python or C API)")
        }
        let all = try NPY.read(data)
        guard let n = all.shape.first, n > 0 else { throw CommandFailure("'\(data)' holds no samples (shape \(all.shape))") }
        let sample = all.count / n
        return try stride(from: 0, to: n, by: batchSize).map { start in
            let end = min(n, start + batchSize)
            var shape = all.shape
            shape[0] = end - start
            return [inputs[0].name: try Tensor(shape: shape, data: Array(all.data[(start * sample)..<(end * sample)]))]
        }
    }

    static func replacingExtension(_ path: String, with ext: String) -> String {
        let slash = path.lastIndex(of: "/").map { path.index(after: $0) } ?? path.startIndex
        if let dot = path[slash...].lastIndex(of: "."), dot > slash { return String(path[..<dot]) + ext }
        return path + ext
    }
}
