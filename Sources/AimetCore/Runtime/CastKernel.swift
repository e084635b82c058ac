/// Cast and CastLike between float32, the integer types and bool. The executor
/// keeps every integer type as int64, so a cast to a narrower integer type
/// stores the value that type would hold, as onnxruntime's C++ `static_cast`
/// produces it on x86-64:
///
/// * int64 → n-bit integer: the low n bits (two's complement wrap; unsigned
///   types read them as non-negative);
/// * float32 → int64: truncated toward zero; NaN and values out of range give
///   `Int64.min` (the processor's "integer indefinite");
/// * float32 → int8, uint8, int16, uint16, int32: truncated to int32 the same
///   way (out of range and NaN: `Int32.min`), then wrapped to the type;
/// * float32 → uint32, uint64: truncated and wrapped when the value is within
///   the range where onnxruntime does that (-2³¹ … 2³² and -2⁶³ … 2⁶⁴); other
///   values (NaN included) are refused at run time: onnxruntime's result for them is
///   platform-specific;
/// * anything → bool: `x != 0` (NaN is true); bool → numbers: 0 or 1;
///   int64 → float32: rounded to nearest even.
final class CastKernel: Kernel {
    /// What the output holds.
    enum Target: Sendable, Equatable {
        case float32, bool
        /// An integer type of `bits` bits (8, 16, 32, 64), stored as int64.
        case integer(bits: Int, signed: Bool)

        /// The target of an ONNX `TensorProto.DataType` code, nil for a type the executor does not compute with.
        init?(onnx code: Int) {
            switch code {
            case 1: self = .float32
            case 9: self = .bool
            case 2: self = .integer(bits: 8, signed: false)
            case 3: self = .integer(bits: 8, signed: true)
            case 4: self = .integer(bits: 16, signed: false)
            case 5: self = .integer(bits: 16, signed: true)
            case 6: self = .integer(bits: 32, signed: true)
            case 7: self = .integer(bits: 64, signed: true)
            case 12: self = .integer(bits: 32, signed: false)
            case 13: self = .integer(bits: 64, signed: false)
            default: return nil
            }
        }

        var elementType: ElementType {
            switch self {
            case .float32: return .float32
            case .bool: return .bool
            case .integer: return .int64
            }
        }
    }
    let target: Target
    /// The input's element type.
    let source: ElementType
    /// "node 'name' (Op)", for values refused while running.
    let what: String

    init(to target: Target, from source: ElementType, what: String) {
        self.target = target
        self.source = source
        self.what = what
    }

    func outputType(_ types: [ElementType]) throws -> ElementType {
        guard types.first == source else { throw AimetError(.internalError, "operand types \(types), compiled for \(source)") }
        return target.elementType
    }

    func outputShape(_ shapes: [[Int]]) throws -> [Int] { shapes[0] }

    func run(_ args: KernelArgs) throws {
        let count = args.outputShape.reduce(1, *)
        let x = args.inputs[0], y = args.output
        if source == .float32, case .integer(let bits, false) = target, bits >= 32 {
            let limit: Float = bits == 32 ? 0x1p32 : 0x1p64
            let floor: Float = bits == 32 ? -0x1p31 : -0x1p63
            for i in 0..<count where !(x[i] >= floor && x[i] < limit) {
                throw AimetError.unsupported("\(what): element \(i) is \(x[i]), outside the range of uint\(bits) where a cast is defined (onnxruntime's result is platform-specific)")
            }
        }
        Parallel.forEach(count, workers: count >= 1 << 15 ? args.workers : 1) { range, _ in
            let lo = range.lowerBound
            convert(x + lo * source.slots, y + lo * target.elementType.slots, range.count)
        }
    }

    /// Converts `n` elements (pointers at the first one).
    private func convert(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        let xi = Int64Pointer(x), yi = Int64Pointer(y)
        switch (source, target) {
        case (.float32, .float32), (.bool, .float32), (.bool, .bool):
            if UnsafePointer(y) != x { y.update(from: x, count: n) }
        case (.float32, .bool):
            for i in 0..<n { y[i] = x[i] != 0 ? 1 : 0 }
        case (.int64, .bool):
            for i in 0..<n { y[i] = xi[i] != 0 ? 1 : 0 }
        case (.int64, .float32):
            for i in 0..<n { y[i] = Float(xi[i]) }
        case (.bool, .integer):
            for i in 0..<n { yi[i] = x[i] != 0 ? 1 : 0 }
        case (.int64, .integer(let bits, let signed)):
            for i in 0..<n { yi[i] = CastKernel.wrap(xi[i], bits: bits, signed: signed) }
        case (.float32, .integer(64, true)):
            for i in 0..<n { yi[i] = BinaryKernel.truncate(Double(x[i])) }
        case (.float32, .integer(64, false)):
            // In range (checked by `run`): -2⁶³ ≤ x < 2⁶⁴.
            for i in 0..<n {
                let v = Double(x[i]).rounded(.towardZero)
                yi[i] = v >= 0x1p63 ? Int64(bitPattern: UInt64(v)) : Int64(v)
            }
        case (.float32, .integer(32, false)):
            // In range (checked by `run`): -2³¹ ≤ x < 2³².
            for i in 0..<n { yi[i] = CastKernel.wrap(Int64(Double(x[i]).rounded(.towardZero)), bits: 32, signed: false) }
        case (.float32, .integer(let bits, let signed)):
            for i in 0..<n {
                let v = Double(x[i])
                let int32 = v >= -0x1p31 && v < 0x1p31 ? Int64(v.rounded(.towardZero)) : Int64(Int32.min)
                yi[i] = CastKernel.wrap(int32, bits: bits, signed: signed)
            }
        }
    }

    /// The low `bits` bits of `v`, read as a signed or unsigned integer.
    @inline(__always)
    static func wrap(_ v: Int64, bits: Int, signed: Bool) -> Int64 {
        guard bits < 64 else { return v }
        let shift = Int64(64 - bits)
        return signed ? (v << shift) >> shift : Int64(bitPattern: UInt64(bitPattern: v << shift) >> UInt64(shift))
    }
}
