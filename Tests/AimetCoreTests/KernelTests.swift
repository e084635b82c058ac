import XCTest
import CKernels
@testable import AimetCore

/// The C kernels (Sources/CKernels) on every instruction set this processor
/// has, against the scalar formulas of `AdaRoundMath`, bit for bit.
final class KernelTests: XCTestCase {
    /// The buffers of a sweep.
    struct State: Equatable {
        var g, ch, rg, m, s, v, base, soft: [Float]

        init(count: Int, rng: inout TestRandom, n: Float) {
            g = rng.floats(count, -2, 2)
            ch = rng.floats(count, 0, 0.1)
            rg = rng.floats(count, -1e-3, 1e-3)
            m = rng.floats(count, -1e-2, 1e-2)
            s = rng.floats(count, 0, 1e-4)
            v = rng.floats(count, -4, 4)
            base = (0..<count).map { _ in (rng.uniform(-3, n + 3)).rounded(.down) }  // some outside [0, n]
            soft = rng.floats(count)
            // Whole 16-lane groups saturated (h ∈ {0, 1}: no rounding gradient), an exact
            // zero gradient and V on the clamp's edges.
            for e in 32..<64 where e < count { v[e] = e % 3 == 0 ? -9 : 7; g[e] = 0; m[e] = 0; s[e] = 0 }
            if count > 70 { v[66] = 0; v[67] = -logf(11); v[68] = logf(11) }
        }

        var bitPatterns: [[UInt32]] { [g, ch, rg, m, s, v, base, soft].map { $0.map(\.bitPattern) } }
    }

    /// `aimetk_adaround_sweep` in Swift, one lane at a time (`AdaRoundWeights`' formulas).
    func reference(_ st: inout State, _ k: aimetk_adaround_kernel, _ range: Range<Int>, _ flags: UInt32) {
        func has(_ f: Int) -> Bool { flags & UInt32(f) != 0 }
        func vmax(_ a: Float, _ b: Float) -> Float { a > b ? a : b }
        func vmin(_ a: Float, _ b: Float) -> Float { a < b ? a : b }
        let width = AdaRoundMath.zeta - AdaRoundMath.gamma
        var start = range.lowerBound
        while start < range.upperBound {
            let lanes = start..<min(start + 16, range.upperBound)
            var rg = [Float](repeating: 0, count: lanes.count)
            var anyGradient = lanes.count < 16  // missing lanes (V = 0) have dh ≠ 0
            for (j, e) in lanes.enumerated() {
                var vv = st.v[e]
                if has(AIMETK_UPDATE) {
                    var grad = st.g[e] * st.ch[e]
                    if has(AIMETK_READ_ROUND_GRAD) { grad = grad + st.rg[e] }
                    st.m[e] = st.m[e] + k.a1 * (grad - st.m[e])
                    st.s[e] = st.s[e] * k.b2 + k.a2 * grad * grad
                    vv = vv - k.step_size * (st.m[e] / (st.s[e].squareRoot() / k.root + k.eps))
                    st.v[e] = vv
                }
                guard has(AIMETK_PREPARE) else { continue }
                let sig = 1 / (1 + fastExp(-vv))
                let raw = sig * width + AdaRoundMath.gamma
                let h = vmin(vmax(raw, 0), 1)
                let dh: Float = raw == h ? width * sig * (1 - sig) : 0
                if dh != 0 { anyGradient = true }
                let u = 2 * h - 1
                let p = fastPow(Float(bitPattern: u.bitPattern & 0x7FFF_FFFF), k.pow_exponent)
                rg[j] = k.round_factor * Float(bitPattern: p.bitPattern ^ (u.bitPattern & 0x8000_0000)) * dh
                let t = st.base[e] + h
                let tc = vmin(vmax(t, 0), k.n)
                st.soft[e] = (tc + k.offset) * k.scale
                st.ch[e] = t == tc ? k.scale * dh : 0
            }
            if has(AIMETK_PREPARE) && (has(AIMETK_ROUND) || has(AIMETK_ZERO_ROUND_GRAD)) {
                let write = has(AIMETK_ROUND) && anyGradient
                for (j, e) in lanes.enumerated() { st.rg[e] = write ? rg[j] : 0 }
            }
            start += 16
        }
    }

    func sweep(_ st: inout State, _ k: aimetk_adaround_kernel, _ range: Range<Int>, _ flags: UInt32, _ isa: aimetk_isa) {
        var k = k
        st.g.withUnsafeMutableBufferPointer { g in st.ch.withUnsafeMutableBufferPointer { ch in
        st.rg.withUnsafeMutableBufferPointer { rg in st.m.withUnsafeMutableBufferPointer { m in
        st.s.withUnsafeMutableBufferPointer { s in st.v.withUnsafeMutableBufferPointer { v in
        st.base.withUnsafeMutableBufferPointer { base in st.soft.withUnsafeMutableBufferPointer { soft in
            k.g = UnsafePointer(g.baseAddress!); k.ch = ch.baseAddress!; k.rg = rg.baseAddress!; k.m = m.baseAddress!
            k.s = s.baseAddress!; k.v = v.baseAddress!; k.base = UnsafePointer(base.baseAddress!); k.soft = soft.baseAddress!
            aimetk_adaround_sweep(&k, range.lowerBound, range.upperBound, flags, isa)
        } } } } } } } }
    }

