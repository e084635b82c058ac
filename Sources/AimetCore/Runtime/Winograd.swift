/// 3×3 stride-1 convolution by Winograd's minimal filtering F(4×4, 3×3)
/// (Lavin & Gray 2015): each 4×4 output tile comes from a 6×6 input tile d as
///
///     Y = Aᵀ [ Σ_c (G g_c Gᵀ) ⊙ (Bᵀ d_c B) ] A
///
/// with the interpolation points 0, ±1, ±2, ∞:
///
///     Bᵀ = [4 0 −5 0 1 0; 0 −4 −4 1 1 0; 0 4 −4 −1 1 0; 0 −2 −1 2 1 0; 0 2 −1 −2 1 0; 0 4 0 −5 0 1]
///     G  = [¼ 0 0; −⅙ −⅙ −⅙; −⅙ ⅙ −⅙; 1⁄24 1⁄12 ⅙; 1⁄24 −1⁄12 ⅙; 0 0 1]
///     Aᵀ = [1 1 1 1 1 0; 0 1 −1 2 −2 0; 0 1 1 4 4 0; 0 1 −1 8 −8 1]
///
/// The sum over input channels, for each of the 36 positions ξ of the 6×6
/// transformed tile, is one GEMM `M_ξ[M, tiles] = U_ξ[M, C] · V_ξ[C, tiles]`:
/// 36 multiplies per tile and channel pair instead of 144, 4× fewer than
/// im2col + GEMM, with errors a few times those of direct summation (about
/// 1e-6 relative in float32). On resnet18 (batch 32) it takes 30% less CPU
/// time than F(2×2, 3×3), small planes (14×14, 7×7, whose tiles pad to
/// 16×16 and 8×8) included.
///
/// Tiles go through in blocks (`Blocking`), which are also what the workers
/// share out. The transforms run on 4 horizontally neighbouring tiles at
/// once (one SSE register, lane = tile): the input tiles' columns are a 4×4
/// transpose of loads from a zero-bordered copy of the input rows; the output
/// transform adds bias and residual, applies the activation and writes each
/// tile's 4 pixels of a row as one vector.
enum Winograd {
    /// `U[ξ][m][c] = (G g_{m,c} Gᵀ)[ξ]` for weights `[M, C, 3, 3]`.
    static func transformWeights(_ w: [Float], m: Int, c: Int) -> [Float] {
        var u = [Float](repeating: 0, count: 36 * m * c)
        /// `G v` for one 3-vector.
        func g(_ a: Double, _ b: Double, _ cc: Double) -> [Double] {
            [a / 4, -(a + b + cc) / 6, -(a - b + cc) / 6, a / 24 + b / 12 + cc / 6, a / 24 - b / 12 + cc / 6, cc]
        }
        for o in 0..<m {
            for i in 0..<c {
                let k = (0..<9).map { Double(w[(o * c + i) * 9 + $0]) }
                // t = G g (6×3, by columns), then U = t Gᵀ (6×6, by rows).
                let columns = (0..<3).map { col in g(k[col], k[3 + col], k[6 + col]) }
                for row in 0..<6 {
                    let values = g(columns[0][row], columns[1][row], columns[2][row])
                    for col in 0..<6 { u[((row * 6 + col) * m + o) * c + i] = Float(values[col]) }
                }
            }
        }
        return u
    }

    /// Whether the conv suits this path: 2-D 3×3, stride 1, dilation 1, one
    /// group, and enough channels for the 36 GEMMs to run well.
    static func suits(_ g: ConvGeometry, inChannels: Int, outChannels: Int, groups: Int) -> Bool {
        g.kH == 3 && g.kW == 3 && g.strideH == 1 && g.strideW == 1 && g.dilationH == 1 && g.dilationW == 1
            && groups == 1 && inChannels >= 16 && outChannels >= 16 && g.outH >= 2 && g.outW >= 2
    }

    /// How the tiles of `n` images go through in blocks: whole images per
    /// block (small planes) or equal runs of tile rows of one image. Blocks
    /// hold about 3 MB of transformed inputs and products (36·(C + M) floats
    /// per tile, 64 to 1024 tiles), and there are at least as many blocks as workers when the images allow
    /// (a single image is cut into row blocks).
    struct Blocking {
        let imagesPerBlock: Int
        let rowsPerBlock: Int
        let imageBlocks: Int
        let rowBlocks: Int
        let images: Int
        let tileRows: Int

