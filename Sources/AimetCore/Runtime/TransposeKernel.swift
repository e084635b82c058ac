/// ONNX Transpose: `y[i_0, …, i_{r-1}] = x[j]` with `j[perm[k]] = i_k`, i.e.
/// output axis `k` is input axis `perm[k]` (`perm` defaults to the reversed
/// axes). Any element type: an int64 element is moved as its two slots.
///
/// The copy itself is `Permutation.copy`, shared with DepthToSpace and
/// SpaceToDepth (which are a reshape, a transpose and a reshape).
final class TransposeKernel: Kernel {
    /// nil: reverse the axes.
    let perm: [Int]?
    /// Slots per element of the input's type (2 for int64).
    let slots: Int

    init(perm: [Int]?, type: ElementType) throws {
        if let perm {
            guard Set(perm) == Set(0..<perm.count) else {
                throw AimetError.invalid("perm \(perm) is not a permutation of 0..<\(perm.count)")
            }
        }
        self.perm = perm
        slots = type.slots
    }

    func permutation(rank: Int) throws -> [Int] {
        guard let perm else { return Array((0..<rank).reversed()) }
        guard perm.count == rank else { throw AimetError.shape("perm \(perm) does not fit an input of rank \(rank)") }
        return perm
    }

    func outputType(_ types: [ElementType]) throws -> ElementType { types[0] }

    func outputShape(_ shapes: [[Int]]) throws -> [Int] {
        try permutation(rank: shapes[0].count).map { shapes[0][$0] }
    }

    /// Separable when axis 0 stays axis 0 (a rank-0 or rank-1 transpose is the identity).
    func isBatchSeparable(_ shapes: [[Int]]) -> Bool {
        guard let p = try? permutation(rank: shapes[0].count) else { return false }
        return p.isEmpty || p[0] == 0
    }

    func run(_ args: KernelArgs) throws {
        let shape = args.shapes[0]
        let p = try permutation(rank: shape.count)
        Permutation.copy(args.inputs[0], args.output, shape: shape, perm: p, slotsPerElement: slots, workers: args.workers)
    }
}

