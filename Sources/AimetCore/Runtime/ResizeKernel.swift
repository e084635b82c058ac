/// ONNX Resize (opsets 10–19) and Upsample (7–9) on float32 data: each
/// output element is a weighted sum of input elements, separable by axis.
///
/// Output size of an axis: `sizes[i]`, or `floor(in · scale)` from `scales`
/// (`keep_aspect_ratio_policy` not_larger / not_smaller replaces the sizes'
/// scales by their min / max `s` and the sizes by `round_half_up(s · in)`).
/// An output index `x` maps to the input coordinate `x_o`
/// (`scale` = the axis' scale, `out` = its integer output size):
///
/// - half_pixel: `(x + 0.5) / scale − 0.5`
/// - half_pixel_symmetric: that plus `in/2 · (1 − out / (scale · in))`
/// - pytorch_half_pixel: as half_pixel when `out > 1`, else 0
/// - align_corners: `x · (in − 1) / (out − 1)` (0 when `out = 1`)
/// - asymmetric (Resize-10, Upsample): `x / scale`
/// - tf_crop_and_resize: `start · (in − 1) + x · (end − start) · (in − 1) / (out − 1)`
///   (`(start + end)/2 · (in − 1)` when `out = 1`); outside `[0, in − 1]` the
///   output is `extrapolation_value`.
///
/// Weights, with `x0 = floor(x_o)`, `t = x_o − x0` and indices clamped to the axis:
///
/// - nearest: one tap at `x_o` rounded by `nearest_mode` (round_prefer_floor,
///   round_prefer_ceil, floor, ceil; floor for Resize-10 and Upsample);
/// - linear: `x0` with `1 − t`, `x0 + 1` with `t`;
/// - cubic: `x0 − 1 … x0 + 2` with `W(1 + t), W(t), W(1 − t), W(2 − t)`, where
///   `W(d) = (a+2)|d|³ − (a+3)|d|² + 1` for `|d| ≤ 1`, `a|d|³ − 5a|d|² + 8a|d| − 4a`
///   for `1 < |d| < 2` (`a` = cubic_coeff_a); exclude_outside zeroes the weights
///   of taps outside the axis and renormalizes;
/// - antialias (linear, cubic) when `scale < 1`: the filter is stretched by
///   `1/scale`: taps `x0 + k` with weight `f((k − t) · scale)` normalized to sum
///   1 (`t` taken as 1 when `x_o` is an integer, `x0` then one lower).
///
/// Each resized axis is one pass over `[outer, in, inner]` → `[outer, out, inner]`,
/// the most shrinking axis first.
final class ResizeKernel: Kernel {
    enum Mode: String, Sendable { case nearest, linear, cubic }
    enum Coordinates: String, Sendable {
        case halfPixel = "half_pixel", halfPixelSymmetric = "half_pixel_symmetric", pytorchHalfPixel = "pytorch_half_pixel"
        case alignCorners = "align_corners", asymmetric, tfCropAndResize = "tf_crop_and_resize"
    }
    enum Rounding: String, Sendable {
        case roundPreferFloor = "round_prefer_floor", roundPreferCeil = "round_prefer_ceil", floor, ceil
    }
    enum AspectPolicy: String, Sendable { case stretch, notLarger = "not_larger", notSmaller = "not_smaller" }

    struct Config: Sendable {
        var mode: Mode = .nearest
        var coordinates: Coordinates = .halfPixel
        var rounding: Rounding = .roundPreferFloor
        var cubicA: Double = -0.75
        var excludeOutside = false
        var extrapolation: Float = 0
        var antialias = false
        var axes: [Int]?
        var policy: AspectPolicy = .stretch
        /// Resize-10 / Upsample: nearest rounds down, which is specified for scales ≥ 1 only.
        var legacy = false
    }
    let config: Config
    /// Scales from the attribute (Upsample-7), else operand positions.
    let attributeScales: [Float]?
    let roiOperand: Int?
    let scalesOperand: Int?
    let sizesOperand: Int?
    /// The scales when known at compile time (for `isBatchSeparable`).
    let knownScales: [Float]?