        init(images n: Int, channels c: Int, outChannels m: Int, _ g: ConvGeometry, workers: Int) {
            let th = (g.outH + 3) / 4, tw = (g.outW + 3) / 4
            let tilesPerImage = th * tw
            let target = min(1024, max(64, 21_845 / (c + m)))
            var perBlock = tilesPerImage >= target ? 1 : max(1, target / tilesPerImage)
            var rowBlocks = tilesPerImage >= target ? (tilesPerImage + target - 1) / target : 1
            if (n + perBlock - 1) / perBlock * rowBlocks < workers {
                perBlock = max(1, n / workers)
                let imageBlocks = (n + perBlock - 1) / perBlock
                if imageBlocks * rowBlocks < workers { rowBlocks = min(th, (workers + imageBlocks - 1) / imageBlocks) }
            }
            let rowsPerBlock = (th + rowBlocks - 1) / rowBlocks
            imagesPerBlock = perBlock
            self.rowsPerBlock = rowsPerBlock
            self.rowBlocks = (th + rowsPerBlock - 1) / rowsPerBlock
            imageBlocks = (n + perBlock - 1) / perBlock
            images = n
            tileRows = th
        }

        var count: Int { imageBlocks * rowBlocks }

        /// The images and tile rows of block `i`.
        func block(_ i: Int) -> (images: Range<Int>, rows: Range<Int>) {
            let ib = i / rowBlocks, rb = i % rowBlocks
            let first = ib * imagesPerBlock, ty0 = rb * rowsPerBlock
            return (first..<min(images, first + imagesPerBlock), ty0..<min(tileRows, ty0 + rowsPerBlock))
        }
    }

    /// Computes blocks `blocks` of `y = act(conv(x) + bias + residual)`.
    ///
    /// Tiles are numbered row by row without padding (`ty·tw + tx`, images one
    /// after another). A transform handles 4 neighbouring tiles of one tile
    /// row; the last group of a row may spill up to 3 lanes into the next
    /// tiles, which are written (correctly) later — channels go outermost so
    /// that holds across images — or into slack at the end of each ξ's block.
    static func run(_ x: UnsafePointer<Float>, _ blocking: Blocking, blocks: Range<Int>, channels c: Int, _ g: ConvGeometry,
                    u: UnsafePointer<Float>, outChannels m: Int, bias: [Float], activation: Activation,
                    residual: UnsafePointer<Float>?, into y: UnsafeMutablePointer<Float>, workspace: Workspace) {
        let oh = g.outH, ow = g.outW
        let tw = (ow + 3) / 4
        let tw4 = (tw + 3) / 4 * 4
        // The loads of the last group of 4 tiles end at column 4·tw4 + 3.
        let padCols = 4 * tw4 + 4
        let padRows = 4 * blocking.rowsPerBlock + 2
        let maxTiles = blocking.imagesPerBlock * blocking.rowsPerBlock * tw
        let strideV = c * maxTiles + 4, strideM = m * maxTiles + 4
        let v = workspace.floats(36 * strideV, slot: 0)
        let product = workspace.floats(36 * strideM, slot: 1)
        let padded = workspace.floats(padRows * padCols, slot: Workspace.extraSlot)
        for b in blocks {
            let (images, tileRows) = blocking.block(b)
            let first = images.lowerBound, ty0 = tileRows.lowerBound
            let rows = tileRows.count
            let tiles = images.count * rows * tw
            // Input transform into V[ξ][c][tile] (ξ stride `strideV`).
            for ch in 0..<c {
                for image in images {
                    padRowsCopy(x + (image * c + ch) * g.inCount, g, firstRow: 4 * ty0 - g.padTop,
                                rows: 4 * rows + 2, into: padded, cols: padCols)
                    inputTransform(padded, cols: padCols, tileRows: rows, tw: tw,
                                   into: v + (ch * tiles + (image - first) * rows * tw), stride: strideV)
                }
            }
            // 36 GEMMs.
            for xi in 0..<36 {
                BLAS.sgemm(m: m, n: tiles, k: c, a: u + xi * m * c, lda: c, b: v + xi * strideV, ldb: tiles,
                           c: product + xi * strideM, ldc: tiles)
            }
            // Output transform with the epilogue.
            for image in images {
                let tileBase = (image - first) * rows * tw
                for o in 0..<m {
                    let plane = (image * m + o) * g.outCount
                    outputTransform(product + (o * tiles + tileBase), stride: strideM, tileRows: tileRows, tw: tw,
                                    oh: oh, ow: ow, bias: bias[o], activation: activation,
                                    residual: residual.map { $0 + plane }, into: y + plane)
                }
            }
        }
    }

