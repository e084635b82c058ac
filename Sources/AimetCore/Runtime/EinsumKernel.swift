/// ONNX Einsum with two operands whose equation is a batched matrix product
/// (the forms exporters emit: `bij,bjk->bik`, `bhid,bhjd->bhij`, `ij,jk`,
/// `bi,bi->b`, `...ij,...jk->...ik`, transposed operands, implicit output).
/// Every subscript falls in one class:
///
///     batch  (in A, B and Y)     m (in A and Y)     n (in B and Y)     k (in A and B, summed)
///     Y[batch, m, n] = Σ_k A[batch, m, k] · B[batch, k, n]
///
/// With the subscripts of each class flattened (M = Π m sizes, ...) this is one
/// `sgemm` per batch item, the items shared out over the workers. An operand
/// already laid out as `[batch, m, k]` / `[batch, k, m]` (B: `[batch, k, n]` /
/// `[batch, n, k]`) is read in place (the latter as transposed), otherwise it is
/// first permuted into that layout; the output is written in place when its
/// subscripts read `batch, m, n`, else permuted from a buffer. A batch subscript
/// of size 1 in one operand broadcasts (numpy rules, as for `...`).
///
/// Implicit output (no `->`): the subscripts used once, in alphabetical order,
/// after the `...` dimensions. Refused at compile time, naming the equation:
/// other operand counts, a subscript repeated within one term (diagonals), a
/// subscript summed within one operand only, `...` dimensions summed.
final class EinsumKernel: Kernel {
    /// The subscripts of one term; `ellipsis` is the position of `...` among them.
    struct Term: Sendable {
        var letters: [Int]
        var ellipsis: Int?
    }

    let equation: String
    let a: Term, b: Term
    /// nil: implicit output.
    let output: Term?
    let constantA: Bool, constantB: Bool

    init(equation: String, what: String, constantA: Bool, constantB: Bool, operands: Int) throws {
        let refuse = { (why: String) in AimetError.unsupported("\(what): equation '\(equation)' is not supported (\(why))") }
        guard operands == 2 else {
            throw refuse("\(operands) operands; the executor runs two-operand Einsum as a batched matrix product")
        }
        let text = equation.filter { !$0.isWhitespace }
        let sides = text.components(separatedBy: "->")
        guard sides.count <= 2 else { throw AimetError.invalid("\(what): equation '\(equation)' has more than one '->'") }
        let terms = sides[0].components(separatedBy: ",")
        guard terms.count == 2 else {
            throw AimetError.invalid("\(what): equation '\(equation)' has \(terms.count) input terms for 2 operands")
        }
        func parse(_ term: String) throws -> Term {
            var letters: [Int] = [], ellipsis: Int?
            var rest = Substring(term)
            while let c = rest.first {
                if rest.hasPrefix("...") {
                    guard ellipsis == nil else { throw AimetError.invalid("\(what): equation '\(equation)' has '...' twice in one term") }
                    ellipsis = letters.count
                    rest = rest.dropFirst(3)
                    continue
                }
                guard let ascii = c.asciiValue, c.isLetter else {
                    throw AimetError.invalid("\(what): equation '\(equation)' has the character '\(c)' (subscripts are letters)")
                }
                guard !letters.contains(Int(ascii)) else {
                    throw refuse("subscript '\(c)' repeats within a term: a diagonal")
                }
                letters.append(Int(ascii))
                rest = rest.dropFirst()
            }
            return Term(letters: letters, ellipsis: ellipsis)
        }
        let a = try parse(terms[0]), b = try parse(terms[1])
        let output = sides.count == 2 ? try parse(sides[1]) : nil
        if let output {
            for letter in output.letters where !a.letters.contains(letter) && !b.letters.contains(letter) {
                throw AimetError.invalid("\(what): equation '\(equation)': output subscript '\(Character(Unicode.Scalar(UInt8(letter))))' is in no input")
            }
            for letter in a.letters + b.letters where !output.letters.contains(letter) && !(a.letters.contains(letter) && b.letters.contains(letter)) {
                throw refuse("subscript '\(Character(Unicode.Scalar(UInt8(letter))))' is summed within one operand")
            }
            if output.ellipsis == nil && (a.ellipsis != nil || b.ellipsis != nil) {
                throw refuse("the '...' dimensions are summed")
            }
            if output.ellipsis != nil && a.ellipsis == nil && b.ellipsis == nil {
                throw AimetError.invalid("\(what): equation '\(equation)' has '...' in the output only")
            }
        }
        self.equation = equation
        self.a = a
        self.b = b
        self.output = output
        self.constantA = constantA
        self.constantB = constantB
    }

