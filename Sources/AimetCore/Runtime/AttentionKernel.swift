#if canImport(Glibc)
import Glibc
#endif

/// ONNX Attention (opset 23/24): scaled dot-product attention over heads.
///
/// Q is `[B, Hq, Lq, D]` or `[B, Lq, Hq·D]` (3-D, with `q_num_heads`), K
/// `[B, Hkv, Lkv, D]` / `[B, Lkv, Hkv·D]`, V `[B, Hkv, Lkv, Dv]` / `[B, Lkv, Hkv·Dv]`;
/// optional `past_key [B, Hkv, P, D]` and `past_value [B, Hkv, P, Dv]` go before
/// the new keys and values (`T = P + Lkv` keys in all). Query head `h` reads
/// key/value head `h / (Hq/Hkv)` (grouped-query attention). Per batch item and
/// query head, with `s = scale` (default `1/√D`):
///
///     S = s · Q_h · K_gᵀ                                   [Lq, T]
///     S = softcap · tanh(S / softcap)                      (softcap > 0)
///     S = S + bias                                         bias = mask + causal + padding
///     P = softmax(S) over T, a row whose bias is all −∞ → 0
///     Y_h = P · V_g
///
/// `bias[i, j]`: a float `attn_mask` (broadcast to `[B, Hq, Lq, ·]`) adds its
/// value, a boolean one 0 where true and −∞ where false; mask columns beyond its
/// last axis (shorter than T) are −∞. `is_causal`: −∞ where `j > i + offset`,
/// `offset = P` (or `nonpad_kv_seqlen[b] − Lq` with that input and no past).
/// `nonpad_kv_seqlen` (opset 24): −∞ where `j ≥ nonpad_kv_seqlen[b]`.
///
/// One kernel type computes each output of the node (`Output`): Y; present
/// key/value (`concat(past, K)` along the sequence axis, 4-D); the QK scores
/// `[B, Hq, Lq, T]` at `qk_matmul_output_mode` 0/1 (after the softcap — the
/// reference does not keep the product before it), 2 (with the bias) or 3 (after the softmax).
/// Per (batch item, head) two `sgemm`s (past and new keys) make S, two more
/// P·V; the items are shared out over the workers.
final class AttentionKernel: Kernel {
    enum Output: Sendable { case y, presentKey, presentValue, scores }

    let output: Output
    /// `q_num_heads`, `kv_num_heads` (3-D inputs).
    let qHeads: Int?
    let kvHeads: Int?
    let scale: Float?
    let softcap: Float
    let isCausal: Bool
    let scoresMode: Int
    /// Operand positions of the optional inputs (Q, K, V are 0, 1, 2; past value follows past key).
    let mask: Int?
    let past: Int?
    let nonpad: Int?
    /// A boolean mask (true: attend) rather than an additive float one.
    let maskIsBool: Bool
    /// Whether the mask and nonpad_kv_seqlen are constants (for the batch split).
    let constantMask: Bool
    let constantNonpad: Bool

    init(output: Output, qHeads: Int?, kvHeads: Int?, scale: Float?, softcap: Float, isCausal: Bool, scoresMode: Int,
         mask: Int?, maskIsBool: Bool, past: Int?, nonpad: Int?, constantMask: Bool, constantNonpad: Bool) {
        self.maskIsBool = maskIsBool
        self.output = output
        self.qHeads = qHeads
        self.kvHeads = kvHeads
        self.scale = scale
        self.softcap = softcap
        self.isCausal = isCausal
        self.scoresMode = scoresMode
        self.mask = mask
        self.past = past
        self.nonpad = nonpad
        self.constantMask = constantMask
        self.constantNonpad = constantNonpad
    }

    /// The sizes of one call.
    struct Dims {
        var b: Int, hq: Int, hkv: Int, lq: Int, lkv: Int, p: Int, d: Int, dv: Int
        var threeD: Bool
        var t: Int { p + lkv }
    }