    /// Rows `firstRow ..< firstRow + rows` of one input plane with `padLeft`
    /// zero columns in front, zeros outside the plane, `cols` columns.
    @inline(__always)
    private static func padRowsCopy(_ plane: UnsafePointer<Float>, _ g: ConvGeometry, firstRow: Int, rows: Int,
                                    into dst: UnsafeMutablePointer<Float>, cols: Int) {
        let pl = min(g.padLeft, cols)
        let count = max(0, min(g.inW, cols - pl))
        for r in 0..<rows {
            let row = dst + r * cols
            let iy = firstRow + r
            guard iy >= 0 && iy < g.inH && count > 0 else {
                row.update(repeating: 0, count: cols)
                continue
            }
            if pl > 0 { row.update(repeating: 0, count: pl) }
            (row + pl).update(from: plane + iy * g.inW, count: count)
            if pl + count < cols { (row + (pl + count)).update(repeating: 0, count: cols - pl - count) }
        }
    }

    /// `Bᵀ v` for one 6-vector (of 4 tiles' lanes).
    @inline(__always)
    private static func bt(_ d: (Float4, Float4, Float4, Float4, Float4, Float4))
        -> (Float4, Float4, Float4, Float4, Float4, Float4) {
        let four = Float4(repeating: 4), five = Float4(repeating: 5), two = Float4(repeating: 2)
        let p = d.4 - d.2 * four, q = d.3 - d.1 * four          // rows 1, 2: d4 − 4d2 ∓ (4d1 − d3)
        let r = d.4 - d.2, t = (d.3 - d.1) * two                 // rows 3, 4: d4 − d2 ± 2(d3 − d1)
        return (d.0 * four - d.2 * five + d.4, p + q, p - q, r + t, r - t, d.1 * four - d.3 * five + d.5)
    }

    /// `V[ξ] = (Bᵀ d B)[ξ]` for the tiles of `tileRows` rows, 4 tiles at a time;
    /// tile `(ty, tx)` reads padded rows `4ty ..< 4ty + 6`, columns `4tx ..< 4tx + 6`.
    @inline(__always)
    private static func inputTransform(_ p: UnsafeMutablePointer<Float>, cols: Int, tileRows: Int, tw: Int,
                                       into v: UnsafeMutablePointer<Float>, stride: Int) {
        for ty in 0..<tileRows {
            var tx = 0
            while tx < tw {
                let out = v + (ty * tw + tx)
                /// Columns 0..<6 of the 4 tiles' patches in padded row `r` (lane j = tile tx + j), transformed by Bᵀ.
                @inline(__always) func row(_ r: Int) -> (Float4, Float4, Float4, Float4, Float4, Float4) {
                    let base = UnsafePointer(p + (4 * ty + r) * cols + 4 * tx)
                    let q0 = base.load4(0), q1 = base.load4(4), q2 = base.load4(8), q3 = base.load4(12), q4 = base.load4(16)
                    return bt((Float4(q0[0], q1[0], q2[0], q3[0]), Float4(q0[1], q1[1], q2[1], q3[1]),
                               Float4(q0[2], q1[2], q2[2], q3[2]), Float4(q0[3], q1[3], q2[3], q3[3]),
                               Float4(q1[0], q2[0], q3[0], q4[0]), Float4(q1[1], q2[1], q3[1], q4[1])))
                }
                // Rows of d B, then Bᵀ over them column by column; ξ = 6·row + col.
                let e0 = row(0), e1 = row(1), e2 = row(2), e3 = row(3), e4 = row(4), e5 = row(5)
                @inline(__always) func column(_ col: Int, _ d: (Float4, Float4, Float4, Float4, Float4, Float4)) {
                    let t = bt(d)
                    (out + col * stride).store4(t.0)
                    (out + (6 + col) * stride).store4(t.1)
                    (out + (12 + col) * stride).store4(t.2)
                    (out + (18 + col) * stride).store4(t.3)
                    (out + (24 + col) * stride).store4(t.4)
                    (out + (30 + col) * stride).store4(t.5)
                }
                column(0, (e0.0, e1.0, e2.0, e3.0, e4.0, e5.0))
                column(1, (e0.1, e1.1, e2.1, e3.1, e4.1, e5.1))
                column(2, (e0.2, e1.2, e2.2, e3.2, e4.2, e5.2))
                column(3, (e0.3, e1.3, e2.3, e3.3, e4.3, e5.3))
                column(4, (e0.4, e1.4, e2.4, e3.4, e4.4, e5.4))
                column(5, (e0.5, e1.5, e2.5, e3.5, e4.5, e5.5))
                tx += 4
            }
        }
    }

