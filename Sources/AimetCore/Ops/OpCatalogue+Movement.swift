// Ops that rearrange data: transposes, padding and cropping, resizing, depth/space shuffles,
// sequence reversal, sampling grids (GridSample, AffineGrid) and Col2Im.

extension OpCatalogue {
    static let movement: [OpEntry] = [
        OpEntry("Transpose", quantization: .dataMovement) { c in
            try c.unary(named(c) { try TransposeKernel(perm: c.node.ints("perm"), type: c.type(0)) }, "data")
        },
        OpEntry("Pad", quantization: .dataMovement) { c in try padSteps(c) },
        OpEntry("DepthToSpace", quantization: .dataMovement) { c in
            let kind: DepthToSpaceKernel.Kind
            switch c.string("mode", default: "DCR") {
            case "DCR": kind = .depthToSpaceDCR
            case "CRD": kind = .depthToSpaceCRD
            case let mode: throw AimetError.invalid("\(c.what): unknown mode '\(mode)' (DCR or CRD)")
            }
            let block = try blockSize(c)
            return try c.unary(named(c) { try DepthToSpaceKernel(kind, block: block, type: c.type(0)) })
        },
        OpEntry("SpaceToDepth", quantization: .dataMovement) { c in
            let kind: DepthToSpaceKernel.Kind
            switch c.string("mode", default: "DCR") {
            case "DCR": kind = .spaceToDepthDCR
            case "CRD": kind = .spaceToDepthCRD
            case let mode: throw AimetError.invalid("\(c.what): unknown mode '\(mode)' (DCR or CRD)")
            }
            let block = try blockSize(c)
            return try c.unary(named(c) { try DepthToSpaceKernel(kind, block: block, type: c.type(0)) })
        },
        OpEntry("CenterCropPad", quantization: .dataMovement) { c in
            let operands = [try c.input(0, "input_data"), try c.input(1, "shape")]
            let kernel = PadKernel(mode: .constant, type: c.type(0), valueType: c.type(0), attributePads: nil, attributeValue: 0,
                                   padsOperand: 1, valueOperand: nil, axesOperand: nil, knownPads: nil, knownAxes: nil,
                                   centered: true, centerAxes: c.node.ints("axes"))
            return c.step(kernel, operands)
        },
        OpEntry("ReverseSequence", quantization: .dataMovement) { c in
            let kernel = try named(c) {
                try ReverseSequenceKernel(timeAxis: c.node.int("time_axis", default: 0), batchAxis: c.node.int("batch_axis", default: 1),
                                          type: c.type(0))
            }
            return c.step(kernel, [try c.input(0, "input"), try c.input(1, "sequence_lens")])
        },
        OpEntry("GridSample") { c in
            // Opset 16 names the modes bilinear / bicubic; opset 20 linear / cubic and allows any rank.
            let modeName = c.string("mode", default: c.opset < 20 ? "bilinear" : "linear")
            let modes: [String: GridSampleKernel.Mode] = c.opset < 20 ? ["bilinear": .linear, "nearest": .nearest, "bicubic": .cubic]
                                                                      : ["linear": .linear, "nearest": .nearest, "cubic": .cubic]
            guard let mode = modes[modeName] else { throw AimetError.unsupported("\(c.what): mode '\(modeName)' is not supported at opset \(c.opset)") }
            let paddingName = c.string("padding_mode", default: "zeros")
            guard let padding = GridSampleKernel.Padding(rawValue: paddingName) else {
                throw AimetError.unsupported("\(c.what): padding_mode '\(paddingName)' is not supported (zeros, border, reflection)")
            }
            if mode == .cubic && padding == .border {
                // onnxruntime (as PyTorch) clamps each tap; the ONNX reference clamps the coordinate first.
                throw AimetError.unsupported("\(c.what): cubic sampling with border padding is not supported (implementations differ on where the border applies)")
            }
            let kernel = GridSampleKernel(mode: mode, padding: padding, alignCorners: c.node.int("align_corners", default: 0) != 0)
            return c.step(kernel, [try c.input(0, "X"), try c.input(1, "grid")])
        },
        OpEntry("AffineGrid") { c in
            c.step(AffineGridKernel(alignCorners: c.node.int("align_corners", default: 0) != 0), [try c.input(0, "theta"), try c.input(1, "size")])
        },
        OpEntry("Col2Im") { c in
            let kernel = Col2ImKernel(dilations: c.node.ints("dilations"), pads: c.node.ints("pads"), strides: c.node.ints("strides"))
            return c.step(kernel, [try c.input(0, "input"), try c.input(1, "image_shape"), try c.input(2, "block_shape")])
        },
        OpEntry("Resize") { c in try resizeSteps(c) },
        OpEntry("Upsample") { c in try resizeSteps(c) },
    ]

