/// The float constants that steps read as operands (Gemm/MatMul weights,
/// Add/Mul constants, PRelu slopes, Concat pieces), copied once into buffers
/// whose addresses stay fixed, so runs hand them to kernels without copying.
final class ConstantStore: @unchecked Sendable {
    private(set) var pointers: [Int: UnsafePointer<Float>] = [:]
    private var owned: [UnsafeMutablePointer<Float>] = []

    init(_ constants: [(id: Int, value: Value)], used: Set<Int>) {
        for (id, value) in constants where used.contains(id) {
            let count = value.slots.count
            let buffer = UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
            value.slots.withUnsafeBufferPointer { if let base = $0.baseAddress { buffer.update(from: base, count: count) } }
            owned.append(buffer)
            pointers[id] = UnsafePointer(buffer)
        }
    }

    deinit {
        for buffer in owned { buffer.deallocate() }
    }
}
