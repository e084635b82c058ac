/// 3×3 stride-1 convolution by Winograd's minimal filtering F(2×2, 3×3)
/// (Lavin & Gray 2015): each 2×2 output tile comes from a 4×4 input tile d as
///
///     Y = Aᵀ [ Σ_c (G g_c Gᵀ) ⊙ (Bᵀ d_c B) ] A
///
/// with
///
///     Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1]
///     G  = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1]
///     Aᵀ = [1 1 1 0; 0 1 −1 −1]
///
/// The sum over input channels, for each of the 16 positions ξ of the 4×4
/// transformed tile, is one GEMM `M_ξ[M, tiles] = U_ξ[M, C] · V_ξ[C, tiles]`,
/// 16 multiplies per tile and channel pair instead of 36: 2.25× fewer flops
/// than im2col + GEMM, with errors of the same order as direct summation.
///
/// Tiles go through in blocks (`Blocking`), which are also what the workers
/// share out. The transforms run on 4
/// tiles at once (one SSE register): the input tile columns of 4 neighbouring tiles
/// are the even/odd lanes of two 8-wide loads from a zero-bordered copy of
/// the input rows; the output transform adds bias and residual, applies the
/// activation and writes 8 output columns at once.
enum Winograd {
    /// `U[ξ][m][c] = (G g_{m,c} Gᵀ)[ξ]` for weights `[M, C, 3, 3]`.
    static func transformWeights(_ w: [Float], m: Int, c: Int) -> [Float] {
        var u = [Float](repeating: 0, count: 16 * m * c)
        for o in 0..<m {
            for i in 0..<c {
                let g = (0..<9).map { Double(w[(o * c + i) * 9 + $0]) }
                // t = G g (4×3), then U = t Gᵀ (4×4).
                var t = [Double](repeating: 0, count: 12)
                for col in 0..<3 {
                    let a = g[col], b = g[3 + col], cc = g[6 + col]
                    t[col] = a
                    t[3 + col] = (a + b + cc) / 2
                    t[6 + col] = (a - b + cc) / 2
                    t[9 + col] = cc
                }
                for row in 0..<4 {
                    let a = t[row * 3], b = t[row * 3 + 1], cc = t[row * 3 + 2]
                    let values = [a, (a + b + cc) / 2, (a - b + cc) / 2, cc]
                    for col in 0..<4 { u[((row * 4 + col) * m + o) * c + i] = Float(values[col]) }
                }
            }
        }
        return u
    }

    /// Whether the conv suits this path: 2-D 3×3, stride 1, dilation 1, one
    /// group, and enough channels for the 16 GEMMs to run well.
    static func suits(_ g: ConvGeometry, inChannels: Int, outChannels: Int, groups: Int) -> Bool {
        g.kH == 3 && g.kW == 3 && g.strideH == 1 && g.strideW == 1 && g.dilationH == 1 && g.dilationW == 1
            && groups == 1 && inChannels >= 16 && outChannels >= 16 && g.outH >= 2 && g.outW >= 2
    }

    /// How the tiles of `n` images go through in blocks: whole images per
    /// block (small planes) or equal runs of tile rows of one image. Blocks
    /// hold about 3 MB of transformed inputs and products (16·(C + M) floats
    /// per tile, 128 to 1024 tiles; on resnet18 block sizes from 64 to 1024
    /// tiles were within 3%), and there are at least as many blocks as workers
    /// when the images allow (a single image is cut into row blocks).
    struct Blocking {
        let imagesPerBlock: Int
        let rowsPerBlock: Int
        let imageBlocks: Int
        let rowBlocks: Int
        let images: Int
        let tileRows: Int

