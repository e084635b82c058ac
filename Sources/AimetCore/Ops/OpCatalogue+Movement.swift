// Ops that rearrange data: transposes, padding, resizing, depth/space shuffles.

extension OpCatalogue {
    static let movement: [OpEntry] = [
        OpEntry("Transpose", quantization: .dataMovement) { c in
            try c.unary(TransposeKernel(perm: c.node.ints("perm"), type: c.type(0)), "data")
        },
        OpEntry("Pad", quantization: .dataMovement) { c in try padSteps(c) },
        OpEntry("DepthToSpace", quantization: .dataMovement) { c in
            let kind: DepthToSpaceKernel.Kind
            switch c.string("mode", default: "DCR") {
            case "DCR": kind = .depthToSpaceDCR
            case "CRD": kind = .depthToSpaceCRD
            case let mode: throw AimetError.invalid("\(c.what): unknown mode '\(mode)' (DCR or CRD)")
            }
            return try c.unary(DepthToSpaceKernel(kind, block: blockSize(c), type: c.type(0)))
        },
        OpEntry("SpaceToDepth", quantization: .dataMovement) { c in
            let kind: DepthToSpaceKernel.Kind
            switch c.string("mode", default: "DCR") {
            case "DCR": kind = .spaceToDepthDCR
            case "CRD": kind = .spaceToDepthCRD
            case let mode: throw AimetError.invalid("\(c.what): unknown mode '\(mode)' (DCR or CRD)")
            }
            return try c.unary(DepthToSpaceKernel(kind, block: blockSize(c), type: c.type(0)))
        },
    ]

    private static func blockSize(_ c: NodeContext) throws -> Int {
        guard let b = c.node.attributes["blocksize"]?.intValue else { throw AimetError.invalid("\(c.what) has no blocksize") }
        guard b >= 1 else { throw AimetError.invalid("\(c.what): blocksize \(b) is not positive") }
        return b
    }

    /// Pad: pads and value as attributes before opset 11; then inputs
    /// (data, pads, constant_value?, axes? from opset 18).
    private static func padSteps(_ c: NodeContext) throws -> [CompiledStep] {
        let modeName = c.string("mode", default: "constant")
        guard let mode = PadKernel.Mode(rawValue: modeName) else {
            throw AimetError.unsupported("\(c.what): mode '\(modeName)' is not supported (constant, reflect, edge, wrap)")
        }
        var operands = [try c.input(0, "data")]
        func operand(_ i: Int) -> Int? {
            guard let name = c.optional(i) else { return nil }
            operands.append(name)
            return operands.count - 1
        }
        let kernel: PadKernel
        if c.opset < 11 {
            guard let pads = c.node.ints("pads") ?? c.node.ints("paddings") else { throw AimetError.invalid("\(c.what) has no pads attribute") }
            kernel = PadKernel(mode: mode, type: c.type(0), attributePads: pads, attributeValue: c.node.float("value", default: 0),
                               padsOperand: nil, valueOperand: nil, axesOperand: nil, knownPads: pads, knownAxes: nil)
        } else {
            _ = try c.input(1, "pads")
            let known = c.constant(1)?.integers, knownAxes = c.constant(3)?.integers
            let pads = operand(1), value = operand(2), axes = operand(3)
            kernel = PadKernel(mode: mode, type: c.type(0), attributePads: nil, attributeValue: 0,
                               padsOperand: pads, valueOperand: value, axesOperand: axes, knownPads: known, knownAxes: knownAxes)
        }
        return c.step(kernel, operands)
    }
}
