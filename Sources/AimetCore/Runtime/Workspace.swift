/// Scratch memory of one worker (im2col columns, GEMM results), kept between
/// runs so big temporaries are allocated once and then reused. Each slot
/// grows to the largest request and never shrinks; contents do not survive
/// a request. Used by one thread at a time (the executor hands them out).
final class Workspace: @unchecked Sendable {
    /// Slots 0 and 1 are kernel scratch (im2col columns, GEMM results, padded planes).
    /// The staged runner keeps a chunk's values in `arenaSlot` and the run's
    /// full-batch values in `boundarySlot` (of the first workspace).
    static let arenaSlot = 2
    static let boundarySlot = 3
    /// A third kernel scratch slot.
    static let extraSlot = 4

    private var slots: [(pointer: UnsafeMutablePointer<Float>, capacity: Int)] = []

    /// At least `count` floats of slot `slot` (uninitialized; 64-byte aligned).
    func floats(_ count: Int, slot: Int = 0) -> UnsafeMutablePointer<Float> {
        while slots.count <= slot { slots.append((Workspace.allocate(16), 16)) }
        if slots[slot].capacity < count {
            slots[slot].pointer.deallocate()
            // Grow by a quarter beyond the request, so slowly growing batches do not reallocate every time.
            let capacity = count + count / 4
            slots[slot] = (Workspace.allocate(capacity), capacity)
        }
        return slots[slot].pointer
    }

    /// Bytes held.
    var byteCount: Int { slots.reduce(0) { $0 + $1.capacity * 4 } }

    private static func allocate(_ count: Int) -> UnsafeMutablePointer<Float> {
        UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * 4, alignment: 64).bindMemory(to: Float.self, capacity: max(count, 1))
    }

    deinit {
        for slot in slots { slot.pointer.deallocate() }
    }
}
