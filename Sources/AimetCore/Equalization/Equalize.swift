/// What `Equalize.run` did, in model order.
public struct EqualizeReport: Equatable, Sendable {
    public static func == (a: EqualizeReport, b: EqualizeReport) -> Bool {
        a.folded == b.folded && a.relu6Replaced == b.relu6Replaced && a.clsSets == b.clsSets
            && a.highBiasFolded == b.highBiasFolded && a.unfolded.map(\.name) == b.unfolded.map(\.name)
            && a.unfolded.map(\.reason) == b.unfolded.map(\.reason)
    }

    public struct ClsSet: Equatable, Sendable {
        /// Node names: two for a pair, three for a triplet.
        public var layers: [String]
        /// One factor vector per pair of the set (S, or S12 and S23).
        public var scales: [[Float]]
        public var reluBetween: [Bool]
    }

    public var folded: [FoldedPair] = []
    /// BatchNormalization nodes left in the graph after folding, with the reason.
    public var unfolded: [(name: String, reason: String)] = []
    public var relu6Replaced: [String] = []
    public var clsSets: [ClsSet] = []
    /// Pairs whose bias was high-bias folded.
    public var highBiasFolded: Int = 0

    public init(folded: [FoldedPair] = [], relu6Replaced: [String] = [], clsSets: [ClsSet] = [],
                highBiasFolded: Int = 0) {
        self.folded = folded
        self.relu6Replaced = relu6Replaced
        self.clsSets = clsSets
        self.highBiasFolded = highBiasFolded
    }
}

/// Auto-mode cross-layer equalization, AIMET's `equalize_model`.
public enum Equalize {
    public struct Options: Sendable {
        public var foldBatchNorms = true
        /// Replace ReLU6 (Clip 0..6) by ReLU so that CLS can scale across it.
        public var replaceRelu6 = true
        public var scale = true
        public var highBiasFold = true
        public init() {}
    }

    /// Runs BN fold, ReLU6 → ReLU, CLS and high-bias fold on the model, in
    /// place and atomically: on error the model is unchanged. `region` limits
    /// the work to node names between `starts` and `outputs` (TensorFlow-style
    /// entry point).
    public static func run(_ model: inout Model, options: Options = Options(),
                           starts: [String]? = nil, outputs: [String]? = nil) throws -> EqualizeReport {
        try model.transact { m in
            var report = EqualizeReport()
            try m.graph.validate()
            try m.graph.requireFiniteLayerParams()
            // The region by node name: node indices move as BNs are removed.
            let names = try m.graph.region(starts, outputs).map { Set($0.map { m.graph.nodes[$0].name }) }
            func region() -> Set<Int>? {
                names.map { names in Set(m.graph.nodes.indices.filter { names.contains(m.graph.nodes[$0].name) }) }
            }
            m.graph.removePassThroughNodes(region: region())
            if options.foldBatchNorms {
                report.folded = try BatchNormFold.foldAllInPlace(&m.graph, region: region(), checked: false)
                report.unfolded = BatchNormFold.unfolded(m.graph, region: region())
            }
            if options.replaceRelu6 {
                report.relu6Replaced = ReluSixReplacement.apply(&m.graph, region: region())
            }
            if options.scale {
                report.clsSets = try scaleAllInPlace(&m.graph, region: region(), checked: false)
            }
            if options.highBiasFold {
                let bns = Dictionary(report.folded.filter { $0.position == .afterLayer }.map { ($0.layer, $0.params) },
                                     uniquingKeysWith: { first, _ in first })
                report.highBiasFolded = try highBiasFoldInPlace(&m.graph, report.clsSets, bns, checked: false)
            }
            return report
        }
    }

    /// CLS on every set found by `LayerGroupSearch`, in model order.
    /// Atomic: on error the graph is unchanged.
    public static func scaleAll(_ graph: inout Graph, region: Set<Int>? = nil) throws -> [EqualizeReport.ClsSet] {
        try graph.transact { try scaleAllInPlace(&$0, region: region, checked: true) }
    }

