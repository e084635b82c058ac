#if canImport(Glibc)
import Glibc
#endif
import Dispatch

/// Static work splitting over a few worker threads (libdispatch's
/// `concurrentPerform`), for kernels whose items cost about the same.
enum Parallel {
    /// The number of online processors (at least 1).
    static var processorCount: Int {
        #if canImport(Glibc)
        return max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        #else
        return 1
        #endif
    }

    /// Splits `0..<count` into at most `workers` contiguous ranges of nearly
    /// equal size and calls `body(range, worker)` for each, concurrently when
    /// there is more than one. `worker` indexes per-worker scratch memory.
    static func forEach(_ count: Int, workers: Int, _ body: (Range<Int>, Int) -> Void) {
        let n = min(max(workers, 1), count)
        guard n > 1 else {
            if count > 0 { body(0..<count, 0) }
            return
        }
        withoutActuallyEscaping(body) { body in
            let task = UncheckedSendable(body)
            DispatchQueue.concurrentPerform(iterations: n) { w in
                let lo = count * w / n, hi = count * (w + 1) / n
                task.value(lo..<hi, w)
            }
        }
    }

    /// Calls `body(item)` for every item in `0..<count` from `workers`
    /// threads, handing out items one at a time (for items of uneven cost).
    static func forEachItem(_ count: Int, workers: Int, _ body: (Int, Int) -> Void) {
        let n = min(max(workers, 1), count)
        guard n > 1 else {
            for i in 0..<count { body(i, 0) }
            return
        }
        let next = Counter()
        withoutActuallyEscaping(body) { body in
            let task = UncheckedSendable(body)
            DispatchQueue.concurrentPerform(iterations: n) { w in
                while true {
                    let i = next.increment()
                    guard i < count else { break }
                    task.value(i, w)
                }
            }
        }
    }
}
