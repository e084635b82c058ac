import AimetCore
import CAimetABI
import Glibc

/// What an `aimet_results_t *` points to: named tensors with C copies of
/// their names and shapes, so that borrowed pointers stay valid until freed.
final class ResultsHandle: Handle {
    override class var kind: String { "results" }
    let names: [String]
    let tensors: [Tensor]
    private let cNames: [ContiguousArray<CChar>]
    private let cShapes: [[Int64]]

    init(_ pairs: [(String, Tensor)]) {
        names = pairs.map(\.0)
        tensors = pairs.map(\.1)
        cNames = names.map(\.utf8CString)
        cShapes = tensors.map { $0.shape.map { Int64($0) } }
        super.init()
    }

    func get(_ index: Int32, _ name: UnsafeMutablePointer<UnsafePointer<CChar>?>?,
             _ data: UnsafeMutablePointer<UnsafePointer<Float>?>?, _ shape: UnsafeMutablePointer<UnsafePointer<Int64>?>?,
             _ ndim: UnsafeMutablePointer<Int32>?) throws {
        guard index >= 0, Int(index) < tensors.count else {
            throw AimetError(.invalidArgument, "result \(index) is out of range: there are \(tensors.count)")
        }
        let i = Int(index)
        cNames[i].withUnsafeBufferPointer { name?.pointee = $0.baseAddress }
        tensors[i].data.withUnsafeBufferPointer { data?.pointee = $0.baseAddress }
        cShapes[i].withUnsafeBufferPointer { shape?.pointee = $0.baseAddress }
        ndim?.pointee = Int32(tensors[i].rank)
    }
}

/// Copies the caller's input descriptions in, validating them.
func readInputs(_ inputs: UnsafePointer<aimet_tensor_t>?, _ count: Int32) throws -> [String: Tensor] {
    guard count >= 0 else { throw AimetError(.invalidArgument, "num_inputs \(count) is negative") }
    guard count == 0 || inputs != nil else { throw nullError("inputs") }
    var result: [String: Tensor] = [:]
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
        let values = try readFloats(t.data, count: elements, what: "input '\(name)' data")
        guard result[name] == nil else { throw AimetError(.invalidArgument, "input '\(name)' is given twice") }
        result[name] = try Tensor(shape: shape, data: values)
    }
    return result
}