    /// Subscript ids of `...` dimensions: `ellipsisBase + j` for the j-th of the broadcast `...` dimensions.
    private static let ellipsisBase = 1000

    /// The product as resolved for the operands' shapes.
    struct Plan {
        /// The subscript ids of A, B and Y, `...` expanded.
        var aIDs: [Int], bIDs: [Int], yIDs: [Int]
        var size: [Int: Int]
        var batch: [Int], m: [Int], n: [Int], k: [Int]
        var yShape: [Int]
        var mCount: Int, nCount: Int, kCount: Int
        /// A's layout `[batch, m, k]` read in place / as `[batch, k, m]` (transposed); nil: permute.
        var aInPlace: Bool?
        var bInPlace: Bool?
        var yInPlace: Bool
    }

    func plan(_ aShape: [Int], _ bShape: [Int]) throws -> Plan {
        func expand(_ term: Term, _ shape: [Int], _ name: String) throws -> [Int] {
            guard let e = term.ellipsis else {
                guard shape.count == term.letters.count else {
                    throw AimetError.shape("operand \(name) of shape \(shape) has rank \(shape.count); '\(equation)' gives it \(term.letters.count) subscripts")
                }
                return term.letters
            }
            let extra = shape.count - term.letters.count
            guard extra >= 0 else {
                throw AimetError.shape("operand \(name) of shape \(shape) has fewer axes than the \(term.letters.count) subscripts of '\(equation)'")
            }
            return Array(term.letters[..<e]) + (0..<extra).map { -1 - $0 } + Array(term.letters[e...])
        }
        var aIDs = try expand(a, aShape, "A"), bIDs = try expand(b, bShape, "B")
        // `...` dimensions right-aligned across the operands: id ellipsisBase + j, j < the longest `...`.
        let ea = aIDs.filter { $0 < 0 }.count, eb = bIDs.filter { $0 < 0 }.count, ellipsisRank = max(ea, eb)
        aIDs = aIDs.map { $0 < 0 ? EinsumKernel.ellipsisBase + ellipsisRank - ea + (-1 - $0) : $0 }
        bIDs = bIDs.map { $0 < 0 ? EinsumKernel.ellipsisBase + ellipsisRank - eb + (-1 - $0) : $0 }
        let ellipsisIDs = (0..<ellipsisRank).map { EinsumKernel.ellipsisBase + $0 }
        var yIDs: [Int]
        if let output {
            yIDs = output.letters
            if let e = output.ellipsis { yIDs.insert(contentsOf: ellipsisIDs, at: e) }
        } else {
            let letters = (a.letters + b.letters).filter { l in (a.letters + b.letters).filter { $0 == l }.count == 1 }
            yIDs = ellipsisIDs + letters.sorted()
        }
        var size: [Int: Int] = [:]
        for (ids, shape, name) in [(aIDs, aShape, "A"), (bIDs, bShape, "B")] {
            for (id, dim) in zip(ids, shape) {
                if let known = size[id], known != dim {
                    // A batch subscript broadcasts a 1; any other must agree.
                    guard yIDs.contains(id), known == 1 || dim == 1 else {
                        throw AimetError.shape("operand \(name) of shape \(shape): a subscript of '\(equation)' has size \(dim) here and \(known) in A")
                    }
                    size[id] = max(known, dim)
                } else if size[id] == nil {
                    size[id] = dim
                }
            }
        }
        let batch = yIDs.filter { aIDs.contains($0) && bIDs.contains($0) }
        let m = yIDs.filter { aIDs.contains($0) && !bIDs.contains($0) }
        let n = yIDs.filter { bIDs.contains($0) && !aIDs.contains($0) }
        let k = aIDs.filter { bIDs.contains($0) && !yIDs.contains($0) }
        let yShape = yIDs.map { size[$0] ?? 1 }
        _ = try Shapes.count(yShape)
        func product(_ ids: [Int]) throws -> Int { try Shapes.count(ids.map { size[$0] ?? 1 }) }
        let mCount = try product(m), nCount = try product(n), kCount = try product(k)
        guard max(mCount, nCount, kCount) < BLAS.maxDimension else {
            throw AimetError.shape("A \(aShape) or B \(bShape) is too large")
        }
        _ = try Shapes.count(aShape)
        _ = try Shapes.count(bShape)
        func layout(_ ids: [Int], _ first: [Int], _ second: [Int]) -> Bool? {
            if ids == batch + first + second { return true }
            if ids == batch + second + first { return false }
            return nil
        }
        return Plan(aIDs: aIDs, bIDs: bIDs, yIDs: yIDs, size: size, batch: batch, m: m, n: n, k: k, yShape: yShape,
                    mCount: mCount, nCount: nCount, kCount: kCount,
                    aInPlace: layout(aIDs, m, k), bInPlace: layout(bIDs, k, n), yInPlace: yIDs == batch + m + n)
    }

