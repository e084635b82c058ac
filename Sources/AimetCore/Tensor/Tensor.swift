/// A dense float32 tensor: a shape and row-major (C-contiguous) storage.
///
/// Value semantics: copying a `Tensor` copies on write, so a transform can work
/// on a copy and the original stays intact if it throws half-way.
public struct Tensor: Equatable, Sendable {
    public private(set) var shape: [Int]
    public var data: [Float]

    /// Wraps `data` as a tensor of `shape`; the element counts must agree.
    public init(shape: [Int], data: [Float]) throws {
        guard shape.allSatisfy({ $0 >= 0 }) else {
            throw AimetError.shape("negative dimension in shape \(shape)")
        }
        let count = shape.reduce(1, *)
        guard count == data.count else {
            throw AimetError.shape("shape \(shape) holds \(count) elements, got \(data.count)")
        }
        self.shape = shape
        self.data = data
    }

    /// Wraps data whose count the caller has derived from `shape`.
    init(validShape shape: [Int], data: [Float]) {
        assert(shape.reduce(1, *) == data.count)
        self.shape = shape
        self.data = data
    }

    /// A tensor of `shape` filled with `value`.
    public init(shape: [Int], repeating value: Float = 0) throws {
        guard shape.allSatisfy({ $0 >= 0 }) else {
            throw AimetError.shape("negative dimension in shape \(shape)")
        }
        self.shape = shape
        self.data = [Float](repeating: value, count: shape.reduce(1, *))
    }

    public var count: Int { data.count }
    public var rank: Int { shape.count }

    /// The index of the first NaN or infinite element, or nil when all are finite.
    public var firstNonFinite: Int? { data.firstNonFinite }
}

extension Array where Element == Float {
    /// The index of the first NaN or infinite element, or nil when all are finite.
    /// (A vectorizable scan of the exponent bits first: all-ones means NaN/inf.)
    public var firstNonFinite: Int? {
        let allFinite = withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: UInt32.self) { bits in
                var top: UInt32 = 0
                for word in bits { top = Swift.max(top, word & 0x7F80_0000) }
                return top != 0x7F80_0000
            }
        }
        return allFinite ? nil : firstIndex { !$0.isFinite }
    }
}
