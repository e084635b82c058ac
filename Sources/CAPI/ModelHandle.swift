import AimetCore
import CAimetABI
import Glibc

/// What an `aimet_model_t *` points to: a model, the last transform's report,
/// and a guard against use from two threads at once.
final class ModelHandle {
    var model: Model
    var report = EqualizeReport()
    private var busy = pthread_mutex_t()

    init(_ model: Model) {
        self.model = model
        pthread_mutex_init(&busy, nil)
    }

    deinit { pthread_mutex_destroy(&busy) }

    /// Runs `body` with exclusive access, or fails if another thread holds it.
    func exclusive<R>(_ body: (ModelHandle) throws -> R) throws -> R {
        guard pthread_mutex_trylock(&busy) == 0 else {
            throw AimetError(.invalidArgument, "the model is in use by another thread; a model handle serves one thread at a time")
        }
        defer { pthread_mutex_unlock(&busy) }
        return try body(self)
    }

    var opaque: OpaquePointer { OpaquePointer(Unmanaged.passRetained(self).toOpaque()) }

    static func from(_ pointer: OpaquePointer?) throws -> ModelHandle {
        guard let pointer else { throw nullError("model") }
        return Unmanaged<ModelHandle>.fromOpaque(UnsafeRawPointer(pointer)).takeUnretainedValue()
    }

    static func release(_ pointer: OpaquePointer?) {
        guard let pointer else { return }
        Unmanaged<ModelHandle>.fromOpaque(UnsafeRawPointer(pointer)).release()
    }
}

/// Runs `body` on the handle's model, exclusively.
func withModel<R>(_ pointer: OpaquePointer?, _ body: (ModelHandle) throws -> R) throws -> R {
    try ModelHandle.from(pointer).exclusive(body)
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