        init(images n: Int, channels c: Int, outChannels m: Int, _ g: ConvGeometry, workers: Int) {
            let th = (g.outH + 1) / 2, tw = (g.outW + 1) / 2
            let tilesPerImage = th * tw
            let target = min(1024, max(128, 49_152 / (c + m)))
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
        let tw = (ow + 1) / 2
        let tw4 = (tw + 3) / 4 * 4
        let padCols = 2 * tw4 + 2
        let padRows = 2 * blocking.rowsPerBlock + 2
        let maxTiles = blocking.imagesPerBlock * blocking.rowsPerBlock * tw
        let strideV = c * maxTiles + 4, strideM = m * maxTiles + 4
        let v = workspace.floats(16 * strideV, slot: 0)
        let product = workspace.floats(16 * strideM, slot: 1)
        let padded = workspace.floats(padRows * padCols, slot: Workspace.extraSlot)
        for b in blocks {
            let (images, tileRows) = blocking.block(b)
            let first = images.lowerBound, ty0 = tileRows.lowerBound
            let rows = tileRows.count
            let tiles = images.count * rows * tw
            // Input transform into V[ξ][c][tile] (ξ stride `strideV`).
            for ch in 0..<c {
                for image in images {
                    padRowsCopy(x + (image * c + ch) * g.inCount, g, firstRow: 2 * ty0 - g.padTop,
                                rows: 2 * rows + 2, into: padded, cols: padCols)
                    inputTransform(padded, cols: padCols, tileRows: rows, tw: tw,
                                   into: v + (ch * tiles + (image - first) * rows * tw), stride: strideV)
                }
            }
            // 16 GEMMs.
            for xi in 0..<16 {
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

    /// `V[ξ] = (Bᵀ d B)[ξ]` for the tiles of `tileRows` rows, 4 tiles at a time;
    /// tile `(ty, tx)` reads padded rows `2ty ..< 2ty + 4`, columns `2tx ..< 2tx + 4`.
    @inline(__always)
    private static func inputTransform(_ p: UnsafeMutablePointer<Float>, cols: Int, tileRows: Int, tw: Int,
                                       into v: UnsafeMutablePointer<Float>, stride: Int) {
        for ty in 0..<tileRows {
            let r0 = UnsafePointer(p + 2 * ty * cols), r1 = r0 + cols, r2 = r1 + cols, r3 = r2 + cols
            var tx = 0
            while tx < tw {
                let base = 2 * tx
                // Column k of the 4 tiles' patches: lanes of loads at 2tx (k = 0, 1) and 2tx + 2 (k = 2, 3).
                func columns(_ r: UnsafePointer<Float>) -> (Float4, Float4, Float4, Float4) {
                    let a = r.load8(base), b = r.load8(base + 2)
                    return (a.evenHalf, a.oddHalf, b.evenHalf, b.oddHalf)
                }
                let d0 = columns(r0), d1 = columns(r1), d2 = columns(r2), d3 = columns(r3)
                // Rows: Bᵀ d.
                let u0 = (d0.0 - d2.0, d0.1 - d2.1, d0.2 - d2.2, d0.3 - d2.3)
                let u1 = (d1.0 + d2.0, d1.1 + d2.1, d1.2 + d2.2, d1.3 + d2.3)
                let u2 = (d2.0 - d1.0, d2.1 - d1.1, d2.2 - d1.2, d2.3 - d1.3)
                let u3 = (d1.0 - d3.0, d1.1 - d3.1, d1.2 - d3.2, d1.3 - d3.3)
                // Columns: (Bᵀ d) B, stored at ξ = 4·row + col.
                let out = v + (ty * tw + tx)
                func store(_ row: Int, _ t: (Float4, Float4, Float4, Float4)) {
                    (out + (4 * row) * stride).store4(t.0 - t.2)
                    (out + (4 * row + 1) * stride).store4(t.1 + t.2)
                    (out + (4 * row + 2) * stride).store4(t.2 - t.1)
                    (out + (4 * row + 3) * stride).store4(t.1 - t.3)
                }
                store(0, u0)
                store(1, u1)
                store(2, u2)
                store(3, u3)
                tx += 4
            }
        }
    }

    /// `Y = Aᵀ M A` for one output channel over `tileRows`, plus bias and
    /// residual, then the activation; writes output rows `2ty`, `2ty + 1`.
    @inline(__always)
    private static func outputTransform(_ mp: UnsafeMutablePointer<Float>, stride: Int, tileRows: Range<Int>, tw: Int,
                                        oh: Int, ow: Int, bias: Float, activation: Activation,
                                        residual: UnsafePointer<Float>?, into y: UnsafeMutablePointer<Float>) {
        let b = Float8(repeating: bias)
        for ty in tileRows {
            var tx = 0
            while tx < tw {
                let at = mp + ((ty - tileRows.lowerBound) * tw + tx)
                @inline(__always) func m(_ xi: Int) -> Float4 { UnsafePointer(at + xi * stride).load4() }
                // Rows: Aᵀ M (2×4).
                var s0 = (Float4(), Float4(), Float4(), Float4()), s1 = s0
                for col in 0..<4 {
                    let a = m(col), bb = m(4 + col), cc = m(8 + col), dd = m(12 + col)
                    let first = a + bb + cc, second = bb - cc - dd
                    switch col {
                    case 0: s0.0 = first; s1.0 = second
                    case 1: s0.1 = first; s1.1 = second
                    case 2: s0.2 = first; s1.2 = second
                    default: s0.3 = first; s1.3 = second
                    }
                }
                // Columns: (Aᵀ M) A, then the two output rows of 4 tiles as 8 pixels each.
                for r in 0..<2 {
                    let oy = 2 * ty + r
                    guard oy < oh else { break }
                    let s = r == 0 ? s0 : s1
                    let left = s.0 + s.1 + s.2, right = s.1 - s.2 - s.3
                    var row = Float8(left[0], right[0], left[1], right[1], left[2], right[2], left[3], right[3]) + b
                    let ox = 2 * tx
                    let width = min(8, ow - ox)
                    guard width > 0 else { break }
                    if let residual {
                        let rr = residual + (oy * ow + ox)
                        if width == 8 { row += rr.load8() } else { for j in 0..<width { row[j] += rr[j] } }
                    }
                    row = apply(activation, row)
                    let dst = y + (oy * ow + ox)
                    if width == 8 { dst.store8(row) } else { for j in 0..<width { dst[j] = row[j] } }
                }
                tx += 4
            }
        }
    }

    @inline(__always)
    private static func apply(_ activation: Activation, _ v: Float8) -> Float8 {
        switch activation {
        case .none: return v
        case .relu: return v.replacing(with: 0, where: v .< 0)
        case .clip(let lo, let hi):
            return v.replacing(with: Float8(repeating: lo), where: v .< lo).replacing(with: Float8(repeating: hi), where: v .> hi)
        default:
            var out = v
            withUnsafeMutablePointer(to: &out) { p in
                p.withMemoryRebound(to: Float.self, capacity: 8) { activation.apply($0, 8) }
            }
            return out
        }
    }
}

