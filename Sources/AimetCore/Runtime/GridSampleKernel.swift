/// ONNX GridSample (opset 16: 4-D, bilinear / nearest / bicubic; opset 20:
/// N-D, linear / nearest / cubic) on float32: `X [N, C, D_1 … D_r]`, `grid
/// [N, O_1 … O_r, r]` → `Y [N, C, O_1 … O_r]`, where `grid[n, o]` holds
/// normalized coordinates in [−1, 1], the LAST spatial axis first.
///
/// Per axis of size `d` (float32, as the reference computes it):
/// - denormalized `x = (g + 1)/2 · (d − 1)` with align_corners, else `((g + 1) · d − 1)/2`;
/// - nearest rounds `x` half to even first;
/// - outside the border (`[0, d − 1]` with align_corners, else `[−0.5, d − 0.5]`):
///   padding border clamps `x` to `[0, d − 1]`, reflection mirrors it at the border;
/// - taps: nearest `x`; linear `x0 = ⌊x⌋`, `x0 + 1` with `1 − t, t` (`t = x − x0`);
///   cubic `x0 − 1 … x0 + 2` with Keys' weights (`a = −0.75`);
/// - a tap outside the axis reads 0 (zeros), the clamped index (border) or
///   the mirrored index (reflection).
/// The output is the sum over the taps of every axis of the product of their weights.
final class GridSampleKernel: Kernel {
    enum Mode: Sendable { case nearest, linear, cubic }
    enum Padding: String, Sendable { case zeros, border, reflection }
    let mode: Mode
    let padding: Padding
    let alignCorners: Bool

    init(mode: Mode, padding: Padding, alignCorners: Bool) {
        self.mode = mode
        self.padding = padding
        self.alignCorners = alignCorners
    }

    func outputShape(_ shapes: [[Int]]) throws -> [Int] {
        let x = shapes[0], grid = shapes[1]
        let r = x.count - 2
        guard r >= 1 else { throw AimetError.shape("X has shape \(x); expected [N, C, spatial…]") }
        guard grid.count == r + 2, grid[0] == x[0], grid[r + 1] == r else {
            throw AimetError.shape("grid has shape \(grid); expected [\(x[0]), spatial…, \(r)] for X \(x)")
        }
        let out = [x[0], x[1]] + grid[1...r]
        _ = try Shapes.count(out)
        return out
    }

    /// Mirrors `x` into `[low, high]` (repeatedly, as a ray between two mirrors).
    @inline(__always)
    static func reflect(_ x: Float, _ low: Float, _ high: Float) -> Float {
        let range = high - low
        guard range > 0 else { return low }
        if x < low {
            let dx = low - x
            let n = (dx / range).rounded(.towardZero), r = dx - n * range
            return n.truncatingRemainder(dividingBy: 2) == 0 ? low + r : high - r
        }
        if x > high {
            let dx = x - high
            let n = (dx / range).rounded(.towardZero), r = dx - n * range
            return n.truncatingRemainder(dividingBy: 2) == 0 ? high - r : low + r
        }
        return x
    }

    /// Keys' cubic weights for the taps at −1, 0, 1, 2 from `x0`, at offset `t`.
    @inline(__always)
    static func cubic(_ t: Float) -> (Float, Float, Float, Float) {
        let a: Float = -0.75
        let t1 = t + 1, u = 1 - t, u1 = 2 - t
        return (((a * t1 - 5 * a) * t1 + 8 * a) * t1 - 4 * a,
                ((a + 2) * t - (a + 3)) * t * t + 1,
                ((a + 2) * u - (a + 3)) * u * u + 1,
                ((a * u1 - 5 * a) * u1 + 8 * a) * u1 - 4 * a)
    }

