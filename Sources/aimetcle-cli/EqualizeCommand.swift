import AimetCore
import ArgumentParser

/// `aimetcle equalize MODEL.onnx -o OUT.onnx`: AIMET's equalize_model on an
/// ONNX file.
struct EqualizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "equalize",
        abstract: "Cross-layer-equalize an ONNX model and save the result.",
        discussion: """
            Runs AIMET's auto-mode equalization: folds BatchNormalization nodes into their \
            Conv/Gemm layers (the BN nodes disappear), replaces ReLU6 (Clip 0..6) with ReLU, \
            scales every CLS set (a pair of convs, or conv + depthwise conv + conv, joined \
            only by ReLUs) and folds high biases into the next layer. Then writes the model \
            to -o (through a temporary file: a failed save leaves no partial file) and prints \
            what it did and how long each step took.

            --start / --output limit the work to the nodes between those node or value \
            names (several may follow one flag; give MODEL first). The input file is never \
            overwritten unless --in-place is given.

            On error, prints one line `error: <message>` to stderr, writes nothing and \
            exits with status 1.

            Examples:
              aimetcle equalize model.onnx -o cle.onnx
              aimetcle equalize model.onnx -o cle.onnx --keep-relu6 --no-high-bias-fold
              aimetcle equalize model.onnx -o cle.onnx --json
              aimetcle equalize model.onnx --in-place --quiet
              aimetcle equalize model.onnx -o cle.onnx --start /block1/Add --output logits
            """
    )

    @Argument(help: ArgumentHelp("The ONNX model to equalize.", valueName: "model.onnx"))
    var model: String

    @Option(name: [.customShort("o"), .customLong("out")],
            help: ArgumentHelp("Where to write the equalized model.", valueName: "out.onnx"))
    var out: String?

    @Flag(name: .customLong("in-place"), help: "Allow writing over the input model (-o may then be omitted).")
    var inPlace = false

    @Flag(name: .shortAndLong, help: "Print nothing on success.")
    var quiet = false

    @Flag(help: "Print one JSON object (the report and timings) instead of text.")
    var json = false

    @OptionGroup(title: "Equalization options")
    var equalize: EqualizeOptions

    func run() throws {
        try reportingErrors {
            let target: String
            if let out {
                if !inPlace && (out == model || sameFile(out, model)) {
                    throw CommandFailure("-o '\(out)' is the input model; pass --in-place to overwrite it, or choose another output file")
                }
                target = out
            } else if inPlace {
                target = model
            } else {
                throw CommandFailure("no output file: give -o OUT.onnx (or --in-place to overwrite '\(model)')")
            }

            var (loaded, loadMs) = try timed { try Model.load(onnxFile: model) }
            let (report, equalizeMs) = try timed { try equalize.run(&loaded) }
            let ((), saveMs) = try timed { try loaded.save(onnxFile: target) }

            if quiet { return }
            if json {
                let object: JSON = .object([
                    ("model", .string(model)),
                    ("out", .string(target)),
                    ("report", report.json(scales: true)),
                    ("timings_ms", .object([("load", .double(loadMs)), ("equalize", .double(equalizeMs)),
                                            ("save", .double(saveMs))])),
                ])
                print(object.text(pretty: true))
                return
            }
            print("Equalized \(model) → \(target)")
            report.printText(options: equalize.options, would: false)
            print("Timings: load \(ms(loadMs)), equalize \(ms(equalizeMs)), save \(ms(saveMs))")
        }
    }
}
