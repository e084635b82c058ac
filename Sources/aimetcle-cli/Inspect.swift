import AimetCore
import ArgumentParser

/// `aimetcle inspect MODEL.onnx`: what the model is, and what equalization
/// would do to it (computed on a copy; the file is not changed).
struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Describe an ONNX model and what equalization would do to it.",
        discussion: """
            Prints the opset, the inputs and outputs with their shapes (? marks a free \
            dimension), the count of each op type, the parameter count, and the number of \
            ReLU6 (Clip 0..6) nodes. Then runs equalization on a copy of the model in memory \
            and lists what it would do: the BatchNormalization nodes that fold into a layer, \
            the ReLU6 nodes that become ReLU, the CLS sets (pairs and depthwise triplets) \
            with the range of their scale factors, and the high-bias folds. The file is \
            never changed. The equalization options are those of `aimetcle equalize`.

            Examples:
              aimetcle inspect model.onnx
              aimetcle inspect model.onnx --keep-relu6
              aimetcle inspect model.onnx --json | python3 -m json.tool
            """
    )

    @Argument(help: ArgumentHelp("The ONNX model to inspect.", valueName: "model.onnx"))
    var model: String

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    @OptionGroup(title: "Equalization options (for the preview)")
    var equalize: EqualizeOptions

    func run() throws {
        try reportingErrors {
            let loaded = try Model.load(onnxFile: model)
            let graph = loaded.graph

            // Op counts, in order of first appearance.
            var opOrder: [String] = []
            var opCounts: [String: Int] = [:]
            for node in graph.nodes {
                let op = node.op.onnxType
                if opCounts[op] == nil { opOrder.append(op) }
                opCounts[op, default: 0] += 1
            }
            let parameterValues = graph.params.values.reduce(0) { $0 + $1.count }
            var scratch = graph
            let relu6 = ReluSixReplacement.apply(&scratch).count

            // The preview: equalization on a copy.
            var copy = loaded
            let preview: Result<EqualizeReport, AimetError>
            do {
                preview = .success(try equalize.run(&copy))
            } catch let error as AimetError where error.kind != .unknownName {
                // A model equalization cannot handle is a finding; a --start or
                // --output name that does not exist is the user's error (thrown).
                preview = .failure(error)
            }

            if json {
                var equalization: JSON
                switch preview {
                case .success(let report): equalization = report.json(scales: false)
                case .failure(let error): equalization = .object([("error", .string(error.message))])
                }
                let object: JSON = .object([
                    ("model", .string(model)),
                    ("opset", loaded.onnxOpset.map { .int($0) } ?? .null),
                    ("inputs", .array(graph.inputs.map { .object([("name", .string($0.name)), ("shape", .shape($0.shape))]) })),
                    ("outputs", .array(graph.outputs.map { .object([("name", .string($0.name)), ("shape", .shape($0.shape))]) })),
                    ("nodes", .int(graph.nodes.count)),
                    ("ops", .object(opOrder.map { ($0, .int(opCounts[$0]!)) })),
                    ("parameter_tensors", .int(graph.params.count)),
                    ("parameters", .int(parameterValues)),
                    ("relu6", .int(relu6)),
                    ("equalization", equalization),
                ])
                print(object.text(pretty: true))
                return
            }

            print("Model:      \(model)")
            print("Opset:      \(loaded.onnxOpset.map(String.init) ?? "?")")
            let ioWidth = (graph.inputs + graph.outputs).map(\.name.count).max() ?? 0
            for (k, input) in graph.inputs.enumerated() {
                print("\(k == 0 ? "Inputs:     " : "            ")\(padded(input.name, ioWidth))  \(formatShape(input.shape))")
            }
            if graph.inputs.isEmpty { print("Inputs:     (none)") }
            for (k, output) in graph.outputs.enumerated() {
                print("\(k == 0 ? "Outputs:    " : "            ")\(padded(output.name, ioWidth))  \(formatShape(output.shape))")
            }
            if graph.outputs.isEmpty { print("Outputs:    (none)") }
            print("Nodes:      \(graph.nodes.count)")
            let opWidth = opOrder.map(\.count).max() ?? 0
            let countWidth = opCounts.values.map { String($0).count }.max() ?? 0
            for op in opOrder {
                let count = String(opCounts[op]!)
                print("  \(padded(op, opWidth))  \(String(repeating: " ", count: countWidth - count.count))\(count)")
            }
            print("Parameters: \(grouped(parameterValues)) floats in \(plural(graph.params.count, "tensor"))")
            print("ReLU6:      \(plural(relu6, "Clip(0, 6) node"))")
            print("")
            switch preview {
            case .success(let report):
                print("What equalization would do (on a copy; the file is not changed):")
                report.printText(options: equalize.options, would: true)
            case .failure(let error):
                print("Equalization would fail: \(error.message.replacingNewlines())")
            }
        }
    }
}
