import AimetCore
import CAimetABI
import Glibc

// MARK: - Handles

/// A misused handle, reported with its own status: a stale or foreign handle
/// (AIMET_STATUS_INVALID_HANDLE) or one another thread is using (AIMET_STATUS_BUSY).
struct HandleError: Error {
    let status: aimet_status_t
    let message: String
}

/// The object behind an opaque C handle. C never sees its address: a handle
/// is a number in the registry of live handles, never reused, so a freed,
/// doubly freed or made-up handle is found missing and reported instead of
/// touching freed memory, and a handle of the wrong kind is refused. A call
/// holds its own reference, so a concurrent free cannot pull the object from
/// under it; a trylock keeps two threads from using one handle at once.
class Handle {
    private let busy = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    /// Set under `busy` when freed: a call that looked the handle up before
    /// the free fails rather than working on a freed handle.
    private var freed = false
    /// The handle's number once registered.
    fileprivate var number: UInt?
    /// What the handle is, for messages ("model", "quantsim").
    class var kind: String { "handle" }

    init() { pthread_mutex_init(busy, nil) }

    deinit {
        pthread_mutex_destroy(busy)
        busy.deallocate()
    }

    /// Runs `body` with exclusive access, or fails if another thread holds it.
    func exclusive<R>(_ body: () throws -> R) throws -> R {
        guard pthread_mutex_trylock(busy) == 0 else {
            throw HandleError(status: AIMET_STATUS_BUSY,
                              message: "the \(Self.kind) is in use by another thread; a handle serves one thread at a time")
        }
        defer { pthread_mutex_unlock(busy) }
        guard !freed else { throw HandleError(status: AIMET_STATUS_INVALID_HANDLE, message: "the \(Self.kind) was freed") }
        return try body()
    }

    /// The handle for C: registers the object (kept alive until released).
    /// Numbers are never 0, so the bit cast never makes a NULL handle.
    var opaque: OpaquePointer { unsafeBitCast(registry.register(self), to: OpaquePointer.self) }

    /// The live handle `pointer` names, if it is one of this kind.
    static func from(_ pointer: OpaquePointer?) throws -> Self {
        guard let pointer else { throw nullError(kind) }
        let number = UInt(bitPattern: pointer)
        guard let found = registry.lookup(number) else {
            throw HandleError(status: AIMET_STATUS_INVALID_HANDLE, message: "\(describe(number)) is not a live \(kind) handle: already freed, or never returned by aimetcle")
        }
        guard let handle = found as? Self else {
            throw HandleError(status: AIMET_STATUS_INVALID_HANDLE, message: "\(describe(number)) is a \(type(of: found).kind) handle, not a \(kind) handle")
        }
        return handle
    }

    /// Frees a handle: NULL is a no-op; a stale handle, a handle of another
    /// kind or one in use by another thread is reported and left as it was.
    @discardableResult
    static func release(_ pointer: OpaquePointer?) -> Int32 {
        guarded("aimet_\(kind)_free") {
            guard pointer != nil else { return }
            let handle = try from(pointer)
            try handle.exclusive {
                handle.freed = true
                registry.remove(UInt(bitPattern: pointer))
            }
        }
    }

    private static func describe(_ number: UInt) -> String { "handle 0x\(String(number, radix: 16))" }
}

/// The live handles by number, behind one mutex. Numbers start far from
/// small integers and step by 16, so they look like (aligned) pointers.
private final class Registry: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private var live: [UInt: Handle] = [:]
    private var next: UInt = 0xA1E7_0000_0010

    init() { pthread_mutex_init(mutex, nil) }

    private func locked<R>(_ body: () -> R) -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return body()
    }

    func register(_ handle: Handle) -> UInt {
        locked {
            if let number = handle.number { return number }
            let number = next
            next += 16
            handle.number = number
            live[number] = handle
            return number
        }
    }

    func lookup(_ number: UInt) -> Handle? { locked { live[number] } }

    func remove(_ number: UInt) { locked { _ = live.removeValue(forKey: number) } }
}

private let registry = Registry()

/// What an `aimet_model_t *` points to: a model, the last transform's report,
/// and the compiled executor.
final class ModelHandle: Handle {
    override class var kind: String { "model" }
    /// Any change to the model drops the compiled executor.
    var model: Model { didSet { compiled = nil } }
    var report = EqualizeReport()
    /// The last AdaRound's per-layer report and weight encodings.
    var adaRound: (report: [AdaRoundLayerReport], encodings: EncodingsFile)?
    private var compiled: Executor?

    init(_ model: Model) {
        self.model = model
        super.init()
    }

    /// The executor for the current model, compiled on first use.
    func executor() throws -> Executor {
        if let compiled { return compiled }
        let executor = try Executor(graph: model.graph, opset: model.onnxOpset ?? 17)
        compiled = executor
        return executor
    }
}

/// Runs `body` on the handle's model, exclusively.
func withModel<R>(_ pointer: OpaquePointer?, _ body: (ModelHandle) throws -> R) throws -> R {
    let handle = try ModelHandle.from(pointer)
    return try handle.exclusive { try body(handle) }
}

func requiredString(_ p: UnsafePointer<CChar>?, _ what: String) throws -> String {
    guard let p else { throw nullError(what) }
    return String(cString: p)
}

func stringArray(_ p: UnsafePointer<UnsafePointer<CChar>?>?, _ count: Int32, _ what: String) throws -> [String] {
    guard count >= 0 else { throw AimetError(.invalidArgument, "\(what): count \(count) is negative") }
    if count == 0 { return [] }
    guard let p else { throw nullError(what) }
    return try (0..<Int(count)).map { try requiredString(p[$0], "\(what)[\($0)]") }
}

func int64Array(_ p: UnsafePointer<Int64>?, _ count: Int32, _ what: String) throws -> [Int] {
    guard count >= 0, count <= 64 else { throw AimetError(.invalidArgument, "\(what): count \(count) is out of range") }
    if count == 0 { return [] }
    guard let p else { throw nullError(what) }
    return (0..<Int(count)).map { Int(p[$0]) }
}

/// Query-size-then-fill for a text result.
func fillText(_ text: String, _ buffer: UnsafeMutablePointer<CChar>?, _ capacity: Int64,
              _ length: UnsafeMutablePointer<Int64>?) throws {
    guard let length else { throw nullError("length") }
    let bytes = Array(text.utf8CString)
    length.pointee = Int64(bytes.count)
    guard let buffer, capacity >= Int64(bytes.count) else { return }
    bytes.withUnsafeBufferPointer { buffer.update(from: $0.baseAddress!, count: bytes.count) }
}
