/// One operation: an op, named input and output values, attributes.
///
/// Parameters are inputs that name an entry of `Graph.params`. `source` links
/// a node to the ONNX node it came from, so that everything the library does
/// not interpret (other attributes, doc strings, unknown fields) survives a
/// load/save round trip.
public struct Node: Equatable, Sendable {
    public var name: String
    public var op: Op
    public var inputs: [String]
    public var outputs: [String]
    public var attributes: [String: Attribute]
    /// Index of the originating node in the loaded ONNX graph, if any.
    public var source: Int?
    /// Set when a transform changed the op or its attribute set, so the source
    /// node's attributes no longer apply.
    public var rewritten: Bool = false

    public init(name: String, op: Op, inputs: [String], outputs: [String],
                attributes: [String: Attribute] = [:], source: Int? = nil) {
        self.name = name
        self.op = op
        self.inputs = inputs
        self.outputs = outputs
        self.attributes = attributes
        self.source = source
    }

    /// The data input (the first one).
    public var input: String { inputs.first ?? "" }
    public var output: String { outputs.first ?? "" }

    public func int(_ key: String, default value: Int) -> Int { attributes[key]?.intValue ?? value }
    public func ints(_ key: String) -> [Int]? { attributes[key]?.intsValue }
    public func float(_ key: String, default value: Float) -> Float { attributes[key]?.floatValue ?? value }
}

/// An integer tensor (ONNX int64 / int32 / int16 / int8 / uint8 / bool data,
/// widened to `Int`): Reshape's target shape, and the like. `elementType`
/// keeps the ONNX type code it is written back with (7 = int64, 9 = bool, ...).
public struct IntTensor: Equatable, Sendable {
    public var shape: [Int]
    public var values: [Int]
    public var elementType: Int
    public init(shape: [Int], values: [Int], elementType: Int = 7) {
        self.shape = shape
        self.values = values
        self.elementType = elementType
    }
}

/// A graph input or output with its (possibly symbolic: -1) shape and its
/// ONNX element type code (1 = float32, the default; 7 = int64; 9 = bool).
public struct ValueInfo: Equatable, Sendable {
    public var name: String
    public var shape: [Int]?
    public var elementType: Int
    public init(name: String, shape: [Int]?, elementType: Int = 1) {
        self.name = name
        self.shape = shape
        self.elementType = elementType
    }
}

/// A model graph: nodes in topological order, inputs, outputs and float32
/// parameters by name.
///
/// Value semantics (parameters are copy-on-write arrays), so a transform can
/// run on a copy and be committed only when it succeeds.
public struct Graph: Equatable, Sendable {
    public var nodes: [Node] = []
    public var inputs: [ValueInfo] = []
    public var outputs: [ValueInfo] = []
    public var params: [String: Tensor] = [:]
    /// Values defined outside the nodes that the library does not interpret
    /// (non-float initializers such as Reshape's shape): they exist, unchanged.
    public var constants: Set<String> = []
    /// The values of integer constants, by value name: integer initializers
    /// (whose names are also in `constants`) and the outputs of `Constant`
    /// nodes holding an integer tensor. The executor reads Reshape's target
    /// shape from here. A name not produced by a node counts as defined.
    public var intConstants: [String: IntTensor] = [:]

    public init() {}

    // MARK: - Queries

    /// The index of the node producing each value.
    public var producers: [String: Int] {
        var map: [String: Int] = [:]
        for (i, node) in nodes.enumerated() { for out in node.outputs where !out.isEmpty { map[out] = i } }
        return map
    }

    /// The indices of the nodes reading each value (a node reading a value
    /// twice is listed twice).
    public var consumers: [String: [Int]] {
        var map: [String: [Int]] = [:]
        for (i, node) in nodes.enumerated() { for input in node.inputs where !input.isEmpty { map[input, default: []].append(i) } }
        return map
    }

    public var outputNames: Set<String> { Set(outputs.map(\.name)) }

    public func nodeIndex(named name: String) -> Int? { nodes.firstIndex { $0.name == name } }

    private func producerIndex(_ value: String) -> Int? { nodes.firstIndex { $0.outputs.contains(value) } }

    /// How many node inputs name each parameter (a weight shared by two
    /// layers must not be rewritten for one of them).
    public var paramUseCounts: [String: Int] {
        var counts: [String: Int] = [:]
        for node in nodes { for input in node.inputs where params[input] != nil { counts[input, default: 0] += 1 } }
        return counts
    }

    /// The values known without running anything: float parameters, integer
    /// constants, and the float tensors of Constant nodes, by value name.
    func knownValues() -> [String: Value] {
        var known = params.mapValues { Value($0) }
        for (name, ints) in intConstants { known[name] = Value(ints) }
        for node in nodes where node.op == .constant && node.outputs.count == 1 {
            if case .tensor(let t)? = node.attributes["value"] { known[node.output] = Value(t) }
            if case .float(let v)? = node.attributes["value_float"] { known[node.output] = Value(type: .float32, shape: [], slots: [v]) }
        }
        return known
    }

