/// Unaligned 8-lane float loads and stores for the hand-vectorized kernels
/// (`SIMD8<Float>` maps to two SSE or one AVX register).
typealias Float8 = SIMD8<Float>
/// One SSE register.
typealias Float4 = SIMD4<Float>

extension UnsafePointer where Pointee == Float {
    @inline(__always) func load8(_ offset: Int = 0) -> Float8 {
        UnsafeRawPointer(self + offset).loadUnaligned(as: Float8.self)
    }
    @inline(__always) func load4(_ offset: Int = 0) -> Float4 {
        UnsafeRawPointer(self + offset).loadUnaligned(as: Float4.self)
    }
    @inline(__always) func load16(_ offset: Int = 0) -> SIMD16<Float> {
        UnsafeRawPointer(self + offset).loadUnaligned(as: SIMD16<Float>.self)
    }
}

extension UnsafeMutablePointer where Pointee == Float {
    @inline(__always) func load4(_ offset: Int = 0) -> Float4 {
        UnsafeRawPointer(self + offset).loadUnaligned(as: Float4.self)
    }
    @inline(__always) func load8(_ offset: Int = 0) -> Float8 {
        UnsafeRawPointer(self + offset).loadUnaligned(as: Float8.self)
    }
    @inline(__always) func store4(_ value: Float4, _ offset: Int = 0) {
        UnsafeMutableRawPointer(self + offset).storeBytes(of: value, as: Float4.self)
    }
    @inline(__always) func store8(_ value: Float8, _ offset: Int = 0) {
        UnsafeMutableRawPointer(self + offset).storeBytes(of: value, as: Float8.self)
    }
}

/// Sum of `count` floats with 8 independent lanes (a plain loop does not
/// vectorize: float addition is not reassociated without fast-math).
@inline(__always)
func vectorSum(_ x: UnsafePointer<Float>, _ count: Int) -> Float {
    var acc0 = Float8(), acc1 = Float8()
    var i = 0
    while i + 16 <= count {
        acc0 += x.load8(i)
        acc1 += x.load8(i + 8)
        i += 16
    }
    if i + 8 <= count {
        acc0 += x.load8(i)
        i += 8
    }
    var sum = (acc0 + acc1).sum()
    while i < count {
        sum += x[i]
        i += 1
    }
    return sum
}