    static func scaleAllInPlace(_ graph: inout Graph, region: Set<Int>?, checked: Bool) throws -> [EqualizeReport.ClsSet] {
        if checked { try graph.requireFiniteLayerParams() }
        let uses = graph.paramUseCounts
        var records: [EqualizeReport.ClsSet] = []
        for group in LayerGroupSearch.groups(in: graph, region: region) {
            for set in LayerGroupSearch.clsSets(group, in: graph) {
                var refs = set.layers.map { graph.layerRef($0, useCounts: uses)! }
                var layers = try refs.map { try graph.takeLayer($0, checked: false) }
                let scales = try CrossLayerScaling.scaleSet(&layers)
                for k in layers.indices { try graph.store(layers[k], &refs[k]) }
                records.append(.init(layers: set.layers.map { graph.nodes[$0].name }, scales: scales,
                                     reluBetween: set.reluBetween))
            }
        }
        return records
    }

    /// High-bias fold over the CLS results with the BN folded into each first
    /// layer; returns how many pairs were folded.
    /// Atomic: on error the graph is unchanged.
    public static func highBiasFold(_ graph: inout Graph, _ sets: [EqualizeReport.ClsSet],
                                    _ bns: [String: BatchNormParams]) throws -> Int {
        try graph.transact { try highBiasFoldInPlace(&$0, sets, bns, checked: true) }
    }

    static func highBiasFoldInPlace(_ graph: inout Graph, _ sets: [EqualizeReport.ClsSet],
                                    _ bns: [String: BatchNormParams], checked: Bool) throws -> Int {
        if checked { try graph.requireFiniteLayerParams() }
        let uses = graph.paramUseCounts
        var count = 0
        for set in sets {
            for k in 0..<(set.layers.count - 1) {
                guard let bn = bns[set.layers[k]],
                      let i = graph.nodeIndex(named: set.layers[k]), let j = graph.nodeIndex(named: set.layers[k + 1]),
                      var first = graph.layerRef(i, useCounts: uses), var second = graph.layerRef(j, useCounts: uses) else { continue }
                var l1 = try graph.takeLayer(first, checked: false), l2 = try graph.takeLayer(second, checked: false)
                if try HighBiasFold.foldPair(&l1, &l2, bnGamma: bn.gamma, bnBeta: bn.beta, scale: set.scales[k],
                                             reluBetween: set.reluBetween[k]) {
                    count += 1
                }
                try graph.store(l1, &first)
                try graph.store(l2, &second)
            }
        }
        return count
    }
}

extension Graph {
    /// The node indices on paths from `starts` (node or value names) to
    /// `outputs` (node or value names); nil when neither is given.
    func region(_ starts: [String]?, _ outputs: [String]?) throws -> Set<Int>? {
        guard starts != nil || outputs != nil else { return nil }
        let known = Set(inputs.map(\.name)).union(nodes.flatMap(\.outputs))
        /// Node indices named directly, and the values named directly.
        func resolve(_ names: [String]) throws -> (nodes: Set<Int>, values: Set<String>) {
            var found: (nodes: Set<Int>, values: Set<String>) = ([], [])
            for name in names {
                if let i = nodeIndex(named: name) {
                    found.nodes.insert(i)
                } else if known.contains(name) {
                    found.values.insert(name)
                } else {
                    throw AimetError.unknownName("no node or value named '\(name)'")
                }
            }
            return found
        }
        var forward = Set(nodes.indices)
        if let starts {
            var (startNodes, reached) = try resolve(starts)
            forward = []
            for (i, node) in nodes.enumerated() where startNodes.contains(i) || node.inputs.contains(where: reached.contains) {
                forward.insert(i)
                reached.formUnion(node.outputs)
            }
        }
        var backward = Set(nodes.indices)
        if let outputs {
            var (endNodes, needed) = try resolve(outputs)
            backward = []
            for (i, node) in nodes.enumerated().reversed() where endNodes.contains(i) || node.outputs.contains(where: needed.contains) {
                backward.insert(i)
                needed.formUnion(node.inputs)
            }
        }
        return forward.intersection(backward)
    }
}