    init(_ config: Config, attributeScales: [Float]?, roiOperand: Int?, scalesOperand: Int?, sizesOperand: Int?, knownScales: [Float]?) {
        self.config = config
        self.attributeScales = attributeScales
        self.roiOperand = roiOperand
        self.scalesOperand = scalesOperand
        self.sizesOperand = sizesOperand
        self.knownScales = knownScales
    }

    func outputType(_ types: [ElementType]) throws -> ElementType {
        guard types[0] == .float32 else { throw AimetError.unsupported("the data is \(types[0]); Resize runs on float32 only") }
        for k in [roiOperand, scalesOperand].compactMap({ $0 }) where types[k] != .float32 {
            throw AimetError.unsupported("operand \(k) is \(types[k]); roi and scales must be float32")
        }
        if let k = sizesOperand, types[k] != .int64 { throw AimetError.invalid("the sizes input is \(types[k]), expected int64") }
        return .float32
    }

    /// One axis' output size, scale and region of interest.
    struct Axis {
        var input: Int
        var output: Int
        var scale: Double
        var roi: (Double, Double)
    }

    /// The per-axis geometry for the input shape and the scales / sizes / roi values (empty = absent).
    func geometry(_ x: [Int], scales: [Float], sizes: [Int], roi: [Float]) throws -> [Axis] {
        let rank = x.count
        let axes = try config.axes.map { try $0.map { try Shapes.axis($0, rank: rank) } } ?? Array(0..<rank)
        guard Set(axes).count == axes.count else { throw AimetError.invalid("axes \(config.axes ?? []) repeat an axis") }
        var result = x.map { Axis(input: $0, output: $0, scale: 1, roi: (0, 1)) }
        if config.coordinates == .tfCropAndResize {
            guard roi.count == 2 * axes.count else {
                throw AimetError.shape("roi has \(roi.count) values; tf_crop_and_resize needs 2 × \(axes.count)")
            }
            for (i, a) in axes.enumerated() { result[a].roi = (Double(roi[i]), Double(roi[axes.count + i])) }
        }
        switch (scales.isEmpty, sizes.isEmpty) {
        case (false, true):
            guard scales.count == axes.count else { throw AimetError.shape("\(scales.count) scales for \(axes.count) axes") }
            for (i, a) in axes.enumerated() {
                let s = Double(scales[i])
                guard s > 0, s.isFinite else { throw AimetError.invalid("scale \(scales[i]) is not positive") }
                if config.legacy && config.mode == .nearest && s < 1 {
                    throw AimetError.unsupported("nearest downsampling (scale \(scales[i])) is not supported before Resize-11 (its rounding is not specified)")
                }
                if config.coordinates == .tfCropAndResize && result[a].roi != (0, 1) {
                    throw AimetError.unsupported("tf_crop_and_resize with scales and a region of interest is not supported (the output size rule differs between the specification and implementations); give sizes")
                }
                let size = (Double(x[a]) * s).rounded(.down)
                // Implementations differ on whether these modes use the fractional width in · scale or its floor
                // (the width as float32 arithmetic gives it: 0.8 · 10 is 8).
                let width = scales[i] * Float(x[a])
                if width != width.rounded(.down) && (config.coordinates == .alignCorners || (config.coordinates == .pytorchHalfPixel && size <= 1)) {
                    throw AimetError.unsupported("\(config.coordinates.rawValue) with scale \(scales[i]) on axis \(a) of \(x[a]) elements is not supported (a fractional output width \(width), whose use is ambiguous); give sizes")
                }
                guard size < Double(1 << 40) else { throw AimetError.shape("scale \(s) makes axis \(a) too large") }
                result[a].output = Int(size)
                result[a].scale = s
            }
        case (true, false):
            guard sizes.count == axes.count else { throw AimetError.shape("\(sizes.count) sizes for \(axes.count) axes") }
            guard sizes.allSatisfy({ $0 >= 0 && $0 < 1 << 40 }) else { throw AimetError.invalid("sizes \(sizes) are out of range") }
            for (i, a) in axes.enumerated() where x[a] == 0 && sizes[i] != 0 {
                throw AimetError.shape("axis \(a) is empty and cannot be resized to \(sizes[i])")
            }
            if config.policy == .stretch {
                for (i, a) in axes.enumerated() {
                    result[a].output = sizes[i]
                    result[a].scale = x[a] > 0 ? Double(sizes[i]) / Double(x[a]) : 1
                }
            } else {
                let ratios = axes.enumerated().map { x[$0.element] > 0 ? Double(sizes[$0.offset]) / Double(x[$0.element]) : 1 }
                let s = (config.policy == .notLarger ? ratios.min() : ratios.max()) ?? 1
                for a in axes {
                    result[a].output = Int((s * Double(x[a]) + 0.5).rounded(.down))
                    result[a].scale = s
                }
            }
        default:
            throw AimetError.invalid("exactly one of scales and sizes must be given (scales: \(scales.count) values, sizes: \(sizes.count))")
        }
        for a in result where a.output > 0 && a.input == 0 { throw AimetError.shape("an empty axis cannot be resized to \(a.output)") }
        _ = try Shapes.count(result.map(\.output))
        return result
    }

