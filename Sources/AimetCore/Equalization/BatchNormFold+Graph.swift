/// A BatchNorm folded into a layer of a graph.
public struct FoldedPair: Equatable, Sendable {
    /// Node names.
    public var layer: String
    public var batchNorm: String
    public var position: BatchNormPosition
    /// The BN's parameters, kept for high-bias fold after the node is gone.
    public var params: BatchNormParams
}

extension BatchNormFold {
    /// `fold_all_batch_norms` on a graph: pass 1 takes `layer -> bn`
    /// edges (the layer's output feeds only that BN) in topological order;
    /// pass 2 takes `bn -> layer` edges (the BN's output feeds only that layer)
    /// whose BN was not taken and whose fold is valid. Folds them, removes the
    /// BN nodes, and returns the pairs in that order. `region`, when given,
    /// limits the search to those node indices.
    /// Atomic: on error the graph is unchanged.
    public static func foldAll(_ graph: inout Graph, region: Set<Int>? = nil) throws -> [FoldedPair] {
        try graph.transact { try foldAllInPlace(&$0, region: region, checked: true) }
    }

    /// `foldAll` without its own copy of the graph, for callers that made one.
    static func foldAllInPlace(_ graph: inout Graph, region: Set<Int>?, checked: Bool) throws -> [FoldedPair] {
        if checked { try graph.requireFiniteLayerParams() }
        let uses = graph.paramUseCounts
        let consumers = graph.consumers
        func inRegion(_ i: Int) -> Bool { region?.contains(i) ?? true }
        var plan: [(layer: Int, bn: Int, position: BatchNormPosition)] = []
        var taken = Set<Int>()
        for i in graph.nodes.indices where inRegion(i) {
            guard let ref = graph.layerRef(i, useCounts: uses),
                  let j = graph.soleConsumer(of: graph.nodes[i].output, consumers), inRegion(j),
                  graph.nodes[j].input == graph.nodes[i].output,
                  let bn = try graph.batchNormParams(j),
                  try foldable(graph.weightLayer(ref, checked: false), bn, .afterLayer) else { continue }
            plan.append((i, j, .afterLayer))
            taken.insert(j)
        }
        for j in graph.nodes.indices where inRegion(j) && !taken.contains(j) {
            guard let bn = try graph.batchNormParams(j),
                  let i = graph.soleConsumer(of: graph.nodes[j].output, consumers), inRegion(i),
                  graph.nodes[i].input == graph.nodes[j].output,
                  let ref = graph.layerRef(i, useCounts: uses),
                  try foldable(graph.weightLayer(ref, checked: false), bn, .beforeLayer) else { continue }
            plan.append((i, j, .beforeLayer))
        }
        return try foldInPlace(plan.map { (graph.nodes[$0.layer].name, graph.nodes[$0.bn].name, $0.position) },
                               &graph, checked: false)
    }

    /// `fold_given_batch_norms` on a graph: folds each `(layer, bn)` by node
    /// name, in order. Unknown names, non-layers, non-BNs, pairs that are not
    /// adjacent that way, and unfoldable pairs are errors. Atomic: on error the graph is unchanged.
    public static func fold(_ pairs: [(layer: String, bn: String, position: BatchNormPosition)],
                            in graph: inout Graph) throws -> [FoldedPair] {
        try graph.transact { try foldInPlace(pairs, &$0, checked: true) }
    }

