/// The element types the executor computes with. ONNX's narrower integer
/// types (int8 … int32, uint8 … uint32) are widened to `int64`; float16,
/// float64, strings and the rest are not supported.
public enum ElementType: Sendable, Hashable, CustomStringConvertible {
    case float32
    case int64
    case bool

    /// The executor keeps every value in float-sized slots: an int64 element
    /// takes two, a float32 or bool element one.
    var slots: Int { self == .int64 ? 2 : 1 }

    /// The type for an ONNX `TensorProto.DataType` code, nil for a type the executor does not compute with.
    public init?(onnx code: Int) {
        switch code {
        case 1: self = .float32
        case 2, 3, 4, 5, 6, 7, 12, 13: self = .int64
        case 9: self = .bool
        default: return nil
        }
    }

    /// ONNX's code for the type (float32 1, int64 7, bool 9).
    public var onnxCode: Int {
        switch self {
        case .float32: return 1
        case .int64: return 7
        case .bool: return 9
        }
    }

    public var description: String {
        switch self {
        case .float32: return "float32"
        case .int64: return "int64"
        case .bool: return "bool"
        }
    }

    /// The name of an ONNX `TensorProto.DataType` code, for messages.
    static func onnxName(_ code: Int) -> String {
        let names = [0: "undefined", 1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32",
                     7: "int64", 8: "string", 9: "bool", 10: "float16", 11: "float64", 12: "uint32", 13: "uint64",
                     14: "complex64", 15: "complex128", 16: "bfloat16"]
        return names[code] ?? "type \(code)"
    }
}

/// A tensor of any `ElementType`, as the executor stores it: a shape and
/// float-sized slots (float32 values as they are; int64 values two slots
/// each, little-endian bit patterns; bool values as 0 or 1 in one slot).
public struct Value: Hashable, Sendable {
    public let type: ElementType
    public let shape: [Int]
    /// The storage: `count · type.slots` floats.
    var slots: [Float]

    /// Wraps storage whose size the caller has derived from `shape` and `type`.
    init(type: ElementType, shape: [Int], slots: [Float]) {
        assert(shape.reduce(1, *) * type.slots == slots.count)
        self.type = type
        self.shape = shape
        self.slots = slots
    }

    public init(_ tensor: Tensor) {
        self.init(type: .float32, shape: tensor.shape, slots: tensor.data)
    }

    /// An int64 tensor (`values.count` must equal the shape's element count).
    public init(int64 values: [Int], shape: [Int]) throws {
        guard shape.allSatisfy({ $0 >= 0 }), shape.reduce(1, *) == values.count else {
            throw AimetError.shape("shape \(shape) does not hold \(values.count) values")
        }
        var slots = [Float](repeating: 0, count: values.count * 2)
        slots.withUnsafeMutableBytes { raw in
            for (i, v) in values.enumerated() { raw.storeBytes(of: Int64(v).littleEndian, toByteOffset: i * 8, as: Int64.self) }
        }
        self.init(type: .int64, shape: shape, slots: slots)
    }

    /// A bool tensor.
    public init(bool values: [Bool], shape: [Int]) throws {
        guard shape.allSatisfy({ $0 >= 0 }), shape.reduce(1, *) == values.count else {
            throw AimetError.shape("shape \(shape) does not hold \(values.count) values")
        }
        self.init(type: .bool, shape: shape, slots: values.map { $0 ? 1 : 0 })
    }

    /// An integer constant of the graph.
    init(_ ints: IntTensor) {
        // IntTensor's shape and values agree by construction.
        if ints.elementType == ElementType.bool.onnxCode {
            self = (try? Value(bool: ints.values.map { $0 != 0 }, shape: ints.shape)) ?? Value(type: .bool, shape: [0], slots: [])
        } else {
            self = (try? Value(int64: ints.values, shape: ints.shape)) ?? Value(type: .int64, shape: [0], slots: [])
        }
    }

    public var count: Int { shape.reduce(1, *) }

    /// The float32 tensor, nil for another type.
    public var tensor: Tensor? { type == .float32 ? Tensor(validShape: shape, data: slots) : nil }

    /// The elements as integers (int64 values; bool as 0 / 1; float32 truncated toward zero), in order.
    public var integers: [Int] {
        switch type {
        case .float32: return slots.map { $0.isFinite ? Int(exactly: $0.rounded(.towardZero)) ?? 0 : 0 }
        case .bool: return slots.map { $0 != 0 ? 1 : 0 }
        case .int64:
            return slots.withUnsafeBytes { raw in
                (0..<count).map { Int(Int64(littleEndian: raw.load(fromByteOffset: $0 * 8, as: Int64.self))) }
            }
        }
    }

    /// The elements as float32 (int64 and bool converted).
    public var floats: [Float] {
        switch type {
        case .float32, .bool: return slots
        case .int64: return integers.map { Float($0) }
        }
    }

    /// The storage's raw bytes, for callers that read the elements by type.
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        switch type {
        case .float32, .int64: return try slots.withUnsafeBytes(body)
        case .bool:
            let bytes = slots.map { UInt8($0 != 0 ? 1 : 0) }
            return try bytes.withUnsafeBytes(body)
        }
    }
}

/// Element access to int64 values in float-slot storage, through raw loads
/// and stores (valid whatever type the memory is bound to).
struct Int64Pointer {
    let raw: UnsafeMutableRawPointer

    init(_ p: UnsafeMutablePointer<Float>) { raw = UnsafeMutableRawPointer(p) }
    init(_ p: UnsafePointer<Float>) { raw = UnsafeMutableRawPointer(mutating: p) }

    @inline(__always) subscript(_ i: Int) -> Int64 {
        get { raw.load(fromByteOffset: i &* 8, as: Int64.self) }
        nonmutating set { raw.storeBytes(of: newValue, toByteOffset: i &* 8, as: Int64.self) }
    }
}
