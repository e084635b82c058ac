import AimetCore
import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif

/// `aimetcle`: inspect and cross-layer-equalize ONNX models from the shell.
///
/// SwiftPM cannot have an executable product named like the `aimetcle`
/// library product, so the product is `aimetcle-cli`; `make cli` installs it
/// as `build/aimetcle`. The command calls itself `aimetcle` either way.
@main
struct AimetCLI: ParsableCommand {
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "aimetcle",
        abstract: "Cross-layer equalization and AdaRound (AIMET's equalize_model, apply_adaround) for ONNX models.",
        discussion: """
            Folds BatchNormalization into the adjacent Conv/Gemm layers, replaces ReLU6 \
            (Clip 0..6) with ReLU, scales cross-layer-equalization (CLS) sets so that their \
            weight ranges match, and folds high biases into the next layer, as AIMET's \
            equalize_model does. The model computes the same function afterwards (but for \
            ReLU6 becoming ReLU, and approximately after the high-bias fold), with weights \
            that quantize better.

            Examples:
              aimetcle inspect model.onnx
              aimetcle equalize model.onnx -o model_cle.onnx
              aimetcle equalize model.onnx -o model_cle.onnx --keep-relu6 --json
              aimetcle adaround model.onnx --data calib.npy --param-bw 4 -o ada.onnx
            """,
        version: AimetCLI.version,
        subcommands: [Inspect.self, EqualizeCommand.self, AdaRoundCommand.self]
    )
}

// MARK: - Options shared by inspect and equalize

struct EqualizeOptions: ParsableArguments {
    @Flag(name: .customLong("keep-relu6"),
          help: "Keep ReLU6 (Clip 0..6) nodes; CLS then does not scale across them.")
    var keepRelu6 = false

    @Flag(name: .customLong("no-bn-fold"), help: "Do not fold BatchNormalization nodes.")
    var noBatchNormFold = false

    @Flag(name: .customLong("no-scale"), help: "Do not scale CLS sets (and so fold no high biases).")
    var noScale = false

    @Flag(name: .customLong("no-high-bias-fold"), help: "Do not fold high biases after scaling.")
    var noHighBiasFold = false

    @Option(name: .customLong("start"), parsing: .upToNextOption,
            help: ArgumentHelp("Limit equalization to the nodes after these node or value names.",
                               valueName: "name"))
    var starts: [String] = []

    @Option(name: .customLong("output"), parsing: .upToNextOption,
            help: ArgumentHelp("Limit equalization to the nodes before these node or value names.",
                               valueName: "name"))
    var outputs: [String] = []

    var options: Equalize.Options {
        var options = Equalize.Options()
        options.replaceRelu6 = !keepRelu6
        options.foldBatchNorms = !noBatchNormFold
        options.scale = !noScale
        options.highBiasFold = !noHighBiasFold
        return options
    }

    /// Runs `Equalize.run` with these options on `model`.
    func run(_ model: inout Model) throws -> EqualizeReport {
        try Equalize.run(&model, options: options, starts: starts.isEmpty ? nil : starts,
                         outputs: outputs.isEmpty ? nil : outputs)
    }
}

// MARK: - Errors

/// A failure of the command itself (not of the library), e.g. a refused `-o`.
struct CommandFailure: Error {
    let message: String
    init(_ message: String) { self.message = message }
}

/// Runs a command body; every failure becomes one `error: <message>` line on
/// stderr and exit code 1.
func reportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as AimetError {
        printError(error.message)
        throw ExitCode.failure
    } catch let error as CommandFailure {
        printError(error.message)
        throw ExitCode.failure
    } catch let error as ExitCode {
        throw error
    } catch {
        printError("\(error)")
        throw ExitCode.failure
    }
}

func printError(_ message: String) {
    let line = "error: " + message.replacingNewlines() + "\n"
    var bytes = Array(line.utf8)
    // write(2), not fputs(stderr): Swift 6 rejects the global `stderr`.
    var offset = 0
    while offset < bytes.count {
        let n = bytes.withUnsafeMutableBytes { write(STDERR_FILENO, $0.baseAddress! + offset, $0.count - offset) }
        if n <= 0 { break }
        offset += n
    }
}

extension String {
    /// One line: newlines inside a message become spaces.
    func replacingNewlines() -> String {
        String(map { $0 == "\n" || $0 == "\r" ? " " : $0 })
    }
}

// MARK: - Files

/// Whether `a` and `b` name the same existing file (also through links or
/// different spellings of the path).
func sameFile(_ a: String, _ b: String) -> Bool {
    var sa = stat(), sb = stat()
    guard stat(a, &sa) == 0, stat(b, &sb) == 0 else { return false }
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino
}

// MARK: - Timing

/// Runs `body` and returns its result and the time it took in milliseconds.
func timed<R>(_ body: () throws -> R) rethrows -> (R, Double) {
    let clock = ContinuousClock()
    let start = clock.now
    let result = try body()
    let elapsed = clock.now - start
    let (seconds, attoseconds) = elapsed.components
    return (result, Double(seconds) * 1000 + Double(attoseconds) / 1e15)
}
