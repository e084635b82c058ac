import Synchronization

/// A shared counter handing out consecutive integers to worker threads.
final class Counter: Sendable {
    private let value = Atomic<Int>(0)

    /// Returns the current value and adds 1 (0, 1, 2, ... across all callers).
    func increment() -> Int {
        value.add(1, ordering: .relaxed).oldValue
    }
}
