// Ops that move data or change shapes, and constants.

extension OpCatalogue {
    static let shapes: [OpEntry] = [
        OpEntry("Constant", quantization: .none) { c in
            c.step(ConstantKernel(try constantValue(c)), [])
        },
        OpEntry("Identity", equalization: .passThrough, quantization: .dataMovement) { c in
            try c.unary(ViewKernel(.identity))
        },
        OpEntry("Dropout", equalization: .passThrough, quantization: .dataMovement) { c in
            try c.requireOnlyFirstOutput("the mask output")
            // Opset 12+: training_mode (input 2) must be a constant false (or absent).
            if let name = c.optional(2) {
                guard let mode = try? c.intConstant(2, "training_mode"), mode.count == 1 else {
                    throw AimetError.unsupported("\(c.what): training_mode '\(name)' is not a constant; the executor runs inference only")
                }
                guard mode[0] == 0 else { throw AimetError.unsupported("\(c.what): training_mode = 1 (the executor runs inference only)") }
            }
            return try c.unary(ViewKernel(.identity), "data")
        },
        OpEntry("Flatten", quantization: .dataMovement) { c in
            try c.unary(ViewKernel(.flatten(axis: c.node.int("axis", default: 1))))
        },
        OpEntry("Reshape", quantization: .dataMovement) { c in
            let allowZero = c.node.int("allowzero", default: 0) != 0
            if let name = c.optional(1) {
                return c.step(ReshapeKernel(allowZero: allowZero), [try c.input(0, "data"), name])
            }
            guard let shape = c.node.ints("shape") else { throw AimetError.invalid("\(c.what) has neither a shape input nor a shape attribute") }
            do {
                return try c.unary(ViewKernel(.reshape(shape: shape, allowZero: allowZero)), "data")
            } catch let error as AimetError {
                throw AimetError(error.kind, "\(c.what): \(error.message)")
            }
        },
        OpEntry("Concat") { c in
            let operands = c.node.inputs.filter { !$0.isEmpty }
            guard !operands.isEmpty else { throw AimetError.invalid("\(c.what) has no inputs") }
            return c.step(try ConcatKernel(node: c.node, type: c.type(0)), operands)
        },
        OpEntry("Shape", quantization: .none) { c in
            let end = c.node.attributes["end"]?.intValue
            return try c.unary(ShapeKernel(.shape(start: c.node.int("start", default: 0), end: end)), "data")
        },
        OpEntry("Size", quantization: .none) { c in
            try c.unary(ShapeKernel(.size), "data")
        },
        OpEntry("Gather", quantization: .dataMovement) { c in
            c.step(GatherKernel(axis: c.node.int("axis", default: 0), type: c.type(0)), [try c.input(0, "data"), try c.input(1, "indices")])
        },
        OpEntry("Squeeze", quantization: .dataMovement) { c in
            try axesView(c, attribute: .squeeze(axes: c.node.ints("axes")), constant: { .squeeze(axes: $0) }, operand: .squeezeByInput)
        },
        OpEntry("Unsqueeze", quantization: .dataMovement) { c in
            if c.opset < 13 && c.node.ints("axes") == nil { throw AimetError.invalid("\(c.what) has no axes attribute") }
            if c.opset >= 13 && c.optional(1) == nil { throw AimetError.invalid("\(c.what) has no axes input") }
            return try axesView(c, attribute: .unsqueeze(axes: c.node.ints("axes") ?? []), constant: { .unsqueeze(axes: $0) },
                                operand: .unsqueezeByInput)
        },
        OpEntry("Slice", quantization: .dataMovement) { c in
            let data = try c.input(0, "data")
            if c.opset < 10 {
                guard let starts = c.node.ints("starts"), let ends = c.node.ints("ends") else {
                    throw AimetError.invalid("\(c.what) lacks the starts or ends attribute")
                }
                return c.step(SliceKernel(parameters: (starts, ends, c.node.ints("axes"), nil), type: c.type(0)), [data])
            }
            let starts = try c.input(1, "starts"), ends = try c.input(2, "ends")
            if let s = c.constant(1), let e = c.constant(2), c.optional(3) == nil || c.constant(3) != nil,
               c.optional(4) == nil || c.constant(4) != nil, ([s, e] + [c.constant(3), c.constant(4)].compactMap { $0 }).allSatisfy({ $0.type == .int64 }) {
                if let steps = c.constant(4)?.integers, steps.contains(0) { throw AimetError.invalid("\(c.what): step 0 in steps \(steps)") }
                return c.step(SliceKernel(parameters: (s.integers, e.integers, c.constant(3)?.integers, c.constant(4)?.integers),
                                          type: c.type(0)), [data])
            }
            var operands = [data, starts, ends]
            var axes: Int?, steps: Int?
            if let name = c.optional(3) { axes = operands.count; operands.append(name) }
            if let name = c.optional(4) { steps = operands.count; operands.append(name) }
            return c.step(SliceKernel(parameters: nil, axesOperand: axes, stepsOperand: steps, type: c.type(0)), operands)
        },
        OpEntry("Split", quantization: .dataMovement) { c in
            let data = try c.input(0, "input")
            let axis = c.node.int("axis", default: 0)
            let outputs = c.node.outputs
            guard !outputs.isEmpty, !outputs.contains("") else { throw AimetError.invalid("\(c.what) has an unnamed output") }
            var sizes = c.opset < 13 ? c.node.ints("split") : nil
            var operands = [data]
            if c.opset >= 13, let name = c.optional(1) {
                if let value = c.constant(1), value.type == .int64 { sizes = value.integers } else { operands.append(name) }
            }
            let parts = c.node.attributes["num_outputs"]?.intValue ?? outputs.count
            guard parts == outputs.count else {
                throw AimetError.invalid("\(c.what): num_outputs = \(parts) but the node has \(outputs.count) outputs")
            }
            let uneven = c.opset >= 18 && c.node.attributes["num_outputs"] != nil
            return outputs.enumerated().map { k, name in
                CompiledStep(kernel: SplitKernel(axis: axis, part: k, parts: parts, sizes: sizes, uneven: uneven, type: c.type(0)),
                             operands: operands, output: name)
            }
        },
        OpEntry("ConstantOfShape", quantization: .none) { c in
            var value = Value(type: .float32, shape: [1], slots: [0])
            switch c.node.attributes["value"] {
            case nil: break
            case .tensor(let t)?: value = Value(t)
            case .typedTensor(let v)?: value = v
            default: throw AimetError.unsupported("\(c.what) holds a value of a type the executor does not compute with (float32, integer and bool only)")
            }
            guard value.count == 1 else { throw AimetError.invalid("\(c.what): the value has \(value.count) elements, expected one") }
            return try c.unary(ConstantOfShapeKernel(value: value), "shape")
        },
        OpEntry("Range", quantization: .none) { c in
            c.step(RangeKernel(type: c.type(0)), [try c.input(0, "start"), try c.input(1, "limit"), try c.input(2, "delta")])
        },
        OpEntry("Expand", quantization: .dataMovement) { c in
            c.step(ExpandKernel(type: c.type(0)), [try c.input(0, "input"), try c.input(1, "shape")])
        },
        OpEntry("Tile", quantization: .dataMovement) { c in
            let keepsAxis0 = c.constant(1).map { $0.type == .int64 && $0.integers.first == 1 } ?? false
            return c.step(TileKernel(keepsAxis0: keepsAxis0, type: c.type(0)), [try c.input(0, "input"), try c.input(1, "repeats")])
        },
        OpEntry("Trilu", quantization: .dataMovement) { c in
            var operands = [try c.input(0, "input")]
            if let k = c.optional(1) { operands.append(k) }
            return c.step(TriluKernel(upper: c.node.int("upper", default: 1) != 0, type: c.type(0)), operands)
        },
        OpEntry("EyeLike", quantization: .none) { c in
            var type = c.type(0)
            if let code = c.node.attributes["dtype"]?.intValue {
                guard let t = ElementType(onnx: code) else {
                    throw AimetError.unsupported("\(c.what): dtype \(ElementType.onnxName(code)) is not supported (float32, integers and bool only)")
                }
                type = t
            }
            return try c.unary(EyeLikeKernel(k: c.node.int("k", default: 0), type: type))
        },
        OpEntry("GatherElements", quantization: .dataMovement) { c in
            c.step(GatherElementsKernel(axis: c.node.int("axis", default: 0), type: c.type(0)),
                   [try c.input(0, "data"), try c.input(1, "indices")])
        },
        OpEntry("GatherND", quantization: .dataMovement) { c in
            c.step(GatherNDKernel(batchDims: c.node.int("batch_dims", default: 0), type: c.type(0)),
                   [try c.input(0, "data"), try c.input(1, "indices")])
        },
        OpEntry("OneHot", quantization: .none) { c in
            c.step(OneHotKernel(axis: c.node.int("axis", default: -1), indicesType: c.type(0), valuesType: c.type(2)),
                   [try c.input(0, "indices"), try c.input(1, "depth"), try c.input(2, "values")])
        },
        OpEntry("ScatterElements", quantization: .dataMovement) { c in
            try scatter(c, .elements(axis: c.node.int("axis", default: 0)))
        },
        OpEntry("Scatter", quantization: .dataMovement) { c in
            try scatter(c, .elements(axis: c.node.int("axis", default: 0)))
        },
        OpEntry("ScatterND", quantization: .dataMovement) { c in
            try scatter(c, .nd)
        },
    ]

