// Pooling.

extension OpCatalogue {
    static let pooling: [OpEntry] = [
        OpEntry("MaxPool") { c in
            try c.requireOnlyFirstOutput("the indices output")
            return try c.unary(PoolKernel(node: c.node, kind: .max), "X")
        },
        OpEntry("AveragePool") { c in try c.unary(PoolKernel(node: c.node, kind: .average), "X") },
        OpEntry("GlobalAveragePool") { c in try c.unary(GlobalPoolKernel(.average), "X") },
        OpEntry("GlobalMaxPool") { c in try c.unary(GlobalPoolKernel(.max), "X") },
        OpEntry("GlobalLpPool") { c in try c.unary(GlobalPoolKernel(.lp(Float(c.node.int("p", default: 2)))), "X") },
    ]
}