    func run(_ args: KernelArgs) throws {
        let x = args.shapes[0], grid = args.shapes[1]
        let r = x.count - 2, n = x[0], channels = x[1]
        let dims = Array(x[2...])
        let points = Shapes.product(grid, 1..<(r + 1))
        let plane = Shapes.product(dims, 0..<r)
        var stride = [Int](repeating: 1, count: r)
        for i in Swift.stride(from: r - 2, through: 0, by: -1) { stride[i] = stride[i + 1] * dims[i + 1] }
        let taps = mode == .nearest ? 1 : mode == .linear ? 2 : 4
        let gridData = args.inputs[1], data = args.inputs[0], out = args.output
        for k in 0..<(n * points * r) where !gridData[k].isFinite {
            throw AimetError.invalid("grid value \(gridData[k]) at flat index \(k) is not finite")
        }
        let (mode, padding, align) = (self.mode, self.padding, alignCorners)
        var combos = 1
        for _ in 0..<r {
            let (c, overflow) = combos.multipliedReportingOverflow(by: taps)
            guard !overflow, c <= 1 << 16 else { throw AimetError.unsupported("GridSample over \(r) spatial axes is not supported (\(taps)^\(r) taps)") }
            combos = c
        }
        Parallel.forEach(n * points, workers: n * points * channels * combos >= 1 << 14 ? args.workers : 1) { range, _ in
            // Per axis: tap offsets into the plane (−1: reads 0) and weights.
            var offset = [Int](repeating: 0, count: r * taps), weight = [Float](repeating: 0, count: r * taps)
            var comboOffset = [Int](repeating: 0, count: combos), comboWeight = [Float](repeating: 0, count: combos)
            for item in range {
                let b = item / points, p = item % points
                let g = gridData + item * r
                for axis in 0..<r {
                    let d = dims[axis], size = Float(d)
                    let v = g[r - 1 - axis]
                    var c = align ? (v + 1) / 2 * (size - 1) : ((v + 1) * size - 1) / 2
                    if mode == .nearest { c = c.rounded(.toNearestOrEven) }
                    let low: Float = align ? 0 : -0.5, high: Float = align ? size - 1 : size - 0.5
                    if c < low || c > high {
                        switch padding {
                        case .zeros: c = min(max(c, -8), size + 8)
                        case .border: c = min(max(c, 0), size - 1)
                        case .reflection: c = Self.reflect(c, low, high)
                        }
                    }
                    func tap(_ i: Int) -> Int {
                        switch padding {
                        case .zeros: return i >= 0 && i < d ? i * stride[axis] : -1
                        case .border: return min(max(i, 0), d - 1) * stride[axis]
                        case .reflection:
                            let m = Int(Self.reflect(Float(i), low, high).rounded(.towardZero))
                            return min(max(m, 0), d - 1) * stride[axis]
                        }
                    }
                    let base = axis * taps
                    switch mode {
                    case .nearest:
                        offset[base] = tap(Int(c.rounded(.towardZero)))
                        weight[base] = 1
                    case .linear:
                        let x0 = c.rounded(.down), t = c - x0, i = Int(x0)
                        (offset[base], weight[base]) = (tap(i), 1 - t)
                        (offset[base + 1], weight[base + 1]) = (tap(i + 1), t)
                    case .cubic:
                        let x0 = c.rounded(.down), i = Int(x0)
                        let w = Self.cubic(c - x0)
                        (offset[base], weight[base]) = (tap(i - 1), w.0)
                        (offset[base + 1], weight[base + 1]) = (tap(i), w.1)
                        (offset[base + 2], weight[base + 2]) = (tap(i + 1), w.2)
                        (offset[base + 3], weight[base + 3]) = (tap(i + 2), w.3)
                    }
                }
                // Every combination of one tap per axis (a tap reading 0 drops its combinations).
                var used = 0
                for combo in 0..<combos {
                    var rest = combo, o = 0, w: Float = 1, zero = false
                    for axis in Swift.stride(from: r - 1, through: 0, by: -1) {
                        let k = axis * taps + rest % taps
                        rest /= taps
                        if offset[k] < 0 { zero = true; break }
                        o += offset[k]
                        w *= weight[k]
                    }
                    if zero { continue }
                    comboOffset[used] = o
                    comboWeight[used] = w
                    used += 1
                }
                for ch in 0..<channels {
                    let src = data + (b * channels + ch) * plane
                    var s: Float = 0
                    for k in 0..<used { s += comboWeight[k] * src[comboOffset[k]] }
                    out[(b * channels + ch) * points + p] = s
                }
            }
        }
    }
}