    /// ScatterElements, Scatter and ScatterND: data, indices, updates and the reduction attribute.
    private static func scatter(_ c: NodeContext, _ kind: ScatterKernel.Kind) throws -> [CompiledStep] {
        let name = c.string("reduction", default: "none")
        guard let reduction = ScatterKernel.Reduction(rawValue: name) else {
            throw AimetError.unsupported("\(c.what): reduction '\(name)' is not supported (none, add, mul, max, min)")
        }
        if reduction != .none && c.type(0) == .bool {
            throw AimetError.unsupported("\(c.what): reduction '\(name)' on bool data is not supported")
        }
        return c.step(ScatterKernel(kind, reduction: reduction, type: c.type(0)),
                      [try c.input(0, "data"), try c.input(1, "indices"), try c.input(2, "updates")])
    }

    /// Squeeze and Unsqueeze: axes from the attribute (opset < 13), else from
    /// input 1, as a plain view when that input is a constant.
    private static func axesView(_ c: NodeContext, attribute: ViewKernel.Kind, constant: ([Int]) -> ViewKernel.Kind,
                                 operand: ViewKernel.Kind) throws -> [CompiledStep] {
        let data = try c.input(0, "data")
        guard c.opset >= 13, let name = c.optional(1) else {
            return c.step(try ViewKernel(c.opset >= 13 ? .squeeze(axes: nil) : attribute), [data])
        }
        if let value = c.constant(1), value.type == .int64 { return c.step(try ViewKernel(constant(value.integers)), [data]) }
        return c.step(try ViewKernel(operand), [data, name])
    }

    /// The value a Constant node holds (`value` tensor, `value_float(s)`, `value_int(s)`).
    static func constantValue(_ c: NodeContext) throws -> Value {
        let a = c.node.attributes
        if case .typedTensor(let v)? = a["value"] { return v }
        if let value = c.constants[c.node.output] { return value }
        if case .tensor(let t)? = a["value"] { return Value(t) }
        if case .float(let v)? = a["value_float"] { return Value(type: .float32, shape: [], slots: [v]) }
        if case .floats(let v)? = a["value_floats"] { return Value(type: .float32, shape: [v.count], slots: v) }
        if case .int(let v)? = a["value_int"] { return try Value(int64: [v], shape: []) }
        if case .ints(let v)? = a["value_ints"] { return try Value(int64: v, shape: [v.count]) }
        throw AimetError.unsupported("\(c.what) holds a value the executor cannot read (float32, integer and bool tensors only)")
    }
}
