// Normalization layers, and the losses over class scores.

extension OpCatalogue {
    static let normalization: [OpEntry] = [
        OpEntry("BatchNormalization") { c in
            try c.requireOnlyFirstOutput("the training outputs (running mean / var)")
            if c.node.int("training_mode", default: 0) != 0 {
                throw AimetError.unsupported("\(c.what): training_mode = 1 (the executor runs inference only)")
            }
            guard (1...4).allSatisfy({ c.constant($0) != nil }) else {
                // Statistics or parameters computed at run time: normalized per call.
                if c.node.int("spatial", default: 1) == 0 {
                    throw AimetError.unsupported("\(c.what): spatial = 0 (per-element statistics, opset < 9) is not supported")
                }
                let operands = try [c.input(0, "X"), c.input(1, "scale"), c.input(2, "B"), c.input(3, "mean"), c.input(4, "var")]
                return c.step(NormalizationKernel(.batch, epsilon: c.node.float("epsilon", default: 1e-5), hasBias: true), operands)
            }
            let kernel = try BatchNormKernel(node: c.node, gamma: c.floatConstant(1, "scale"), beta: c.floatConstant(2, "B"),
                                             mean: c.floatConstant(3, "mean"), variance: c.floatConstant(4, "var"))
            return try c.unary(kernel, "X")
        },
        OpEntry("LayerNormalization") { c in
            try checkStashType(c)
            var operands = [try c.input(0, "X"), try c.input(1, "Scale")]
            if let bias = c.optional(2) { operands.append(bias) }
            let kind = NormalizationKernel.Kind.layer(axis: c.node.int("axis", default: -1))
            let epsilon = c.node.float("epsilon", default: 1e-5)
            var steps = c.step(NormalizationKernel(kind, epsilon: epsilon, hasBias: operands.count == 3), operands)
            // The optional Mean and InvStdDev outputs, when read.
            for (index, output) in [(1, NormalizationKernel.Output.mean), (2, .inverseDeviation)]
            where index < c.node.outputs.count && !c.node.outputs[index].isEmpty {
                steps.append(CompiledStep(kernel: NormalizationKernel(kind, epsilon: epsilon, hasBias: false, output: output),
                                          operands: [operands[0]], output: c.node.outputs[index]))
            }
            return steps
        },
        OpEntry("RMSNormalization") { c in
            try checkStashType(c)
            let kernel = NormalizationKernel(.rms(axis: c.node.int("axis", default: -1)),
                                             epsilon: c.node.float("epsilon", default: 1e-5), hasBias: false)
            return c.step(kernel, [try c.input(0, "X"), try c.input(1, "scale")])
        },
        OpEntry("InstanceNormalization") { c in
            let kernel = NormalizationKernel(.instance, epsilon: c.node.float("epsilon", default: 1e-5), hasBias: true)
            return c.step(kernel, [try c.input(0, "input"), try c.input(1, "scale"), try c.input(2, "B")])
        },
        OpEntry("GroupNormalization") { c in
            try checkStashType(c)
            guard let groups = c.node.attributes["num_groups"]?.intValue else { throw AimetError.invalid("\(c.what) has no num_groups") }
            guard groups >= 1 else { throw AimetError.invalid("\(c.what): num_groups = \(groups) must be >= 1") }
            // Opset 18: one scale and bias per group; opset 21 changed them to one per channel.
            let kernel = NormalizationKernel(.group(groups: groups, perChannel: c.opset >= 21),
                                             epsilon: c.node.float("epsilon", default: 1e-5), hasBias: true)
            return c.step(kernel, [try c.input(0, "X"), try c.input(1, "scale"), try c.input(2, "bias")])
        },
        OpEntry("MeanVarianceNormalization") { c in
            try c.unary(AxesNormalizationKernel(.meanVariance(axes: c.node.ints("axes") ?? [0, 2, 3])), "X")
        },
        OpEntry("LpNormalization") { c in
            let p = c.node.int("p", default: 2)
            guard p == 1 || p == 2 else { throw AimetError.invalid("\(c.what): p = \(p); LpNormalization takes p = 1 or 2") }
            return try c.unary(AxesNormalizationKernel(.lp(axis: c.node.int("axis", default: -1), p: p)), "input")
        },
        OpEntry("LRN") { c in
            guard let size = c.node.attributes["size"]?.intValue else { throw AimetError.invalid("\(c.what) has no size") }
            guard size >= 1 else { throw AimetError.invalid("\(c.what): size = \(size) must be >= 1") }
            let kernel = LocalResponseNormKernel(size: size, alpha: c.node.float("alpha", default: 1e-4),
                                                 beta: c.node.float("beta", default: 0.75), bias: c.node.float("bias", default: 1))
            return try c.unary(kernel, "X")
        },
        loss("NegativeLogLikelihoodLoss", .negativeLogLikelihood),
        loss("SoftmaxCrossEntropyLoss", .softmaxCrossEntropy),
    ]

    /// A loss over class scores: reduction none / sum / mean, optional weights,
    /// ignore_index; SoftmaxCrossEntropyLoss's optional log_prob output is a step of its own.
    private static func loss(_ type: String, _ kind: LossKernel.Kind) -> OpEntry {
        OpEntry(type) { c in
            let reduction: LossKernel.Reduction
            switch c.string("reduction", default: "mean") {
            case "none": reduction = .none
            case "sum": reduction = .sum
            case "mean": reduction = .mean
            case let other: throw AimetError.invalid("\(c.what): unknown reduction '\(other)'")
            }
            let ignore = c.node.attributes["ignore_index"]?.intValue
            var operands = [try c.input(0, "scores"), try c.input(1, "target")]
            if let weight = c.optional(2) { operands.append(weight) }
            var steps = c.step(LossKernel(kind, reduction: reduction, ignoreIndex: ignore, what: c.what), operands)
            if kind == .softmaxCrossEntropy, c.node.outputs.count > 1, !c.node.outputs[1].isEmpty {
                steps.append(CompiledStep(kernel: LossKernel(kind, reduction: reduction, ignoreIndex: ignore, output: .logProbability, what: c.what),
                                          operands: operands, output: c.node.outputs[1]))
            }
            return steps
        }
    }

    /// `stash_type`: the precision of the statistics; 1 (float32) and 11 (float64)
    /// are met by the kernel's float64 statistics, narrower types are refused.
    private static func checkStashType(_ c: NodeContext) throws {
        let stash = c.node.int("stash_type", default: 1)
        guard stash == 1 || stash == 11 else {
            throw AimetError.unsupported("\(c.what): stash_type = \(stash) (statistics in a type narrower than float32) is not supported")
        }
    }
}
