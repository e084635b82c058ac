/// Copies a strided view of one tensor into a contiguous output, for the
/// kernels that only move elements (Slice, Split, Expand, Tile):
///
///     out[i₀, …, iᵣ₋₁] = src[offset + Σₖ iₖ · strides[k]]
///
/// Offsets and strides count elements of `width` float slots each (1 for
/// float32 and bool, 2 for int64). A stride may be negative (a reversed
/// slice) or 0 (a broadcast axis). Axes that follow each other in memory are
/// merged first, so the innermost loop copies the longest contiguous run at
/// once (`update(from:)`), fills a broadcast run, or steps through elements.
enum StridedCopy {
    static func run(_ src: UnsafePointer<Float>, offset: Int, strides: [Int], into dst: UnsafeMutablePointer<Float>,
                    shape: [Int], width: Int, workers: Int) {
        guard !shape.contains(0) else { return }
        // Axes of size 1 read one element; drop them, then merge axis k into k+1
        // when stepping k once equals stepping k+1 over its whole size.
        var dims: [(size: Int, stride: Int)] = []
        for (size, stride) in zip(shape, strides) where size != 1 {
            if let last = dims.last, last.stride == stride &* size {
                dims[dims.count - 1] = (last.size * size, stride)
            } else {
                dims.append((size, stride))
            }
        }
        let inner = dims.popLast() ?? (size: 1, stride: 1)
        let outer = dims.reduce(1) { $0 * $1.size }
        let run = inner.size * width
        let base = src + offset * width
        let total = outer * run
        Parallel.forEach(outer, workers: total >= 1 << 16 ? workers : 1) { range, _ in
            // The multi-index of the range's first row, then an odometer.
            var index = [Int](repeating: 0, count: dims.count)
            var rest = range.lowerBound
            var at = 0
            for k in stride(from: dims.count - 1, through: 0, by: -1) {
                index[k] = rest % dims[k].size
                rest /= dims[k].size
                at += index[k] * dims[k].stride
            }
            var out = dst + range.lowerBound * run
            for _ in range {
                let from = base + at * width
                if inner.stride == 1 {
                    out.update(from: from, count: run)
                } else if inner.stride == 0 {
                    if width == 1 {
                        out.update(repeating: from[0], count: run)
                    } else {
                        for i in 0..<inner.size { (out + i * width).update(from: from, count: width) }
                    }
                } else if width == 1 {
                    for i in 0..<inner.size { out[i] = from[i * inner.stride] }
                } else {
                    for i in 0..<inner.size { (out + i * width).update(from: from + i * inner.stride * width, count: width) }
                }
                out += run
                var k = dims.count - 1
                while k >= 0 {
                    index[k] += 1
                    at += dims[k].stride
                    if index[k] < dims[k].size { break }
                    at -= dims[k].stride * dims[k].size
                    index[k] = 0
                    k -= 1
                }
            }
        }
    }

    /// Row-major element strides of a shape.
    static func strides(_ shape: [Int]) -> [Int] {
        var s = [Int](repeating: 1, count: shape.count)
        for k in stride(from: shape.count - 2, through: 0, by: -1) { s[k] = s[k + 1] * shape[k + 1] }
        return s
    }
}