    // MARK: - Checks

    /// Checks that every value is defined before use and names are unique.
    public func validate() throws {
        var defined = Set(inputs.map(\.name)).union(params.keys).union(constants)
        if !intConstants.isEmpty {
            let produced = Set(nodes.flatMap(\.outputs))
            defined.formUnion(intConstants.keys.filter { !produced.contains($0) })
        }
        var names = Set<String>()
        for node in nodes {
            if !node.name.isEmpty && !names.insert(node.name).inserted {
                throw AimetError.invalid("two nodes are named '\(node.name)'")
            }
            for input in node.inputs where !input.isEmpty && !defined.contains(input) {
                throw AimetError.invalid("node '\(node.name)' (\(node.op)) reads '\(input)', which nothing before it defines")
            }
            for output in node.outputs where !output.isEmpty {
                guard defined.insert(output).inserted else {
                    throw AimetError.invalid("value '\(output)' is defined twice (again by node '\(node.name)')")
                }
            }
        }
        for output in outputs where !defined.contains(output.name) {
            throw AimetError.invalid("graph output '\(output.name)' is not produced by any node")
        }
    }

    // MARK: - Edits

    /// Runs `body` on a copy and keeps the result only if it succeeds.
    public mutating func transact<R>(_ body: (inout Graph) throws -> R) rethrows -> R {
        var copy = self
        let result = try body(&copy)
        self = copy
        return result
    }

    /// Removes node `index`, whose single data input and single output carry
    /// the same values (BN after folding, Identity). Value names downstream are
    /// kept where possible: when nothing else reads the node's input, its
    /// producer is renamed to produce the node's output; otherwise readers of
    /// the output read the input instead.
    public mutating func bypass(_ index: Int) {
        let node = nodes[index]
        let from = node.input, to = node.output
        nodes.remove(at: index)
        let fromIsBoundary = outputs.contains { $0.name == from } || inputs.contains { $0.name == from }
            || params[from] != nil || constants.contains(from) || (intConstants[from] != nil && producerIndex(from) == nil)
        let fromIsRead = nodes.contains { $0.inputs.contains(from) }
        if !fromIsBoundary, !fromIsRead, let producer = nodes.firstIndex(where: { $0.outputs.contains(from) }) {
            for k in nodes[producer].outputs.indices where nodes[producer].outputs[k] == from {
                nodes[producer].outputs[k] = to
            }
            if let value = intConstants.removeValue(forKey: from) { intConstants[to] = value }
            return
        }
        for i in nodes.indices {
            for k in nodes[i].inputs.indices where nodes[i].inputs[k] == to { nodes[i].inputs[k] = from }
        }
        for k in outputs.indices where outputs[k].name == to { outputs[k].name = from }
    }

    /// Removes the nodes that compute nothing (the catalogue's `.passThrough`:
    /// Identity, and inference-mode Dropout with a single input and output)
    /// so they do not stand between a layer and its BN or activation.
    /// Returns their names.
    @discardableResult
    public mutating func removePassThroughNodes(region: Set<Int>? = nil) -> [String] {
        var removed: [String] = []
        var i = nodes.count - 1
        while i >= 0 {
            let node = nodes[i]
            let passThrough = OpCatalogue.entry(node.op)?.equalization == .passThrough && node.inputs.count == 1
            if passThrough && node.outputs.count == 1 && params[node.input] == nil && !constants.contains(node.input)
                && (region?.contains(i) ?? true) {
                removed.append(node.name)
                bypass(i)
            }
            i -= 1
        }
        return removed.reversed()
    }

    /// Drops parameters no node reads any more, and `Constant` nodes whose
    /// outputs nothing reads.
    public mutating func removeUnused() {
        var changed = true
        while changed {
            changed = false
            let used = consumers
            let outputs = outputNames
            if let i = nodes.lastIndex(where: { $0.op == .constant && $0.outputs.allSatisfy { used[$0] == nil && !outputs.contains($0) } }) {
                nodes.remove(at: i)
                changed = true
            }
        }
        let used = consumers
        params = params.filter { used[$0.key] != nil }
        let outputs = outputNames
        intConstants = intConstants.filter { used[$0.key] != nil || outputs.contains($0.key) }
    }

    /// A parameter name not yet used in the graph, derived from `base`.
    public func freshName(_ base: String) -> String {
        func taken(_ name: String) -> Bool {
            params[name] != nil || constants.contains(name) || intConstants[name] != nil || inputs.contains { $0.name == name }
                || nodes.contains { $0.outputs.contains(name) || $0.inputs.contains(name) }
        }
        if !taken(base) { return base }
        var k = 1
        while taken("\(base)_\(k)") { k += 1 }
        return "\(base)_\(k)"
    }
}