    func dims(_ shapes: [[Int]]) throws -> Dims {
        let q = shapes[0], k = shapes[1], v = shapes[2]
        guard (q.count == 3 || q.count == 4), k.count == q.count, v.count == q.count else {
            throw AimetError.shape("Q \(q), K \(k) and V \(v) must all be 3-D or all 4-D")
        }
        var dims: Dims
        if q.count == 4 {
            dims = Dims(b: q[0], hq: q[1], hkv: k[1], lq: q[2], lkv: k[2], p: 0, d: q[3], dv: v[3], threeD: false)
            guard k[3] == q[3], v[1] == k[1], v[2] == k[2] else {
                throw AimetError.shape("Q \(q), K \(k), V \(v): K needs Q's head size, V K's heads and sequence length")
            }
        } else {
            guard let hq = qHeads, let hkv = kvHeads, hq > 0, hkv > 0 else {
                throw AimetError.invalid("3-D Q, K, V need the q_num_heads and kv_num_heads attributes (positive)")
            }
            guard q[2] % hq == 0, k[2] % hkv == 0, v[2] % hkv == 0, k[2] / hkv == q[2] / hq, v[1] == k[1] else {
                throw AimetError.shape("Q \(q), K \(k), V \(v) do not split into \(hq) query and \(hkv) key/value heads of one head size")
            }
            dims = Dims(b: q[0], hq: hq, hkv: hkv, lq: q[1], lkv: k[1], p: 0, d: q[2] / hq, dv: v[2] / hkv, threeD: true)
        }
        guard k[0] == dims.b, v[0] == dims.b else { throw AimetError.shape("Q \(q), K \(k), V \(v) differ in batch size") }
        guard dims.hkv > 0, dims.hq % dims.hkv == 0 else {
            throw AimetError.shape("\(dims.hq) query heads do not group over \(dims.hkv) key/value heads")
        }
        if let past {
            let pk = shapes[past], pv = shapes[past + 1]
            guard pk.count == 4, pv.count == 4, pk[0] == dims.b, pv[0] == dims.b, pk[1] == dims.hkv, pv[1] == dims.hkv,
                  pk[3] == dims.d, pv[3] == dims.dv, pk[2] == pv[2] else {
                throw AimetError.shape("past_key \(pk) / past_value \(pv) must be [\(dims.b), \(dims.hkv), P, \(dims.d)] / [\(dims.b), \(dims.hkv), P, \(dims.dv)]")
            }
            dims.p = pk[2]
        }
        if let mask {
            let m = shapes[mask]
            guard (1...4).contains(m.count), let last = m.last, last <= dims.t else {
                throw AimetError.shape("attn_mask \(m) must have 1 to 4 axes and at most \(dims.t) columns (the keys)")
            }
            let target = [dims.b, dims.hq, dims.lq]
            for (axis, size) in m.dropLast().enumerated() {
                let t = target[4 - m.count + axis]
                guard size == 1 || size == t else { throw AimetError.shape("attn_mask \(m) does not broadcast to [\(dims.b), \(dims.hq), \(dims.lq), \(dims.t)]") }
            }
        }
        if let nonpad {
            guard past == nil else { throw AimetError.invalid("nonpad_kv_seqlen cannot be combined with past_key / past_value") }
            guard shapes[nonpad] == [dims.b] else { throw AimetError.shape("nonpad_kv_seqlen \(shapes[nonpad]) must be [\(dims.b)]") }
        }
        for size in [dims.lq, dims.t, dims.d, dims.dv, dims.hq * dims.d, dims.hq * dims.dv] where size >= BLAS.maxDimension {
            throw AimetError.shape("Q \(q), K \(k), V \(v) are too large")
        }
        _ = try Shapes.count([dims.b, dims.hq, dims.lq, dims.t])
        return dims
    }

