extension EqualizeReport.ClsSet {
    public var kind: String { layers.count == 3 ? "triplet" : "pair" }
}

extension EqualizeReport {
    /// The report as JSON: folded pairs, ReLU6 replacements, CLS sets (with the
    /// factors when `scales`), the high-bias-fold count and — given the graph —
    /// the weight and bias parameter names of every layer the transform changed.
    public func json(graph: Graph? = nil, scales: Bool = true) -> JSON {
        var fields: [(String, JSON)] = [
            ("folded", .array(folded.map { pair in
                .object([("layer", .string(pair.layer)), ("batchnorm", .string(pair.batchNorm)),
                         ("position", .string(pair.position == .afterLayer ? "after" : "before"))])
            })),
            ("unfolded_batchnorms", .array(unfolded.map { entry in
                .object([("batchnorm", .string(entry.name)), ("reason", .string(entry.reason))])
            })),
            ("relu6_replaced", .strings(relu6Replaced)),
            ("cls_sets", .array(clsSets.map { set in
                var entry: [(String, JSON)] = [
                    ("kind", .string(set.kind)),
                    ("layers", .strings(set.layers)),
                    ("relu_between", .array(set.reluBetween.map { .bool($0) })),
                    ("scale_min", .array(set.scales.map { .double(Double($0.min() ?? .nan)) })),
                    ("scale_max", .array(set.scales.map { .double(Double($0.max() ?? .nan)) })),
                ]
                if scales { entry.append(("scales", .array(set.scales.map { .floats($0) }))) }
                return .object(entry)
            })),
            ("high_bias_folded", .int(highBiasFolded)),
        ]
        if let graph {
            var seen = Set<String>()
            let names = (folded.map(\.layer) + clsSets.flatMap(\.layers)).filter { seen.insert($0).inserted }
            fields.append(("layers", .array(names.compactMap { name in
                guard let node = graph.nodes.first(where: { $0.name == name }), node.inputs.count > 1 else { return nil }
                let bias = node.inputs.count > 2 && !node.inputs[2].isEmpty ? JSON.string(node.inputs[2]) : .null
                return .object([("node", .string(name)), ("weight", .string(node.inputs[1])), ("bias", bias)])
            })))
        }
        return .object(fields)
    }
}
