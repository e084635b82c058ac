/// ONNX RotaryEmbedding (opset 23): rotates the first `R` features of every head
/// (`R = rotary_embedding_dim`, default the head size `D`) pairwise by
/// position-dependent angles:
///
///     y[i]     = cos[i]·x[i] − sin[i]·x[i + R/2]      y[i + R/2] = sin[i]·x[i] + cos[i]·x[i + R/2]     (i < R/2)
///
/// (`interleaved`: the pairs are `x[2i]`, `x[2i+1]`), `y = x` beyond `R`. X is
/// `[B, H, S, D]` or `[B, S, H·D]` (3-D, with `num_heads`); the cos/sin rows are
/// `cache[position_ids[b, s]]` (caches `[max_position + 1, R/2]`) or, without
/// `position_ids`, `cache[b, s]` (caches `[B, S, R/2]`). A position outside the
/// cache is refused when the run reads it.
final class RotaryEmbeddingKernel: Kernel {
    let numHeads: Int?
    let rotaryDim: Int?
    let interleaved: Bool
    let hasPositions: Bool
    /// Whether the caches are constants (for the batch split).
    let constantCaches: Bool
    /// "node 'n' (RotaryEmbedding)", for the errors of a run.
    let what: String

    init(what: String, numHeads: Int?, rotaryDim: Int?, interleaved: Bool, hasPositions: Bool, constantCaches: Bool) {
        self.what = what
        self.numHeads = numHeads
        self.rotaryDim = rotaryDim
        self.interleaved = interleaved
        self.hasPositions = hasPositions
        self.constantCaches = constantCaches
    }

    struct Dims { var b: Int, h: Int, s: Int, d: Int, r: Int, threeD: Bool }

    func dims(_ shapes: [[Int]]) throws -> Dims {
        let x = shapes[0]
        var dims: Dims
        switch x.count {
        case 4: dims = Dims(b: x[0], h: x[1], s: x[2], d: x[3], r: 0, threeD: false)
        case 3:
            guard let h = numHeads, h > 0, x[2] % h == 0 else {
                throw AimetError.shape("a 3-D input \(x) needs num_heads dividing its hidden size")
            }
            dims = Dims(b: x[0], h: h, s: x[1], d: x[2] / h, r: 0, threeD: true)
        default: throw AimetError.shape("input \(x) must be 3-D or 4-D")
        }
        dims.r = (rotaryDim ?? 0) == 0 ? dims.d : rotaryDim ?? dims.d
        guard dims.r > 0, dims.r % 2 == 0, dims.r <= dims.d else {
            throw AimetError.shape("rotary_embedding_dim \(dims.r) must be even, positive and at most the head size \(dims.d)")
        }
        let half = dims.r / 2
        for cache in [shapes[1], shapes[2]] {
            if hasPositions {
                guard cache.count == 2, cache[1] == half, cache[0] > 0 else {
                    throw AimetError.shape("cos/sin cache \(cache) must be [max_position + 1, \(half)] with position_ids")
                }
            } else {
                guard cache == [dims.b, dims.s, half] else {
                    throw AimetError.shape("cos/sin cache \(cache) must be [\(dims.b), \(dims.s), \(half)] without position_ids")
                }
            }
        }
        guard shapes[1] == shapes[2] else { throw AimetError.shape("cos cache \(shapes[1]) and sin cache \(shapes[2]) differ") }
        if hasPositions, shapes[3] != [dims.b, dims.s] {
            throw AimetError.shape("position_ids \(shapes[3]) must be [\(dims.b), \(dims.s)]")
        }
        return dims
    }

    func outputType(_ types: [ElementType]) throws -> ElementType {
        for (k, type) in types.enumerated() where type != (k == 3 ? .int64 : .float32) {
            throw AimetError.unsupported("operand \(k) is \(type); expected \(k == 3 ? "int64 position ids" : "float32")")
        }
        return .float32
    }

    func outputShape(_ shapes: [[Int]]) throws -> [Int] {
        _ = try dims(shapes)
        return shapes[0]
    }

    /// X and position_ids split with the batch; caches indexed by position must be
    /// constants, per-item caches (no position_ids) computed.
    func isBatchSeparable(_ shapes: [[Int]]) -> Bool { hasPositions == constantCaches }

    func run(_ args: KernelArgs) throws {
        let d = try dims(args.shapes)
        let x = args.inputs[0], cosCache = args.inputs[1], sinCache = args.inputs[2], y = args.output
        let half = d.r / 2
        // The cache row of each (b, s).
        var rows = [Int](repeating: 0, count: d.b * d.s)
        if hasPositions {
            let positions = Int64Pointer(args.inputs[3]), limit = args.shapes[1][0]
            for i in rows.indices {
                let p = positions[i]
                guard p >= 0, p < Int64(limit) else {
                    throw AimetError.shape("\(what): position id \(p) at index \(i) is outside the cos/sin cache of \(limit) positions")
                }
                rows[i] = Int(p)
            }
        } else {
            for i in rows.indices { rows[i] = i }
        }
        Parallel.forEach(d.b * d.s, workers: d.b * d.s * d.h * d.d >= 1 << 16 ? args.workers : 1) { range, _ in
            for bs in range {
                let b = bs / d.s, s = bs % d.s
                let c = cosCache + rows[bs] * half, sn = sinCache + rows[bs] * half
                for h in 0..<d.h {
                    let offset = d.threeD ? (bs * d.h + h) * d.d : ((b * d.h + h) * d.s + s) * d.d
                    let xr = x + offset, yr = y + offset
                    if interleaved {
                        for i in 0..<half {
                            let x1 = xr[2 * i], x2 = xr[2 * i + 1]
                            yr[2 * i] = c[i] * x1 - sn[i] * x2
                            yr[2 * i + 1] = sn[i] * x1 + c[i] * x2
                        }
                    } else {
                        for i in 0..<half {
                            let x1 = xr[i], x2 = xr[i + half]
                            yr[i] = c[i] * x1 - sn[i] * x2
                            yr[i + half] = sn[i] * x1 + c[i] * x2
                        }
                    }
                    if d.r < d.d { (yr + d.r).update(from: xr + d.r, count: d.d - d.r) }
                }
            }
        }
    }
}