    func outputType(_ types: [ElementType]) throws -> ElementType {
        for (k, type) in types.enumerated() {
            let allowed: [ElementType] = k == mask ? [maskIsBool ? .bool : .float32] : k == nonpad ? [.int64] : [.float32]
            guard allowed.contains(type) else {
                throw AimetError.unsupported("operand \(k) is \(type); expected \(allowed.map { "\($0)" }.joined(separator: " or "))")
            }
        }
        return .float32
    }

    func outputShape(_ shapes: [[Int]]) throws -> [Int] {
        let d = try dims(shapes)
        switch output {
        case .y: return d.threeD ? [d.b, d.lq, d.hq * d.dv] : [d.b, d.hq, d.lq, d.dv]
        case .presentKey: return [d.b, d.hkv, d.t, d.d]
        case .presentValue: return [d.b, d.hkv, d.t, d.dv]
        case .scores: return [d.b, d.hq, d.lq, d.t]
        }
    }

    /// Every operand's axis 0 is the batch, except a mask without one (rank < 4
    /// or a leading 1), which all items read and must then be a constant; a
    /// batch-indexed constant mask or nonpad_kv_seqlen would not be split.
    func isBatchSeparable(_ shapes: [[Int]]) -> Bool {
        if let mask {
            let shared = shapes[mask].count < 4 || shapes[mask][0] == 1
            if shared != constantMask { return false }
        }
        return nonpad == nil || !constantNonpad
    }

    func run(_ args: KernelArgs) throws {
        let d = try dims(args.shapes)
        switch output {
        case .presentKey: present(args, d, cache: args.inputs[1], past: past.map { args.inputs[$0] }, width: d.d)
        case .presentValue: present(args, d, cache: args.inputs[2], past: past.map { args.inputs[$0 + 1] }, width: d.dv)
        case .y, .scores: attend(args, d)
        }
    }

    /// `concat(past, new)` along the sequence axis, the new rows taken from a 3-D or 4-D K / V.
    private func present(_ args: KernelArgs, _ d: Dims, cache: UnsafePointer<Float>, past: UnsafePointer<Float>?, width: Int) {
        let y = args.output
        for bi in 0..<d.b {
            for g in 0..<d.hkv {
                let out = y + (bi * d.hkv + g) * d.t * width
                if let past { out.update(from: past + (bi * d.hkv + g) * d.p * width, count: d.p * width) }
                for l in 0..<d.lkv {
                    let source = d.threeD ? cache + ((bi * d.lkv + l) * d.hkv + g) * width : cache + ((bi * d.hkv + g) * d.lkv + l) * width
                    (out + (d.p + l) * width).update(from: source, count: width)
                }
            }
        }
    }