    /// `Aᵀ v` for one 6-vector.
    @inline(__always)
    private static func at(_ m: (Float4, Float4, Float4, Float4, Float4, Float4)) -> (Float4, Float4, Float4, Float4) {
        let a = m.1 + m.2, b = m.1 - m.2, c = m.3 + m.4, d = m.3 - m.4
        let two = Float4(repeating: 2), four = Float4(repeating: 4), eight = Float4(repeating: 8)
        return (m.0 + a + c, b + d * two, a + c * four, b + d * eight + m.5)
    }

    /// `Y = Aᵀ M A` for one output channel over `tileRows`, plus bias and
    /// residual, then the activation; writes output rows `4ty ..< 4ty + 4`.
    @inline(__always)
    private static func outputTransform(_ mp: UnsafeMutablePointer<Float>, stride: Int, tileRows: Range<Int>, tw: Int,
                                        oh: Int, ow: Int, bias: Float, activation: Activation,
                                        residual: UnsafePointer<Float>?, into y: UnsafeMutablePointer<Float>) {
        let b = Float4(repeating: bias)
        for ty in tileRows {
            var tx = 0
            while tx < tw {
                let at0 = UnsafePointer(mp + ((ty - tileRows.lowerBound) * tw + tx))
                @inline(__always) func m(_ xi: Int) -> Float4 { (at0 + xi * stride).load4() }
                // Aᵀ M, column by column: s[col] holds the 4 output rows of that column.
                let s0 = at((m(0), m(6), m(12), m(18), m(24), m(30)))
                let s1 = at((m(1), m(7), m(13), m(19), m(25), m(31)))
                let s2 = at((m(2), m(8), m(14), m(20), m(26), m(32)))
                let s3 = at((m(3), m(9), m(15), m(21), m(27), m(33)))
                let s4 = at((m(4), m(10), m(16), m(22), m(28), m(34)))
                let s5 = at((m(5), m(11), m(17), m(23), m(29), m(35)))
                for r in 0..<4 {
                    let oy = 4 * ty + r
                    guard oy < oh else { break }
                    // (Aᵀ M) A: the row's 4 pixels of each tile, lanes = tiles; transposed to pixels per tile.
                    let o: (Float4, Float4, Float4, Float4)
                    switch r {
                    case 0: o = at((s0.0, s1.0, s2.0, s3.0, s4.0, s5.0))
                    case 1: o = at((s0.1, s1.1, s2.1, s3.1, s4.1, s5.1))
                    case 2: o = at((s0.2, s1.2, s2.2, s3.2, s4.2, s5.2))
                    default: o = at((s0.3, s1.3, s2.3, s3.3, s4.3, s5.3))
                    }
                    for j in 0..<4 {
                        let ox = 4 * (tx + j)
                        let width = min(4, ow - ox)
                        guard width > 0 else { break }
                        var pixels = Float4(o.0[j], o.1[j], o.2[j], o.3[j]) + b
                        let dst = y + (oy * ow + ox)
                        if width == 4 {
                            if let residual { pixels += residual.load4(oy * ow + ox) }
                            dst.store4(apply(activation, pixels))
                        } else {
                            if let residual { for k in 0..<width { pixels[k] += residual[oy * ow + ox + k] } }
                            pixels = apply(activation, pixels)
                            for k in 0..<width { dst[k] = pixels[k] }
                        }
                    }
                }
                tx += 4
            }
        }
    }

    /// `act(v)` lane by lane.
    @inline(__always)
    private static func apply<V: SIMD>(_ activation: Activation, _ v: V) -> V where V.Scalar == Float {
        switch activation {
        case .none: return v
        case .relu: return v.replacing(with: 0, where: v .< 0)
        case .clip(let lo, let hi):
            return v.replacing(with: V(repeating: lo), where: v .< lo).replacing(with: V(repeating: hi), where: v .> hi)
        default:
            var out = v
            withUnsafeMutablePointer(to: &out) { p in
                p.withMemoryRebound(to: Float.self, capacity: V.scalarCount) { activation.apply($0, V.scalarCount) }
            }
            return out
        }
    }
}
