/// MaxPool and AveragePool (1-D / 2-D) over `x [N, C, (H,) W]`:
///
///     max:      y[oy][ox] = max over the window positions inside the input
///     average:  y[oy][ox] = Σ window positions inside the input / count
///
/// where the window of `(oy, ox)` covers rows `oy·sH − padTop + ky·dH`
/// (`ky < kH`) and the columns alike. `count` is the number of positions
/// inside the input (`count_include_pad = 0`), or inside the padded input
/// `[−padTop, H + padBottom) × [−padLeft, W + padRight)` (`count_include_pad = 1`;
/// a `ceil_mode` window running past the end padding counts only up to it, as
/// onnxruntime and PyTorch do).
final class PoolKernel: Kernel {
    enum Kind: Sendable { case max, average }
    let kind: Kind
    let window: WindowAttributes
    let countIncludePad: Bool

    init(node: Node, kind: Kind) throws {
        let what = "node '\(node.name)' (\(node.op))"
        guard let kernel = node.ints("kernel_shape") else {
            throw AimetError.invalid("\(what) has no kernel_shape")
        }
        if kind == .max && node.outputs.count > 1 && !node.outputs[1].isEmpty {
            throw AimetError.unsupported("\(what): the Indices output is not supported")
        }
        if node.int("storage_order", default: 0) != 0 && kind == .max && node.outputs.count > 1 {
            throw AimetError.unsupported("\(what): storage_order = 1")
        }
        self.kind = kind
        window = try WindowAttributes(node: node, kernel: kernel, rank: kernel.count)
        countIncludePad = node.int("count_include_pad", default: 0) != 0
    }

    func outputShape(_ shapes: [[Int]]) throws -> [Int] {
        let x = shapes[0]
        guard x.count == window.rank + 2 else {
            throw AimetError.shape("input of shape \(x) has rank \(x.count), expected \(window.rank + 2)")
        }
        let g = try window.geometry(input: Array(x.dropFirst(2)))
        return window.rank == 1 ? [x[0], x[1], g.outW] : [x[0], x[1], g.outH, g.outW]
    }

    func run(_ args: KernelArgs) throws {
        let shape = args.shapes[0]
        let g = try window.geometry(input: Array(shape.dropFirst(2)))
        let planes = shape[0] * shape[1]
        let x = args.inputs[0], y = args.output
        Parallel.forEach(planes, workers: planes * g.outCount * g.kernelCount >= 1 << 15 ? args.workers : 1) { range, _ in
            for p in range {
                plane(x + p * g.inCount, g, y + p * g.outCount)
            }
        }
    }

    /// One plane: rows of the window accumulate into the output row, one tap
    /// at a time over the valid columns (vectorized for horizontal stride 1 and 2).
    private func plane(_ x: UnsafePointer<Float>, _ g: ConvGeometry, _ y: UnsafeMutablePointer<Float>) {
        let ow = g.outW, iw = g.inW, s = g.strideW
        let isMax = kind == .max
        let columns = (0..<g.kW).map { g.validColumns(kx: $0) }
        for oy in 0..<g.outH {
            let out = y + oy * ow
            out.update(repeating: isMax ? -.infinity : 0, count: ow)
            for ky in 0..<g.kH {
                let iy = oy * g.strideH - g.padTop + ky * g.dilationH
                guard iy >= 0 && iy < g.inH else { continue }
                let row = x + iy * iw
                for kx in 0..<g.kW {
                    let cr = columns[kx]
                    let offset = kx * g.dilationW - g.padLeft
                    var ox = cr.lowerBound
                    if s == 1 {
                        while ox + 8 <= cr.upperBound {
                            let a = out.load8(ox), b = row.load8(ox + offset)
                            out.store8(isMax ? a.replacing(with: b, where: b .> a) : a + b, ox)
                            ox += 8
                        }
                    } else if s == 2 {
                        // A 16-wide load at 2·ox + offset gives 8 taps in its even lanes (last index 2·ox + offset + 15).
                        let top = iw - 16 - offset
                        let end = min(cr.upperBound - 7, top < 0 ? 0 : top / 2 + 1)
                        while ox < end {
                            let a = out.load8(ox), b = row.load16(2 * ox + offset).evenHalf
                            out.store8(isMax ? a.replacing(with: b, where: b .> a) : a + b, ox)
                            ox += 8
                        }
                    }
                    while ox < cr.upperBound {
                        let v = row[ox * s + offset]
                        out[ox] = isMax ? (v > out[ox] ? v : out[ox]) : out[ox] + v
                        ox += 1
                    }
                }
            }
            if !isMax {
                for ox in 0..<ow { out[ox] /= Float(count(g, oy, ox)) }
            }
        }
    }

    /// The divisor of average pooling at `(oy, ox)`.
    @inline(__always)
    private func count(_ g: ConvGeometry, _ oy: Int, _ ox: Int) -> Int {
        let lowH = countIncludePad ? -g.padTop : 0, highH = countIncludePad ? g.inH + g.padBottom : g.inH
        let lowW = countIncludePad ? -g.padLeft : 0, highW = countIncludePad ? g.inW + g.padRight : g.inW
        var rows = 0, cols = 0
        for ky in 0..<g.kH {
            let iy = oy * g.strideH - g.padTop + ky * g.dilationH
            if iy >= lowH && iy < highH { rows += 1 }
        }
        for kx in 0..<g.kW {
            let ix = ox * g.strideW - g.padLeft + kx * g.dilationW
            if ix >= lowW && ix < highW { cols += 1 }
        }
        return max(rows * cols, 1)
    }
}
