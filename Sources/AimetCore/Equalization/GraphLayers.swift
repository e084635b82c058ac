/// Where a node's rewritable weight layer lives in the graph: which parameters
/// hold its weight and bias, and how to view them as a `WeightLayer`.
struct LayerRef: Equatable {
    var node: Int
    var kind: LayerKind
    var weightName: String
    var biasName: String?
    var groups: Int
    var padded: Bool
    /// A Gemm with `transB = 0` stores its weight `[in, out]`.
    var transposedGemm: Bool
}

extension Graph {
    /// The weight layer of node `i` if the library can rewrite it: a Conv /
    /// ConvTranspose (1-D or 2-D) or Gemm whose weight (and bias) are float
    /// parameters read by this node only. Nil for anything else.
    func layerRef(_ i: Int, useCounts: [String: Int]) -> LayerRef? {
        layerRef(i) { useCounts[$0] ?? 0 }
    }

    /// As above, counting parameter uses by a scan (no dictionary to build).
    func layerRef(_ i: Int) -> LayerRef? {
        layerRef(i) { name in nodes.reduce(0) { $0 + $1.inputs.filter { $0 == name }.count } }
    }

    private func layerRef(_ i: Int, uses: (String) -> Int) -> LayerRef? {
        let node = nodes[i]
        guard OpCatalogue.entry(node.op)?.equalization == .weightLayer, node.inputs.count >= 2, let weight = params[node.inputs[1]], uses(node.inputs[1]) == 1 else { return nil }
        var biasName: String?
        if node.inputs.count >= 3, !node.inputs[2].isEmpty {
            guard let bias = params[node.inputs[2]], bias.rank == 1, uses(node.inputs[2]) == 1 else { return nil }
            biasName = node.inputs[2]
        }
        switch node.op {
        case .conv, .convTranspose:
            let transposed = node.op == .convTranspose
            let kind: LayerKind
            switch weight.rank {
            case 3: kind = transposed ? .convTranspose1d : .conv1d
            case 4: kind = transposed ? .convTranspose2d : .conv2d
            default: return nil
            }
            let autoPad: String
            if case .string(let s)? = node.attributes["auto_pad"] { autoPad = s } else { autoPad = "NOTSET" }
            let padded = (autoPad != "NOTSET" && autoPad != "VALID") || (node.ints("pads") ?? []).contains { $0 != 0 }
            let groups = node.int("group", default: 1)
            guard groups >= 1, weight.shape[0] % groups == 0 else { return nil }
            return LayerRef(node: i, kind: kind, weightName: node.inputs[1], biasName: biasName, groups: groups,
                            padded: padded, transposedGemm: false)
        case .gemm:
            guard weight.rank == 2, node.int("transA", default: 0) == 0, node.float("alpha", default: 1) == 1,
                  biasName == nil || node.float("beta", default: 1) == 1 else { return nil }
            let transposed = node.int("transB", default: 0) == 0
            if let biasName, params[biasName]!.count != (transposed ? weight.shape[1] : weight.shape[0]) { return nil }
            return LayerRef(node: i, kind: .linear, weightName: node.inputs[1], biasName: biasName, groups: 1,
                            padded: false, transposedGemm: transposed)
        default:
            return nil
        }
    }

    /// The layer's parameters as a `WeightLayer` (torch layouts), validated
    /// (finite values) unless the caller already checked every parameter.
    func weightLayer(_ ref: LayerRef, checked: Bool = true) throws -> WeightLayer {
        var weight = params[ref.weightName]!
        if ref.transposedGemm { weight = weight.transposed2D() }
        return try WeightLayer(name: nodes[ref.node].name, kind: ref.kind, weight: weight,
                               bias: ref.biasName.map { params[$0]!.data }, groups: ref.groups, padded: ref.padded,
                               checked: checked)
    }

