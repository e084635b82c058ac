/// Wraps a value that is shared across worker threads by construction (the
/// workers write disjoint memory, and the value outlives them).
struct UncheckedSendable<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