    /// Resize (opset 10: data, scales; 11+: data, roi, scales, sizes) and
    /// Upsample (opset 7: the scales attribute; 9: data, scales). Resize-10 and
    /// Upsample have only nearest and linear, on asymmetric coordinates.
    private static func resizeSteps(_ c: NodeContext) throws -> [CompiledStep] {
        var config = ResizeKernel.Config()
        func parse<T: RawRepresentable>(_ key: String, _ fallback: T) throws -> T where T.RawValue == String {
            let name = c.string(key, default: fallback.rawValue)
            guard let value = T(rawValue: name) else { throw AimetError.unsupported("\(c.what): \(key) '\(name)' is not supported") }
            return value
        }
        config.mode = try parse("mode", ResizeKernel.Mode.nearest)
        var operands = [try c.input(0, "X")]
        func operand(_ i: Int) -> Int? {
            guard let name = c.optional(i) else { return nil }
            operands.append(name)
            return operands.count - 1
        }
        let legacy = c.node.op.onnxType == "Upsample" || c.opset < 11
        var attributeScales: [Float]?
        let roi: Int?, scales: Int?, sizes: Int?
        let scalesInput: Int
        if legacy {
            guard config.mode != .cubic else { throw AimetError.unsupported("\(c.what): mode 'cubic' needs Resize from opset 11") }
            config.coordinates = .asymmetric
            config.rounding = .floor
            config.legacy = true
            if c.node.op.onnxType == "Upsample" && c.opset < 9 {
                guard case .floats(let v)? = c.node.attributes["scales"] else { throw AimetError.invalid("\(c.what) has no scales attribute") }
                attributeScales = v
                scalesInput = -1
                (roi, scales, sizes) = (nil, nil, nil)
            } else {
                _ = try c.input(1, "scales")
                scalesInput = 1
                (roi, scales, sizes) = (nil, operand(1), nil)
            }
        } else {
            config.coordinates = try parse("coordinate_transformation_mode", ResizeKernel.Coordinates.halfPixel)
            config.rounding = try parse("nearest_mode", ResizeKernel.Rounding.roundPreferFloor)
            config.cubicA = Double(c.node.float("cubic_coeff_a", default: -0.75))
            config.excludeOutside = c.node.int("exclude_outside", default: 0) != 0
            config.extrapolation = c.node.float("extrapolation_value", default: 0)
            config.antialias = c.node.int("antialias", default: 0) != 0
            config.axes = c.node.ints("axes")
            config.policy = try parse("keep_aspect_ratio_policy", ResizeKernel.AspectPolicy.stretch)
            scalesInput = 2
            (roi, scales, sizes) = (operand(1), operand(2), operand(3))
        }
        let known = attributeScales ?? (scalesInput >= 0 ? c.constant(scalesInput)?.floats : nil)
        let kernel = ResizeKernel(config, attributeScales: attributeScales, roiOperand: roi, scalesOperand: scales,
                                  sizesOperand: sizes, knownScales: known)
        return c.step(kernel, operands)
    }

    /// A kernel whose initializer checks attributes, its errors naming the node.
    private static func named<K: Kernel>(_ c: NodeContext, _ make: () throws -> K) throws -> K {
        do {
            return try make()
        } catch let error as AimetError {
            throw AimetError(error.kind, "\(c.what): \(error.message)")
        }
    }

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
            kernel = PadKernel(mode: mode, type: c.type(0), valueType: c.type(0), attributePads: pads, attributeValue: c.node.float("value", default: 0),
                               padsOperand: nil, valueOperand: nil, axesOperand: nil, knownPads: pads, knownAxes: nil)
        } else {
            _ = try c.input(1, "pads")
            let known = c.constant(1)?.integers, knownAxes = c.constant(3)?.integers
            let pads = operand(1), value = operand(2), axes = operand(3)
            kernel = PadKernel(mode: mode, type: c.type(0), valueType: c.type(2), attributePads: nil, attributeValue: 0,
                               padsOperand: pads, valueOperand: value, axesOperand: axes, knownPads: known, knownAxes: knownAxes)
        }
        return c.step(kernel, operands)
    }
}