    func values(_ operands: [Operand]) throws -> (scales: [Float], sizes: [Int], roi: [Float]) {
        func floats(_ k: Int?, _ role: String) throws -> [Float] {
            guard let k else { return [] }
            guard let value = operands[k].value else {
                throw AimetError.unsupported("the \(role) input is computed from the input data at run time; the executor needs it known from the input shapes")
            }
            return value.floats
        }
        let scales = try attributeScales ?? floats(scalesOperand, "scales")
        let sizes = try sizesOperand.map { operands[$0].shape.reduce(1, *) == 0 ? [] : try operands[$0].integers("sizes") } ?? []
        let roi = config.coordinates == .tfCropAndResize ? try floats(roiOperand, "roi") : []
        return (scales, sizes, roi)
    }

    func outputShape(_ operands: [Operand]) throws -> [Int] {
        let (scales, sizes, roi) = try values(operands)
        let axes = try geometry(operands[0].shape, scales: scales, sizes: sizes, roi: roi)
        for a in axes where a.output != a.input || a.scale != 1 { _ = try table(a) }
        return axes.map(\.output)
    }

    /// Separable when axis 0 is known to keep its items: sizes (their scale
    /// on an unchanged axis is exactly 1) or a known scale of 1 on axis 0;
    /// never with a region of interest or an aspect-ratio policy on axis 0.
    func isBatchSeparable(_ shapes: [[Int]]) -> Bool {
        guard config.coordinates != .tfCropAndResize else { return false }
        let axes = config.axes.map { list in list.map { $0 < 0 ? $0 + shapes[0].count : $0 } } ?? Array(0..<shapes[0].count)
        guard let zero = axes.firstIndex(of: 0) else { return true }
        if let scales = attributeScales ?? knownScales, !scales.isEmpty { return zero < scales.count && scales[zero] == 1 }
        return sizesOperand != nil && config.policy == .stretch
    }

    /// The taps of one axis: for each output index, `taps` input indices
    /// (clamped) and weights; `outside[o]` marks tf_crop_and_resize extrapolation.
    struct Table {
        var taps: Int
        var index: [Int]
        var weight: [Float]
        var outside: [Bool]
        /// True when the axis maps every output index to the same input index with weight 1.
        var isIdentity: Bool
    }