/// A strided copy that permutes axes, for the kernels that move data.
enum Permutation {
    /// Writes `x` (shape `shape`, elements of `slotsPerElement` floats)
    /// transposed by `perm` into `y`.
    ///
    /// The problem is simplified first: size-1 axes are dropped, and input
    /// axes that stay adjacent and in order in the output are merged (an
    /// element's slots become one more such axis). Then either the input's
    /// last axis stays last, and the output is a sequence of contiguous runs
    /// copied whole, or it moves, and each 2-D plane (input last axis ×
    /// output last axis) is transposed in square tiles that stay in L1.
    static func copy(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, shape: [Int], perm: [Int],
                     slotsPerElement: Int, workers: Int) {
        var dims = shape, order = perm
        if slotsPerElement > 1 {
            dims.append(slotsPerElement)
            order.append(shape.count)
        }
        let total = dims.reduce(1, *)
        guard total > 0 else { return }
        (dims, order) = simplify(dims, order)
        let rank = dims.count
        if rank <= 1 {
            y.update(from: x, count: total)
            return
        }
        var inStride = [Int](repeating: 1, count: rank)
        for k in stride(from: rank - 2, through: 0, by: -1) { inStride[k] = inStride[k + 1] * dims[k + 1] }
        let outDims = order.map { dims[$0] }
        var outStride = [Int](repeating: 1, count: rank)
        for k in stride(from: rank - 2, through: 0, by: -1) { outStride[k] = outStride[k + 1] * outDims[k + 1] }
        // The input stride of each output axis.
        let srcStride = order.map { inStride[$0] }
        let parallel = total >= 1 << 15 ? workers : 1

        if order[rank - 1] == rank - 1 {
            // Runs of the last axis, in output order; the other output axes are walked as an odometer.
            let run = dims[rank - 1]
            let outer = total / run
            let axes = rank - 1
            Parallel.forEach(outer, workers: parallel) { range, _ in
                var index = [Int](repeating: 0, count: axes)
                var rest = range.lowerBound, src = 0
                for k in stride(from: axes - 1, through: 0, by: -1) {
                    index[k] = rest % outDims[k]
                    rest /= outDims[k]
                    src += index[k] * srcStride[k]
                }
                var dst = y + range.lowerBound * run
                for _ in range {
                    dst.update(from: x + src, count: run)
                    dst += run
                    var k = axes - 1
                    while k >= 0 {
                        index[k] += 1
                        src += srcStride[k]
                        if index[k] < outDims[k] { break }
                        src -= index[k] * srcStride[k]
                        index[k] = 0
                        k -= 1
                    }
                }
            }
            return
        }

        // Plane: rows along the input's last axis (output axis q), columns along output axis rank-1.
        let q = order.firstIndex(of: rank - 1) ?? 0
        let rows = dims[rank - 1], cols = outDims[rank - 1]
        let rowOut = outStride[q], colIn = srcStride[rank - 1]
        let others = (0..<rank).filter { $0 != q && $0 != rank - 1 }
        let planes = total / (rows * cols)
        let tile = 32
        let rowTiles = (rows + tile - 1) / tile
        Parallel.forEach(planes * rowTiles, workers: parallel) { range, _ in
            for item in range {
                let planeIndex = item / rowTiles, r0 = (item % rowTiles) * tile
                var rest = planeIndex, src = 0, dst = 0
                for k in others.reversed() {
                    let i = rest % outDims[k]
                    rest /= outDims[k]
                    src += i * srcStride[k]
                    dst += i * outStride[k]
                }
                let r1 = min(r0 + tile, rows)
                let plane = x + src, target = y + dst
                var c0 = 0
                while c0 < cols {
                    let c1 = min(c0 + tile, cols)
                    // 8×8 blocks through registers: eight loads along the input's last axis, eight stores along the output's.
                    var r = r0
                    while r + 8 <= r1 {
                        var c = c0
                        while c + 8 <= c1 {
                            transpose8x8(plane + c &* colIn + r, colIn, target + r &* rowOut + c, rowOut)
                            c += 8
                        }
                        for k in r..<(r + 8) {
                            let out = target + k &* rowOut, inp = plane + k
                            for j in c..<c1 { out[j] = inp[j &* colIn] }
                        }
                        r += 8
                    }
                    for k in r..<r1 {
                        let out = target + k &* rowOut, inp = plane + k
                        for j in c0..<c1 { out[j] = inp[j &* colIn] }
                    }
                    c0 = c1
                }
            }
        }
    }

    /// `b[j · bStride + i] = a[i · aStride + j]` for an 8×8 block.
    @inline(__always)
    static func transpose8x8(_ a: UnsafePointer<Float>, _ aStride: Int, _ b: UnsafeMutablePointer<Float>, _ bStride: Int) {
        let v0 = a.load8(), v1 = a.load8(aStride), v2 = a.load8(2 &* aStride), v3 = a.load8(3 &* aStride)
        let v4 = a.load8(4 &* aStride), v5 = a.load8(5 &* aStride), v6 = a.load8(6 &* aStride), v7 = a.load8(7 &* aStride)
        for j in 0..<8 {
            b.store8(Float8(v0[j], v1[j], v2[j], v3[j], v4[j], v5[j], v6[j], v7[j]), j &* bStride)
        }
    }

    /// Drops size-1 axes and merges input axes that stay adjacent and in order.
    static func simplify(_ dims: [Int], _ perm: [Int]) -> ([Int], [Int]) {
        // Output axes, by input axis, with size-1 axes dropped.
        let kept = perm.filter { dims[$0] != 1 }
        guard !kept.isEmpty else { return ([1], [0]) }
        // Groups of consecutive output axes whose input axes are consecutive.
        var groups: [[Int]] = []
        for a in kept {
            if let last = groups.last?.last, last + 1 == a || (a > last && (last + 1..<a).allSatisfy { dims[$0] == 1 }) {
                groups[groups.count - 1].append(a)
            } else {
                groups.append([a])
            }
        }
        // New input axes: the groups in input order.
        let byInput = groups.indices.sorted { groups[$0][0] < groups[$1][0] }
        var newIndex = [Int](repeating: 0, count: groups.count)
        for (position, g) in byInput.enumerated() { newIndex[g] = position }
        let newDims = byInput.map { groups[$0].reduce(1) { $0 * dims[$1] } }
        let newPerm = groups.indices.map { newIndex[$0] }
        return (newDims, newPerm)
    }
}
