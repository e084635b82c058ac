import AimetCore
import CAimetABI
import Glibc

/// What an `aimet_results_t *` points to: named tensors with C copies of
/// their names and shapes, so that borrowed pointers stay valid until freed.
final class ResultsHandle: Handle {
    override class var kind: String { "results" }
    let names: [String]
    let tensors: [Value]
    private let cNames: [ContiguousArray<CChar>]
    private let cShapes: [[Int64]]
    /// The elements as C reads them (bool values one byte each), by result.
    private let cData: [[UInt8]?]

    init(_ pairs: [(String, Value)]) {
        names = pairs.map(\.0)
        tensors = pairs.map(\.1)
        cNames = names.map(\.utf8CString)
        cShapes = tensors.map { $0.shape.map { Int64($0) } }
        cData = tensors.map { $0.type == .float32 ? nil : $0.withUnsafeBytes { Array($0) } }
        super.init()
    }

    func getData(_ index: Int32, _ dtype: UnsafeMutablePointer<Int32>?, _ data: UnsafeMutablePointer<UnsafeRawPointer?>?) throws {
        let i = try checked(index)
        dtype?.pointee = dtypeCode(tensors[i].type)
        if let bytes = cData[i] {
            bytes.withUnsafeBytes { data?.pointee = $0.baseAddress }
        } else {
            tensors[i].withUnsafeBytes { data?.pointee = $0.baseAddress }
        }
    }

    private func checked(_ index: Int32) throws -> Int {
        guard index >= 0, Int(index) < tensors.count else {
            throw AimetError(.invalidArgument, "result \(index) is out of range: there are \(tensors.count)")
        }
        return Int(index)
    }

    func get(_ index: Int32, _ name: UnsafeMutablePointer<UnsafePointer<CChar>?>?,
             _ data: UnsafeMutablePointer<UnsafePointer<Float>?>?, _ shape: UnsafeMutablePointer<UnsafePointer<Int64>?>?,
             _ ndim: UnsafeMutablePointer<Int32>?) throws {
        let i = try checked(index)
        cNames[i].withUnsafeBufferPointer { name?.pointee = $0.baseAddress }
        if tensors[i].type == .float32 {
            tensors[i].withUnsafeBytes { data?.pointee = $0.baseAddress?.assumingMemoryBound(to: Float.self) }
        } else {
            data?.pointee = nil
        }
        cShapes[i].withUnsafeBufferPointer { shape?.pointee = $0.baseAddress }
        ndim?.pointee = Int32(tensors[i].shape.count)
    }
}

func dtypeCode(_ type: ElementType) -> Int32 {
    switch type {
    case .float32: return Int32(AIMET_DTYPE_FLOAT32.rawValue)
    case .int64: return Int32(AIMET_DTYPE_INT64.rawValue)
    case .bool: return Int32(AIMET_DTYPE_BOOL.rawValue)
    }
}

/// Copies the caller's float32 input descriptions in, validating them.
func readInputs(_ inputs: UnsafePointer<aimet_tensor_t>?, _ count: Int32) throws -> [String: Tensor] {
    try readValues(inputs, count).mapValues { value in
        guard let tensor = value.tensor else {
            throw AimetError(.invalidArgument, "this call takes float32 data; got a \(value.type) tensor")
        }
        return tensor
    }
}

/// Copies the caller's input descriptions in (any element type), validating them.
func readValues(_ inputs: UnsafePointer<aimet_tensor_t>?, _ count: Int32) throws -> [String: Value] {
    guard count >= 0 else { throw AimetError(.invalidArgument, "num_inputs \(count) is negative") }
    guard count == 0 || inputs != nil else { throw nullError("inputs") }
    var result: [String: Value] = [:]
    for k in 0..<Int(count) {
        let t = inputs![k]
        let name = try requiredString(t.name, "inputs[\(k)].name")
        let shape = try int64Array(t.shape, t.ndim, "inputs[\(k)].shape")
        guard shape.allSatisfy({ $0 >= 0 }) else { throw AimetError(.shapeMismatch, "input '\(name)': negative dimension in \(shape)") }
        var elements: Int64 = 1
        for d in shape {
            let (product, overflow) = elements.multipliedReportingOverflow(by: Int64(d))
            guard !overflow, product <= 1 << 40 else { throw AimetError(.invalidArgument, "input '\(name)': shape \(shape) is too large") }
            elements = product
        }
        guard result[name] == nil else { throw AimetError(.invalidArgument, "input '\(name)' is given twice") }
        guard let data = t.data else { throw nullError("input '\(name)' data") }
        let n = Int(elements)
        switch aimet_dtype(rawValue: UInt32(bitPattern: t.dtype)) {
        case AIMET_DTYPE_FLOAT32:
            result[name] = Value(try Tensor(shape: shape, data: Array(UnsafeBufferPointer(start: data.assumingMemoryBound(to: Float.self), count: n))))
        case AIMET_DTYPE_INT64:
            let p = data.assumingMemoryBound(to: Int64.self)
            result[name] = try Value(int64: (0..<n).map { Int(p[$0]) }, shape: shape)
        case AIMET_DTYPE_BOOL:
            let p = data.assumingMemoryBound(to: UInt8.self)
            result[name] = try Value(bool: (0..<n).map { p[$0] != 0 }, shape: shape)
        default:
            throw AimetError(.invalidArgument, "input '\(name)': unknown dtype \(t.dtype) (AIMET_DTYPE_FLOAT32 0, INT64 1, BOOL 2)")
        }
    }
    return result
}
