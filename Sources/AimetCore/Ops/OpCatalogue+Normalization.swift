// Normalization layers.

extension OpCatalogue {
    static let normalization: [OpEntry] = [
        OpEntry("BatchNormalization") { c in
            try c.requireOnlyFirstOutput("the training outputs (running mean / var)")
            let kernel = try BatchNormKernel(node: c.node, gamma: c.floatConstant(1, "scale"), beta: c.floatConstant(2, "B"),
                                             mean: c.floatConstant(3, "mean"), variance: c.floatConstant(4, "var"))
            return try c.unary(kernel, "X")
        },
    ]
}