    func table(_ axis: Axis) throws -> Table {
        let n = axis.input, out = axis.output, scale = axis.scale
        let c = config
        let stretch = c.antialias && c.mode != .nearest ? min(scale, 1) : 1
        let taps: Int, first: Int
        switch c.mode {
        case .nearest: (taps, first) = (1, 0)
        case .linear:
            first = Int((-1 / stretch).rounded(.down)) + 1
            taps = 2 - 2 * first
        case .cubic:
            first = Int((-2 / stretch).rounded(.down)) + 1
            taps = 2 - 2 * first
        }
        guard taps <= 1 << 16 else { throw AimetError.unsupported("antialiasing with scale \(scale) is not supported (a filter of \(taps) taps)") }
        let (count, overflow) = out.multipliedReportingOverflow(by: taps)
        guard !overflow, count < 1 << 32 else { throw AimetError.shape("output size \(out) is too large") }
        var table = Table(taps: taps, index: [Int](repeating: 0, count: count), weight: [Float](repeating: 0, count: count),
                          outside: [Bool](repeating: false, count: out), isIdentity: out == n)
        var w = [Double](repeating: 0, count: taps)
        for o in 0..<out {
            let x = Double(o)
            var xo: Double
            switch c.coordinates {
            case .halfPixel: xo = (x + 0.5) / scale - 0.5
            case .halfPixelSymmetric:
                let adjustment = Double(out) / (scale * Double(n))
                xo = Double(n) / 2 * (1 - adjustment) + (x + 0.5) / scale - 0.5
            case .pytorchHalfPixel: xo = out > 1 ? (x + 0.5) / scale - 0.5 : 0
            case .alignCorners: xo = out > 1 ? x * Double(n - 1) / Double(out - 1) : 0
            case .asymmetric: xo = x / scale
            case .tfCropAndResize:
                let (start, end) = axis.roi
                xo = out > 1 ? start * Double(n - 1) + x * (end - start) * Double(n - 1) / Double(out - 1)
                             : 0.5 * (start + end) * Double(n - 1)
                if !(xo >= 0 && xo <= Double(n - 1)) {
                    // Extrapolated: the weights stay 0 and the value is written after the passes.
                    table.outside[o] = true
                    table.isIdentity = false
                    continue
                }
            }
            guard xo.isFinite, abs(xo) < Double(1 << 40) else { throw AimetError.invalid("output index \(o) maps to input coordinate \(xo)") }
            let row = o * taps
            if c.mode == .nearest {
                var i: Double
                switch c.rounding {
                case .roundPreferFloor: i = xo - xo.rounded(.down) == 0.5 ? xo.rounded(.down) : xo.rounded()
                case .roundPreferCeil: i = xo - xo.rounded(.down) == 0.5 ? xo.rounded(.up) : xo.rounded()
                case .floor: i = xo.rounded(.down)
                case .ceil: i = xo.rounded(.up)
                }
                i = min(max(i, 0), Double(n - 1))
                table.index[row] = Int(i)
                table.weight[row] = 1
                if Int(i) != o { table.isIdentity = false }
                continue
            }
            var x0 = xo.rounded(.down), t = xo - x0
            if t == 0 { x0 -= 1; t = 1 }
            var sum = 0.0
            for k in 0..<taps {
                let d = (Double(first + k) - t) * stretch
                w[k] = c.mode == .linear ? max(0, 1 - abs(d)) : cubic(abs(d), c.cubicA)
                let index = Int(x0) + first + k
                if c.excludeOutside && (index < 0 || index >= n) { w[k] = 0 }
                sum += w[k]
            }
            let normalize = (c.antialias || c.excludeOutside) && sum != 0
            for k in 0..<taps {
                let index = min(max(Int(x0) + first + k, 0), n - 1)
                let weight = normalize ? w[k] / sum : w[k]
                table.index[row + k] = index
                table.weight[row + k] = Float(weight)
                if weight != 0 && (index != o || weight != 1) { table.isIdentity = false }
            }
        }
        return table
    }

    func cubic(_ d: Double, _ a: Double) -> Double {
        if d <= 1 { return ((a + 2) * d - (a + 3)) * d * d + 1 }
        if d < 2 { return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a }
        return 0
    }