    private func attend(_ args: KernelArgs, _ d: Dims) {
        let q = args.inputs[0], k = args.inputs[1], v = args.inputs[2], y = args.output
        let t = d.t, groupSize = d.hq / d.hkv
        let alpha = scale ?? 1 / Float(d.d).squareRoot()
        let pastKey = past.map { args.inputs[$0] }, pastValue = past.map { args.inputs[$0 + 1] }
        // The mask's strides over [B, Hq, Lq] (0 where it broadcasts) and its columns.
        var maskStrides = [0, 0, 0], maskColumns = 0
        if let mask {
            let shape = [Int](repeating: 1, count: 4 - args.shapes[mask].count) + args.shapes[mask]
            maskColumns = shape[3]
            var step = shape[3]
            for axis in stride(from: 2, through: 0, by: -1) {
                maskStrides[axis] = shape[axis] == 1 ? 0 : step
                step *= shape[axis]
            }
        }
        let validKeys: [Int]? = nonpad.map { n in (0..<d.b).map { Int(Int64Pointer(args.inputs[n])[$0]) } }
        let work = d.b * d.hq * d.lq * t * max(d.d, d.dv)
        Parallel.forEach(d.b * d.hq, workers: work >= 1 << 18 ? args.workers : 1) { items, worker in
            let scores = args.workspaces[worker].floats(d.lq * t, slot: 0)
            let bias = args.workspaces[worker].floats(t, slot: 1)
            for item in items {
                let bi = item / d.hq, h = item % d.hq, g = h / groupSize
                let qh = d.threeD ? q + bi * d.lq * d.hq * d.d + h * d.d : q + item * d.lq * d.d
                let lda = d.threeD ? d.hq * d.d : d.d
                if let pastKey {
                    BLAS.sgemm(transB: true, m: d.lq, n: d.p, k: d.d, alpha: alpha, a: qh, lda: lda,
                               b: pastKey + (bi * d.hkv + g) * d.p * d.d, ldb: d.d, c: scores, ldc: t)
                }
                let kh = d.threeD ? k + bi * d.lkv * d.hkv * d.d + g * d.d : k + (bi * d.hkv + g) * d.lkv * d.d
                BLAS.sgemm(transB: true, m: d.lq, n: d.lkv, k: d.d, alpha: alpha, a: qh, lda: lda,
                           b: kh, ldb: d.threeD ? d.hkv * d.d : d.d, c: scores + d.p, ldc: t)
                if softcap > 0 {
                    for j in 0..<(d.lq * t) { scores[j] = softcap * tanhf(scores[j] / softcap) }
                }
                let scoresOut = y + item * d.lq * t
                if output == .scores && scoresMode <= 1 {
                    scoresOut.update(from: scores, count: d.lq * t)
                    continue
                }
                let offset = validKeys.map { $0[bi] - d.lq } ?? d.p
                for i in 0..<d.lq {
                    // The bias row: mask (columns past its last axis: −∞), causal frontier, padding.
                    var allMasked = true
                    let maskRow = mask.map { args.inputs[$0] + (bi * maskStrides[0] + h * maskStrides[1] + i * maskStrides[2]) }
                    for j in 0..<t {
                        var b: Float = 0
                        if let maskRow {
                            if j >= maskColumns { b = -.infinity } else if maskIsBool { b = maskRow[j] != 0 ? 0 : -.infinity } else { b = maskRow[j] }
                        }
                        if isCausal && j > i + offset { b = -.infinity }
                        if let validKeys, j >= validKeys[bi] { b = -.infinity }
                        bias[j] = b
                        if b != -.infinity { allMasked = false }
                    }
                    let row = scores + i * t
                    for j in 0..<t { row[j] += bias[j] }
                    if output == .scores && scoresMode == 2 { continue }
                    if allMasked {
                        row.update(repeating: 0, count: t)
                        continue
                    }
                    var top = -Float.infinity
                    for j in 0..<t { top = max(top, row[j]) }
                    var sum: Float = 0
                    for j in 0..<t {
                        let e = expf(row[j] - top)
                        row[j] = e
                        sum += e
                    }
                    let inverse = 1 / sum
                    for j in 0..<t { row[j] *= inverse }
                }
                if output == .scores {
                    scoresOut.update(from: scores, count: d.lq * t)
                    continue
                }
                let yh = d.threeD ? y + bi * d.lq * d.hq * d.dv + h * d.dv : y + item * d.lq * d.dv
                let ldy = d.threeD ? d.hq * d.dv : d.dv
                if let pastValue {
                    BLAS.sgemm(m: d.lq, n: d.dv, k: d.p, a: scores, lda: t, b: pastValue + (bi * d.hkv + g) * d.p * d.dv, ldb: d.dv,
                               c: yh, ldc: ldy)
                }
                let vh = d.threeD ? v + bi * d.lkv * d.hkv * d.dv + g * d.dv : v + (bi * d.hkv + g) * d.lkv * d.dv
                BLAS.sgemm(m: d.lq, n: d.dv, k: d.lkv, a: scores + d.p, lda: t, b: vh, ldb: d.threeD ? d.hkv * d.dv : d.dv,
                           beta: pastValue == nil ? 0 : 1, c: yh, ldc: ldy)
            }
        }
    }
}
