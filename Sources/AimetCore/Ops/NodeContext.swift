/// What a catalogue entry sees when it compiles a node: the node, the opset,
/// the element type of each input, and the inputs known at compile time
/// (parameters, Constant nodes, and values folded from them).
struct NodeContext {
    let node: Node
    let opset: Int
    /// Element types by value name (every value defined before the node).
    let types: [String: ElementType]
    /// Values known at compile time, by name.
    let constants: [String: Value]
    /// Values read by some node or a graph output (a node's extra outputs must not be).
    let used: Set<String>

    /// "node 'name' (Op)", for messages.
    var what: String { "node '\(node.name)' (\(node.op))" }

    /// The name of input `i`, which must be present.
    func input(_ i: Int, _ role: String) throws -> String {
        guard i < node.inputs.count, !node.inputs[i].isEmpty else { throw AimetError.invalid("\(what) has no \(role) input") }
        return node.inputs[i]
    }

    /// The name of input `i`, nil when absent or empty.
    func optional(_ i: Int) -> String? { i < node.inputs.count && !node.inputs[i].isEmpty ? node.inputs[i] : nil }

    /// The element type of input `i` (float32 for an absent input).
    func type(_ i: Int) -> ElementType { optional(i).flatMap { types[$0] } ?? .float32 }

    /// The compile-time value of input `i`, nil when absent or computed at run time.
    func constant(_ i: Int) -> Value? { optional(i).flatMap { constants[$0] } }

    /// The float32 constant at input `i` (weights, batch-norm statistics).
    func floatConstant(_ i: Int, _ role: String) throws -> Tensor {
        let name = try input(i, role)
        guard let value = constants[name] else {
            throw AimetError.unsupported("\(what): the \(role) '\(name)' is computed at run time; the executor needs it constant (an initializer)")
        }
        guard let tensor = value.tensor else {
            throw AimetError.unsupported("\(what): the \(role) '\(name)' is a \(value.type) tensor; expected float32")
        }
        return tensor
    }

    /// The integers of the constant at input `i`, nil when absent; throws when computed at run time.
    func intConstant(_ i: Int, _ role: String) throws -> [Int]? {
        guard let name = optional(i) else { return nil }
        guard let value = constants[name] else {
            throw AimetError.unsupported("\(what): the \(role) '\(name)' is computed at run time; the executor needs it constant")
        }
        guard value.type != .float32 else { throw AimetError.invalid("\(what): the \(role) '\(name)' is float32, expected an integer tensor") }
        return value.integers
    }

    /// A one-step node: `kernel` reading `operands`, writing the node's first output.
    func step(_ kernel: any Kernel, _ operands: [String]) -> [CompiledStep] {
        [CompiledStep(kernel: kernel, operands: operands, output: node.output)]
    }

    /// A one-step node reading input 0 (named `role` in messages).
    func unary(_ kernel: any Kernel, _ role: String = "input") throws -> [CompiledStep] {
        step(kernel, [try input(0, role)])
    }

    /// Throws when any output after the first is read (inference runs do not compute them).
    func requireOnlyFirstOutput(_ description: String) throws {
        for out in node.outputs.dropFirst() where !out.isEmpty && used.contains(out) {
            throw AimetError.unsupported("\(what): \(description) ('\(out)') is used; the executor runs inference only and does not produce it")
        }
    }

    /// An attribute as a string.
    func string(_ key: String, default value: String) -> String {
        if case .string(let s)? = node.attributes[key] { return s }
        return value
    }
}