    static func foldInPlace(_ pairs: [(layer: String, bn: String, position: BatchNormPosition)],
                            _ graph: inout Graph, checked: Bool) throws -> [FoldedPair] {
        var folded: [FoldedPair] = []
        for (layerName, bnName, position) in pairs {
            guard let i = graph.nodeIndex(named: layerName) else { throw AimetError.unknownName("no node named '\(layerName)'") }
            guard let j = graph.nodeIndex(named: bnName) else { throw AimetError.unknownName("no node named '\(bnName)'") }
            guard var ref = graph.layerRef(i) else {
                throw AimetError.unsupported("node '\(layerName)' (\(graph.nodes[i].op)) is not a Conv, ConvTranspose or Gemm layer whose weights can be rewritten")
            }
            guard let bn = try graph.batchNormParams(j) else {
                throw AimetError.unsupported("node '\(bnName)' (\(graph.nodes[j].op)) is not an inference-mode BatchNormalization with parameter inputs")
            }
            let (from, to) = position == .afterLayer ? (i, j) : (j, i)
            guard graph.soleConsumer(of: graph.nodes[from].output) == to,
                  graph.nodes[to].input == graph.nodes[from].output else {
                throw AimetError.unsupported("'\(graph.nodes[from].name)' does not feed only '\(graph.nodes[to].name)', so the BN cannot be folded")
            }
            var layer = try graph.takeLayer(ref, checked: checked)
            try BatchNormFold.fold(bn, into: &layer, position: position)
            try graph.store(layer, &ref)
            graph.bypass(j)
            folded.append(FoldedPair(layer: layerName, batchNorm: bnName, position: position, params: bn))
        }
        graph.removeUnused()
        return folded
    }

    /// The BatchNormalization nodes of the graph (within `region`) and why
    /// each one is not folded: what `foldAll` leaves in place, for the warning
    /// users get (a BN after a Concat, BN → Relu → Conv, a BN whose statistics
    /// are computed, ...).
    public static func unfolded(_ graph: Graph, region: Set<Int>? = nil) -> [(name: String, reason: String)] {
        let uses = graph.paramUseCounts
        let consumers = graph.consumers
        let producers = graph.producers
        var result: [(name: String, reason: String)] = []
        for (j, node) in graph.nodes.enumerated() where node.op == .batchNormalization && (region?.contains(j) ?? true) {
            guard let bn = try? graph.batchNormParams(j) else {
                result.append((node.name, "it is in training mode or its scale, bias, mean or variance is not a constant"))
                continue
            }
            var reasons: [String] = []
            if let i = producers[node.input] {
                let layer = graph.nodes[i]
                if let ref = graph.layerRef(i, useCounts: uses), let weights = try? graph.weightLayer(ref, checked: false) {
                    if graph.soleConsumer(of: layer.output, consumers) != j {
                        reasons.append("the output of '\(layer.name)' (\(layer.op)) before it also feeds other nodes")
                    } else if bn.numFeatures != weights.outChannels {
                        reasons.append("it has \(bn.numFeatures) channels, '\(layer.name)' before it \(weights.outChannels)")
                    } else if let why = unfoldableReason(weights, bn, .afterLayer) {
                        reasons.append(why)
                    }
                } else {
                    let what = OpCatalogue.entry(layer.op)?.equalization == .weightLayer
                        ? "a \(layer.op) whose weight is not a constant of its own" : "a \(layer.op)"
                    reasons.append("it follows '\(layer.name)', \(what), not a Conv, ConvTranspose or Gemm layer")
                }
            } else {
                reasons.append("it reads the graph input '\(node.input)'")
            }
            if let k = graph.soleConsumer(of: node.output, consumers) {
                let next = graph.nodes[k]
                if let ref = graph.layerRef(k, useCounts: uses), let weights = try? graph.weightLayer(ref, checked: false) {
                    if next.input != node.output {
                        reasons.append("it feeds '\(next.name)' (\(next.op)) as another input than its data")
                    } else if bn.numFeatures != weights.inChannels {
                        reasons.append("it has \(bn.numFeatures) channels, '\(next.name)' after it takes \(weights.inChannels)")
                    } else if let why = unfoldableReason(weights, bn, .beforeLayer) {
                        reasons.append(why)
                    }
                } else {
                    reasons.append("it is followed by '\(next.name)' (\(next.op)), not a layer it could fold into")
                }
            } else {
                reasons.append("its output feeds several nodes or is a graph output")
            }
            result.append((node.name, reasons.joined(separator: "; ")))
        }
        return result
    }

    private static func foldable(_ layer: WeightLayer, _ bn: BatchNormParams, _ position: BatchNormPosition) throws -> Bool {
        let channels = position == .afterLayer ? layer.outChannels : layer.inChannels
        return bn.numFeatures == channels && unfoldableReason(layer, bn, position) == nil
    }
}