    func testAdaRoundSweepMatchesTheScalarFormulasOnEveryInstructionSet() {
        let best = aimetk_best_isa()
        let isas = [AIMETK_ISA_BASELINE, AIMETK_ISA_AVX2, AIMETK_ISA_AVX512].filter { $0.rawValue <= best.rawValue }
        print("AdaRound sweep: instruction sets tested \(isas.map(\.rawValue)) (best \(best.rawValue))")
        let update = UInt32(AIMETK_UPDATE), prepare = UInt32(AIMETK_PREPARE), round = UInt32(AIMETK_ROUND)
        let readRG = UInt32(AIMETK_READ_ROUND_GRAD), zero = UInt32(AIMETK_ZERO_ROUND_GRAD)
        let flagSets: [UInt32] = [prepare, prepare | round, prepare | zero, update, update | readRG,
                                  update | prepare, update | prepare | round, update | readRG | prepare | round,
                                  update | readRG | prepare | zero]
        let adam = AdamSchedule()
        let (a1, b2, a2, eps) = adam.scalars
        var rng = TestRandom(23)
        for (bits, offset) in [(4, Float(-8)), (8, 0), (2, -1)] {
            let n = Float((1 << bits) - 1)
            for count in [16 * 9 + 5, 16 * 5, 11] {
                let initial = State(count: count, rng: &rng, n: n)
                for flags in flagSets {
                    for t in [1, 37] {
                        let (stepSize, root) = adam.corrections(step: t)
                        let beta = rng.uniform(2, 20)
                        let k = aimetk_adaround_kernel(g: nil, ch: nil, rg: nil, m: nil, s: nil, v: nil, base: nil, soft: nil,
                                                       a1: a1, b2: b2, a2: a2, eps: eps, step_size: stepSize, root: root,
                                                       scale: 0.037, offset: offset, n: n, pow_exponent: beta - 1,
                                                       round_factor: -2 * 0.01 * beta)
                        // A run starting mid-buffer, as a worker's share does.
                        let range = (count > 16 ? 3 : 0)..<count
                        var expected = initial
                        reference(&expected, k, range, flags)
                        for isa in isas {
                            var got = initial
                            sweep(&got, k, range, flags, isa)
                            let names = ["g", "ch", "rg", "m", "s", "v", "base", "soft"]
                            for (name, (a, b)) in zip(names, zip(got.bitPatterns, expected.bitPatterns)) {
                                guard let e = a.indices.first(where: { a[$0] != b[$0] }) else { continue }
                                XCTFail("isa \(isa.rawValue), flags \(flags), count \(count), t \(t), \(bits) bits: " +
                                        "\(name)[\(e)] = \(Float(bitPattern: a[e])), expected \(Float(bitPattern: b[e]))")
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The worker pool behind `Parallel` (Sources/CKernels/pool.c).
final class ParallelTests: XCTestCase {
    /// Every index once, for many sizes and worker counts.
    func testForEachCoversEveryIndexOnce() {
        for count in [0, 1, 2, 3, 7, 64, 1001] {
            for workers in [1, 2, 3, 8] {
                let hits = UnsafeMutableBufferPointer<Int>.allocate(capacity: max(count, 1))
                hits.initialize(repeating: 0)
                defer { hits.deallocate() }
                let h = UncheckedSendable(hits)
                Parallel.forEach(count, workers: workers) { range, w in
                    XCTAssertLessThan(w, max(1, min(workers, count)))
                    for i in range { h.value[i] += 1 }
                }
                XCTAssertEqual(Array(hits.prefix(count)), Array(repeating: 1, count: count), "\(count) / \(workers)")
                hits.initialize(repeating: 0)
                Parallel.forEachItem(count, workers: workers) { i, _ in h.value[i] += 1 }
                XCTAssertEqual(Array(hits.prefix(count)), Array(repeating: 1, count: count), "items \(count) / \(workers)")
            }
        }
    }

    /// A loop inside a loop, and loops from several threads at once (the pool
    /// takes one; the others run on libdispatch): all complete, all correct.
    func testNestedAndConcurrentLoops() {
        let threads = 4, count = 200
        let sums = UnsafeMutableBufferPointer<Int>.allocate(capacity: threads)
        sums.initialize(repeating: 0)
        defer { sums.deallocate() }
        let s = UncheckedSendable(sums)
        DispatchQueue.concurrentPerform(iterations: threads) { t in
            for _ in 0..<50 {
                let inner = UnsafeMutableBufferPointer<Int>.allocate(capacity: count * 3)
                inner.initialize(repeating: 0)
                let p = UncheckedSendable(inner)
                Parallel.forEach(count, workers: 2) { range, _ in
                    for i in range {
                        Parallel.forEach(3, workers: 2) { r, _ in for j in r { p.value[i * 3 + j] += 1 } }
                    }
                }
                s.value[t] += inner.reduce(0, +)
                inner.deallocate()
            }
        }
        XCTAssertEqual(Array(sums), Array(repeating: 50 * count * 3, count: threads))
    }

    /// Worker w of a pool job is always the same thread (its cache keeps its share).
    func testWorkerKeepsItsThread() throws {
        try XCTSkipIf(Parallel.processorCount < 2, "one processor")
        var seen = Set<UInt>()
        for _ in 0..<100 {
            let ids = UnsafeMutableBufferPointer<UInt>.allocate(capacity: 2)
            let p = UncheckedSendable(ids)
            Parallel.forEach(2, workers: 2) { _, w in p.value[w] = UInt(pthread_self()) }
            XCTAssertNotEqual(ids[0], ids[1])
            seen.insert(ids[1])
            ids.deallocate()
        }
        XCTAssertEqual(seen.count, 1)
    }
}
