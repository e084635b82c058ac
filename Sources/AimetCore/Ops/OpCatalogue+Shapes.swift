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
            return c.step(try ConcatKernel(node: c.node), operands)
        },
    ]

    /// The value a Constant node holds (`value` tensor, `value_float(s)`, `value_int(s)`).
    static func constantValue(_ c: NodeContext) throws -> Value {
        let a = c.node.attributes
        if let value = c.constants[c.node.output] { return value }
        if case .tensor(let t)? = a["value"] { return Value(t) }
        if case .float(let v)? = a["value_float"] { return Value(type: .float32, shape: [], slots: [v]) }
        if case .floats(let v)? = a["value_floats"] { return Value(type: .float32, shape: [v.count], slots: v) }
        if case .int(let v)? = a["value_int"] { return try Value(int64: [v], shape: []) }
        if case .ints(let v)? = a["value_ints"] { return try Value(int64: v, shape: [v.count]) }
        throw AimetError.unsupported("\(c.what) holds a value the executor cannot read (float32, integer and bool tensors only)")
    }
}
