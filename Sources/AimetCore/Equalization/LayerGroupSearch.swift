/// A chain of CLS-able convs joined only through scale-equivariant
/// activations (ReLU, PReLU: the catalogue's `.scaleEquivariant`) or directly.
public struct LayerGroup: Equatable, Sendable {
    /// Node indices, in order.
    public var layers: [Int]
    /// `reluBetween[k]`: whether a ReLU / PReLU joins `layers[k]` and `layers[k + 1]`.
    public var reluBetween: [Bool]
}

/// One CLS set found in a graph: a pair or a depthwise-separable triplet.
public struct ClsSetRef: Equatable, Sendable {
    public var layers: [Int]
    public var reluBetween: [Bool]
}

/// Finds layer groups and CLS sets in a graph.
public enum LayerGroupSearch {
    /// Walks the graph in topological order. A group grows from a conv through
    /// its single consumer: a conv directly, or a ReLU/PReLU whose single
    /// consumer is a conv. Every layer but the last and every activation
    /// between has exactly one consumer and is not a model output; anything
    /// else (add, concat, pooling, ReLU6/Clip, an unfolded BN, a fork) closes it.
    public static func groups(in graph: Graph, region: Set<Int>? = nil) -> [LayerGroup] {
        let uses = graph.paramUseCounts
        let consumers = graph.consumers
        func scalable(_ i: Int) -> Bool {
            guard region?.contains(i) ?? true, let ref = graph.layerRef(i, useCounts: uses) else { return false }
            return ref.kind.isConv
        }
        var grouped = Set<Int>()
        var groups: [LayerGroup] = []
        for start in graph.nodes.indices where scalable(start) && !grouped.contains(start) {
            var group = LayerGroup(layers: [start], reluBetween: [])
            grouped.insert(start)
            var current = start
            while let next = graph.soleConsumer(of: graph.nodes[current].output, consumers) {
                var layer = next
                var value = graph.nodes[current].output
                var relu = false
                if OpCatalogue.entry(graph.nodes[next].op)?.equalization == .scaleEquivariant {
                    guard region?.contains(next) ?? true, graph.nodes[next].input == value,
                          let after = graph.soleConsumer(of: graph.nodes[next].output, consumers) else { break }
                    relu = true
                    value = graph.nodes[next].output
                    layer = after
                }
                guard scalable(layer), !grouped.contains(layer), graph.nodes[layer].input == value else { break }
                group.layers.append(layer)
                group.reluBetween.append(relu)
                grouped.insert(layer)
                current = layer
            }
            if group.layers.count > 1 { groups.append(group) }
        }
        return groups
    }

    /// Splits a group into CLS sets, left to right: Conv+DW+Conv → triplet
    /// (the third starts the next set); Conv+Conv and DW+Conv → pair (the
    /// second starts the next set); a conv with `1 < groups` that is not
    /// depthwise is unsupported and the scan restarts after it.
    public static func clsSets(_ group: LayerGroup, in graph: Graph) -> [ClsSetRef] {
        let uses = graph.paramUseCounts
        let layers = group.layers.map { graph.layerRef($0, useCounts: uses)! }
        func depthwise(_ k: Int) -> Bool {
            let w = graph.params[layers[k].weightName]!
            let (cout, cin) = layers[k].kind.isTransposed
                ? (w.shape[1] * layers[k].groups, w.shape[0]) : (w.shape[0], w.shape[1] * layers[k].groups)
            return layers[k].groups == cin && layers[k].groups == cout
        }
        func unsupported(_ k: Int) -> Bool { layers[k].groups > 1 && !depthwise(k) }
        var sets: [ClsSetRef] = []
        var k = 0
        while k + 1 < layers.count {
            if unsupported(k) { k += 1; continue }
            if unsupported(k + 1) { k += 2; continue }
            if depthwise(k + 1), k + 2 < layers.count, !unsupported(k + 2), !depthwise(k + 2) {
                sets.append(ClsSetRef(layers: Array(group.layers[k...(k + 2)]),
                                      reluBetween: Array(group.reluBetween[k...(k + 1)])))
                k += 2
            } else {
                sets.append(ClsSetRef(layers: [group.layers[k], group.layers[k + 1]], reluBetween: [group.reluBetween[k]]))
                k += 1
            }
        }
        return sets
    }
}