    func outputShape(_ shapes: [[Int]]) throws -> [Int] {
        try plan(shapes[0], shapes[1]).yShape
    }

    /// Item i of the output's axis 0 reads item i of an operand whose axis 0
    /// carries the same subscript; an operand without that subscript is read
    /// whole by every item and must be a constant (a computed one would be split).
    func isBatchSeparable(_ shapes: [[Int]]) -> Bool {
        guard let p = try? plan(shapes[0], shapes[1]), let first = p.yIDs.first else { return false }
        func fits(_ ids: [Int], _ constant: Bool) -> Bool { ids.first == first || (!ids.contains(first) && constant) }
        return fits(p.aIDs, constantA) && fits(p.bIDs, constantB)
    }

    func run(_ args: KernelArgs) throws {
        let p = try plan(args.shapes[0], args.shapes[1])
        let (mc, nc, kc) = (p.mCount, p.nCount, p.kCount)
        let batchSizes = p.batch.map { p.size[$0] ?? 1 }
        let items = batchSizes.reduce(1, *)
        // Each operand's own batch sizes (1 where it broadcasts), in the batch order.
        func ownBatch(_ ids: [Int], _ shape: [Int]) -> [Int] {
            p.batch.map { id in ids.firstIndex(of: id).map { shape[$0] } ?? 1 }
        }
        let aBatch = ownBatch(p.aIDs, args.shapes[0]), bBatch = ownBatch(p.bIDs, args.shapes[1])
        var aBuffer: [Float] = [], bBuffer: [Float] = [], yBuffer: [Float] = []
        if p.aInPlace == nil {
            aBuffer = EinsumKernel.permuted(args.inputs[0], args.shapes[0], order: (p.batch + p.m + p.k).map { id in p.aIDs.firstIndex(of: id) ?? 0 })
        }
        if p.bInPlace == nil {
            bBuffer = EinsumKernel.permuted(args.inputs[1], args.shapes[1], order: (p.batch + p.k + p.n).map { id in p.bIDs.firstIndex(of: id) ?? 0 })
        }
        if !p.yInPlace { yBuffer = [Float](repeating: 0, count: items * mc * nc) }
        let transA = p.aInPlace == false, transB = p.bInPlace == false
        let aStrides = BLAS.batchStrides(aBatch, rank: batchSizes.count, item: mc * kc)
        let bStrides = BLAS.batchStrides(bBatch, rank: batchSizes.count, item: kc * nc)
        aBuffer.withUnsafeBufferPointer { ab in
            bBuffer.withUnsafeBufferPointer { bb in
                yBuffer.withUnsafeMutableBufferPointer { yb in
                    guard let pa = p.aInPlace == nil ? ab.baseAddress : args.inputs[0],
                          let pb = p.bInPlace == nil ? bb.baseAddress : args.inputs[1],
                          let y = p.yInPlace ? args.output : yb.baseAddress else {
                        // Only an empty buffer has no address: an empty operand (the sums are 0) or output.
                        args.output.update(repeating: 0, count: items * mc * nc)
                        return
                    }
                    let workers = items * mc * nc * max(kc, 1) >= 1 << 20 ? args.workers : 1
                    BLAS.sgemmBatch(batch: batchSizes, aStrides: aStrides, bStrides: bStrides, transA: transA, transB: transB,
                                    m: mc, n: nc, k: kc, a: pa, lda: transA ? mc : kc, b: pb, ldb: transB ? kc : nc,
                                    c: y, workers: workers)
                    if !p.yInPlace {
                        let canonical = p.batch + p.m + p.n
                        Permutation.copy(UnsafePointer(y), args.output, shape: canonical.map { p.size[$0] ?? 1 },
                                         perm: p.yIDs.map { id in canonical.firstIndex(of: id) ?? 0 }, slotsPerElement: 1,
                                         workers: 1)
                    }
                }
            }
        }
    }

    /// `x` (shape `shape`) with its axes reordered: axis i of the result is axis `order[i]` of `x`.
    static func permuted(_ x: UnsafePointer<Float>, _ shape: [Int], order: [Int]) -> [Float] {
        [Float](unsafeUninitializedCapacity: shape.reduce(1, *)) { buffer, initialized in
            if let base = buffer.baseAddress {
                Permutation.copy(x, base, shape: shape, perm: order, slotsPerElement: 1, workers: 1)
            }
            initialized = buffer.count
        }
    }
}
