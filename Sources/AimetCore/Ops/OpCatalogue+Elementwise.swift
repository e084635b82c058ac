// Elementwise ops: arithmetic with broadcasting, comparisons and logic,
// Where, Cast, and the functions of one tensor.

extension OpCatalogue {
    static let elementwise: [OpEntry] = [
        binary("Add", .add), binary("Sub", .sub), binary("Mul", .mul), binary("Div", .div),
        binary("Pow", .pow),
        OpEntry("Mod") { c in
            let fmod = c.node.int("fmod", default: 0)
            guard fmod == 0 || fmod == 1 else { throw AimetError.invalid("\(c.what): fmod = \(fmod), expected 0 or 1") }
            // Floor modulo of floats (fmod = 0) is defined from opset 28; before, fmod = 0 is for integers only.
            if fmod == 0 && c.opset < 28 && (c.type(0) == .float32 || c.type(1) == .float32) {
                throw AimetError.invalid("\(c.what): Mod of float tensors needs fmod = 1 before opset 28 (fmod = 0 is defined for integers only)")
            }
            return try binaryStep(c, .mod(fmod: fmod == 1))
        },
        variadic("Sum", .add), variadic("Mean", .mean), variadic("Max", .max), variadic("Min", .min),
        OpEntry("BitShift", quantization: .none) { c in
            switch c.string("direction", default: "") {
            case "RIGHT": return try binaryStep(c, .shiftRight)
            case "LEFT":
                throw AimetError.unsupported("\(c.what): a LEFT shift is not supported (the executor keeps uint8/16/32 values as int64 and cannot wrap the result at the declared width)")
            case let d: throw AimetError.invalid("\(c.what): direction '\(d)', expected LEFT or RIGHT")
            }
        },
        compare("Equal", .equal), compare("Less", .less), compare("LessOrEqual", .lessOrEqual),
        compare("Greater", .greater), compare("GreaterOrEqual", .greaterOrEqual),
        compare("And", .and), compare("Or", .or), compare("Xor", .xor),
        unary("Not", .not, quantization: .none),
        unary("IsNaN", .isNaN, quantization: .none),
        OpEntry("IsInf", quantization: .none) { c in
            let function = UnaryKernel.Function.isInf(positive: c.node.int("detect_positive", default: 1) != 0,
                                                      negative: c.node.int("detect_negative", default: 1) != 0)
            return try c.unary(UnaryKernel(function, type: c.type(0)), "X")
        },
        OpEntry("Where", quantization: .dataMovement) { c in
            c.step(WhereKernel(type: c.type(1)), [try c.input(0, "condition"), try c.input(1, "X"), try c.input(2, "Y")])
        },
        // (A cast to an integer or bool produces no float activation; a float-to-float cast moves data.)
        OpEntry("Cast", quantization: .dataMovement) { c in
            guard let to = c.node.attributes["to"]?.intValue else { throw AimetError.invalid("\(c.what) has no 'to' attribute") }
            guard let target = CastKernel.Target(onnx: to) else {
                throw AimetError.unsupported("\(c.what): a cast to \(ElementType.onnxName(to)) is not supported (the executor computes with float32, integers and bool)")
            }
            return try c.unary(CastKernel(to: target, from: c.type(0), what: c.what))
        },
        OpEntry("CastLike", quantization: .dataMovement) { c in
            // The target's integer width is not kept (integers are int64 here): an integer target is int64.
            let target: CastKernel.Target
            switch c.type(1) {
            case .float32: target = .float32
            case .bool: target = .bool
            case .int64: target = .integer(bits: 64, signed: true)
            }
            _ = try c.input(1, "target_type")
            return try c.unary(CastKernel(to: target, from: c.type(0), what: c.what))
        },
        unary("Neg", .neg), unary("Abs", .abs), unary("Sign", .sign),
        unary("Sqrt", .sqrt), unary("Exp", .exp), unary("Log", .log), unary("Reciprocal", .reciprocal),
        unary("Floor", .floor), unary("Ceil", .ceil), unary("Round", .round), unary("Erf", .erf),
        unary("Sin", .sin), unary("Cos", .cos), unary("Tan", .tan),
        unary("Asin", .asin), unary("Acos", .acos), unary("Atan", .atan),
        unary("Sinh", .sinh), unary("Cosh", .cosh), unary("Asinh", .asinh), unary("Acosh", .acosh), unary("Atanh", .atanh),
        OpEntry("Shrink") { c in
            let function = UnaryKernel.Function.shrink(bias: c.node.float("bias", default: 0), lambda: c.node.float("lambd", default: 0.5))
            return try c.unary(UnaryKernel(function, type: c.type(0)))
        },
    ]

    /// A two-input op with numpy broadcasting.
    private static func binary(_ type: String, _ operation: BinaryKernel.Operation) -> OpEntry {
        OpEntry(type) { c in try binaryStep(c, operation) }
    }

    private static func binaryStep(_ c: NodeContext, _ operation: BinaryKernel.Operation) throws -> [CompiledStep] {
        c.step(BinaryKernel(operation, types: [c.type(0), c.type(1)], what: c.what), [try c.input(0, "A"), try c.input(1, "B")])
    }

    /// An op of one or more inputs broadcast together, folded left to right.
    private static func variadic(_ type: String, _ operation: BinaryKernel.Operation) -> OpEntry {
        OpEntry(type) { c in
            let operands = c.node.inputs.filter { !$0.isEmpty }
            guard !operands.isEmpty else { throw AimetError.invalid("\(c.what) has no inputs") }
            return c.step(BinaryKernel(operation, types: operands.map { c.types[$0] ?? .float32 }, what: c.what), operands)
        }
    }

    /// A comparison or logical op of two inputs with numpy broadcasting, giving bool.
    private static func compare(_ type: String, _ operation: CompareKernel.Operation) -> OpEntry {
        OpEntry(type, quantization: .none) { c in
            c.step(CompareKernel(operation, types: [c.type(0), c.type(1)]), [try c.input(0, "A"), try c.input(1, "B")])
        }
    }

    /// A function of one input.
    private static func unary(_ type: String, _ function: UnaryKernel.Function,
                              quantization: QuantizationClass = .quantized) -> OpEntry {
        OpEntry(type, quantization: quantization) { c in try c.unary(UnaryKernel(function, type: c.type(0)), "X") }
    }
}
