import AimetCore
import CAimetABI
import Glibc

/// The object behind an opaque C handle: retained while the caller holds the
/// pointer, and guarded against use from two threads at once.
class Handle {
    private var busy = pthread_mutex_t()
    /// What the handle is, for messages ("model", "quantsim").
    class var kind: String { "handle" }

    init() { pthread_mutex_init(&busy, nil) }

    deinit { pthread_mutex_destroy(&busy) }

    /// Runs `body` with exclusive access, or fails if another thread holds it.
    func exclusive<R>(_ body: () throws -> R) throws -> R {
        guard pthread_mutex_trylock(&busy) == 0 else {
            throw AimetError(.invalidArgument, "the \(Self.kind) is in use by another thread; a handle serves one thread at a time")
        }
        defer { pthread_mutex_unlock(&busy) }
        return try body()
    }

    var opaque: OpaquePointer { OpaquePointer(Unmanaged.passRetained(self).toOpaque()) }

    static func from(_ pointer: OpaquePointer?) throws -> Self {
        guard let pointer else { throw nullError(kind) }
        return Unmanaged<Self>.fromOpaque(UnsafeRawPointer(pointer)).takeUnretainedValue()
    }

    static func release(_ pointer: OpaquePointer?) {
        guard let pointer else { return }
        Unmanaged<Handle>.fromOpaque(UnsafeRawPointer(pointer)).release()
    }
}

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