    /// Moves a layer's parameters out of the graph (until `store` puts them
    /// back), so that rewriting them does not copy them again: after the first
    /// copy a transform makes (the caller's model keeps the original), the
    /// arrays are uniquely owned and change in place.
    mutating func takeLayer(_ ref: LayerRef, checked: Bool = true) throws -> WeightLayer {
        let layer = try weightLayer(ref, checked: checked)
        params[ref.weightName] = nil
        if let bias = ref.biasName { params[bias] = nil }
        return layer
    }

    /// Throws for the first parameter of a layer or BatchNormalization node
    /// holding NaN or infinity (other ops' constants may legitimately be inf).
    func requireFiniteLayerParams() throws {
        for node in nodes where node.op == .batchNormalization || OpCatalogue.entry(node.op)?.equalization == .weightLayer {
            for name in node.inputs.dropFirst() {
                guard let tensor = params[name], let i = tensor.firstNonFinite else { continue }
                throw AimetError.numeric("node '\(node.name)': parameter '\(name)' is not finite at flat index \(i) (\(tensor.data[i]))")
            }
        }
    }

    /// Writes a rewritten layer back. A layer that gained a bias gets a new
    /// parameter named after its weight (`x.weight` → `x.bias`, else
    /// `<weight>_bias`) as its third input.
    mutating func store(_ layer: WeightLayer, _ ref: inout LayerRef) throws {
        params[ref.weightName] = ref.transposedGemm ? layer.weight.transposed2D() : layer.weight
        guard let bias = layer.bias else { return }
        let name: String
        if let existing = ref.biasName {
            name = existing
        } else {
            let base = ref.weightName.hasSuffix(".weight")
                ? String(ref.weightName.dropLast(".weight".count)) + ".bias" : ref.weightName + "_bias"
            name = freshName(base)
            var node = nodes[ref.node]
            while node.inputs.count < 3 { node.inputs.append("") }
            node.inputs[2] = name
            if node.op == .gemm && node.float("beta", default: 1) != 1 {
                node.attributes["beta"] = .float(1)
                node.rewritten = node.source != nil ? true : node.rewritten
            }
            nodes[ref.node] = node
            ref.biasName = name
        }
        params[name] = try Tensor(shape: [bias.count], data: bias)
    }

    /// The BN parameters of a BatchNormalization node in inference form, or nil
    /// when it is not one the library can fold (training mode, computed params).
    func batchNormParams(_ i: Int) throws -> BatchNormParams? {
        let node = nodes[i]
        guard node.op == .batchNormalization, node.inputs.count == 5, node.outputs.count == 1,
              node.int("training_mode", default: 0) == 0 else { return nil }
        let tensors = node.inputs[1...].map { params[$0] }
        guard tensors.allSatisfy({ $0 != nil && $0!.rank == 1 }) else { return nil }
        return try BatchNormParams(name: node.name, gamma: tensors[0]!.data, beta: tensors[1]!.data,
                                   runningMean: tensors[2]!.data, runningVar: tensors[3]!.data,
                                   eps: node.float("epsilon", default: 1e-5))
    }

    /// The single node reading `value` (nil when none, several, or the value
    /// is a graph output).
    /// As above, by a scan (no dictionary to build), for a graph being edited.
    func soleConsumer(of value: String) -> Int? {
        guard !outputs.contains(where: { $0.name == value }) else { return nil }
        var found: Int?
        for (i, node) in nodes.enumerated() {
            for input in node.inputs where input == value {
                guard found == nil else { return nil }
                found = i
            }
        }
        return found
    }

    func soleConsumer(of value: String, _ consumers: [String: [Int]]) -> Int? {
        guard !outputNames.contains(value), let readers = consumers[value], readers.count == 1 else { return nil }
        return readers[0]
    }
}

extension Tensor {
    /// The transpose of a 2-D tensor.
    func transposed2D() -> Tensor {
        let rows = shape[0], cols = shape[1]
        var out = [Float](repeating: 0, count: count)
        data.withUnsafeBufferPointer { src in
            for r in 0..<rows { for c in 0..<cols { out[c * rows + r] = src[r * cols + c] } }
        }
        return Tensor(validShape: [cols, rows], data: out)
    }
}
