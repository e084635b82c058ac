#if canImport(Glibc)
import Glibc
#endif
import CKernels
import Dispatch

/// Static work splitting over a few worker threads, for kernels whose items
/// cost about the same. The threads are the pool of `aimetk_pool_run`
/// (Sources/CKernels/pool.c: worker `w` is always the same thread, idle
/// workers spin briefly before sleeping); when the pool is taken (another
/// thread's loop, or a loop inside a loop), libdispatch's `concurrentPerform`.
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
        run(workers: n) { w in
            let lo = count * w / n, hi = count * (w + 1) / n
            body(lo..<hi, w)
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
        run(workers: n) { w in
            while true {
                let i = next.increment()
                guard i < count else { break }
                body(i, w)
            }
        }
    }

    /// Calls `body(w)` for `w` in `0..<workers` concurrently.
    private static func run(workers n: Int, _ body: (Int) -> Void) {
        withoutActuallyEscaping(body) { body in
            var job = body
            let ran = withUnsafeMutablePointer(to: &job) { job in
                aimetk_pool_run(Int32(n), { context, w in
                    context!.assumingMemoryBound(to: ((Int) -> Void).self).pointee(Int(w))
                }, job)
            }
            guard ran != 0 else { return }
            let task = UncheckedSendable(body)
            DispatchQueue.concurrentPerform(iterations: n) { w in task.value(w) }
        }
    }
}