    func run(_ args: KernelArgs) throws {
        func floats(_ k: Int?) -> [Float] {
            guard let k else { return [] }
            return Array(UnsafeBufferPointer(start: args.inputs[k], count: args.shapes[k].reduce(1, *)))
        }
        let scales = attributeScales ?? floats(scalesOperand)
        let sizes: [Int] = sizesOperand.map { k in
            let p = Int64Pointer(args.inputs[k])
            return (0..<args.shapes[k].reduce(1, *)).map { Int(p[$0]) }
        } ?? []
        let roi = config.coordinates == .tfCropAndResize ? floats(roiOperand) : []
        let x = args.shapes[0]
        let axes = try geometry(x, scales: scales, sizes: sizes, roi: roi)
        let total = args.outputShape.reduce(1, *)
        guard total > 0 else { return }
        var passes: [(axis: Int, table: Table)] = []
        for (d, a) in axes.enumerated() {
            let t = try table(a)
            if !t.isIdentity { passes.append((d, t)) }
        }
        // Shrinking axes first, so later passes read less.
        passes.sort { Double(axes[$0.axis].output) / Double(axes[$0.axis].input) < Double(axes[$1.axis].output) / Double(axes[$1.axis].input) }
        guard !passes.isEmpty else {
            args.output.update(from: args.inputs[0], count: total)
            return
        }
        var shape = x
        var source = args.inputs[0]
        for (p, pass) in passes.enumerated() {
            var next = shape
            next[pass.axis] = axes[pass.axis].output
            let target: UnsafeMutablePointer<Float>
            if p == passes.count - 1 {
                target = args.output
            } else {
                let count = try Shapes.count(next)
                guard let workspace = args.workspaces.first else { throw AimetError(.internalError, "Resize has no workspace") }
                target = workspace.floats(count, slot: p % 2)
            }
            Self.pass(source, target, shape: shape, axis: pass.axis, table: pass.table, workers: args.workers)
            source = UnsafePointer(target)
            shape = next
        }
        if config.coordinates == .tfCropAndResize {
            let out = args.outputShape
            for pass in passes where pass.table.outside.contains(true) {
                let d = pass.axis
                let outer = Shapes.product(out, 0..<d), inner = Shapes.product(out, (d + 1)..<out.count)
                for o in 0..<outer {
                    for i in 0..<out[d] where pass.table.outside[i] {
                        (args.output + (o * out[d] + i) * inner).update(repeating: config.extrapolation, count: inner)
                    }
                }
            }
        }
    }

    /// One axis: `y[o, j, i] = Σ_k w[j, k] · x[o, index[j, k], i]` over `[outer, n, inner]`.
    static func pass(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, shape: [Int], axis: Int, table: Table, workers: Int) {
        let outer = Shapes.product(shape, 0..<axis), inner = Shapes.product(shape, (axis + 1)..<shape.count)
        let n = shape[axis], out = table.outside.count, taps = table.taps
        let work = outer * out * inner * taps
        table.index.withUnsafeBufferPointer { indexBuffer in
            table.weight.withUnsafeBufferPointer { weightBuffer in
                guard let index = indexBuffer.baseAddress, let weight = weightBuffer.baseAddress else { return }
                if inner == 1 {
                    // Along the contiguous axis: a weighted gather per output element.
                    Parallel.forEach(outer, workers: work >= 1 << 15 ? workers : 1) { range, _ in
                        for o in range {
                            let src = x + o * n, dst = y + o * out
                            switch taps {
                            case 1:
                                for j in 0..<out { dst[j] = src[index[j]] }
                            case 2:
                                for j in 0..<out {
                                    dst[j] = weight[2 * j] * src[index[2 * j]] + weight[2 * j + 1] * src[index[2 * j + 1]]
                                }
                            default:
                                for j in 0..<out {
                                    var s: Float = 0
                                    for k in 0..<taps { s += weight[j * taps + k] * src[index[j * taps + k]] }
                                    dst[j] = s
                                }
                            }
                        }
                    }
                    return
                }
                // Across rows of `inner` contiguous values: a weighted sum of whole rows.
                Parallel.forEach(outer * out, workers: work >= 1 << 15 ? workers : 1) { range, _ in
                    for r in range {
                        let o = r / out, j = r % out
                        let dst = y + r * inner, base = x + o * n * inner
                        if taps == 1 {
                            dst.update(from: base + index[j] * inner, count: inner)
                            continue
                        }
                        let row = j * taps
                        let first = base + index[row] * inner
                        let w0 = weight[row]
                        var i = 0
                        while i + 8 <= inner {
                            var s = Float8(repeating: w0) * first.load8(i)
                            for k in 1..<taps { s += Float8(repeating: weight[row + k]) * (base + index[row + k] * inner).load8(i) }
                            dst.store8(s, i)
                            i += 8
                        }
                        while i < inner {
                            var s = w0 * first[i]
                            for k in 1..<taps { s += weight[row + k] * base[index[row + k] * inner + i] }
                            dst[i] = s
                            i += 1
                        }
                    }
                }
            }
        }
    }
}
