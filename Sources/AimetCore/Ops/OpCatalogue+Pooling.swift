// Pooling.

extension OpCatalogue {
    static let pooling: [OpEntry] = [
        OpEntry("MaxPool") { c in
            try c.requireOnlyFirstOutput("the indices output")
            return try c.unary(PoolKernel(node: c.node, kind: .max), "X")
        },
        OpEntry("AveragePool") { c in try c.unary(PoolKernel(node: c.node, kind: .average), "X") },
        OpEntry("GlobalAveragePool") { c in try c.unary(GlobalAveragePoolKernel(), "X") },
    ]
}
