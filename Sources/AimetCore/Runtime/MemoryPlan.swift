/// Places values in one arena so that values alive at the same time never
/// overlap: greedy first fit in order of first use. A value's interval is
/// `first...last` in step (or stage) indices; two values may share memory
/// only when one's `last` is before the other's `first` (a step's output is
/// written while its operands are read). Offsets are in floats, 64-byte aligned.
struct MemoryPlan: Sendable {
    struct Interval {
        var value: Int
        var size: Int
        var first: Int
        var last: Int
    }

    private(set) var offsets: [Int: Int] = [:]
    /// Floats the arena needs.
    private(set) var size = 0

    init(_ intervals: [Interval]) {
        var active: [(offset: Int, size: Int, last: Int)] = []
        for item in intervals.sorted(by: { ($0.first, $0.value) < ($1.first, $1.value) }) {
            active.removeAll { $0.last < item.first }
            active.sort { $0.offset < $1.offset }
            let need = MemoryPlan.align(max(item.size, 1))
            var offset = 0
            for block in active {
                if block.offset - offset >= need { break }
                offset = max(offset, MemoryPlan.align(block.offset + block.size))
            }
            active.append((offset, need, item.last))
            offsets[item.value] = offset
            size = max(size, offset + need)
        }
    }

    private static func align(_ n: Int) -> Int { (n + 15) / 16 * 16 }
}
