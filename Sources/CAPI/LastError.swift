import AimetCore
import CAimetABI
import Glibc

// MARK: - Thread-local last error

/// One malloc'd C string per thread, freed when the thread exits or the next
/// error replaces it.
private let lastErrorKey: pthread_key_t = {
    var key = pthread_key_t()
    pthread_key_create(&key) { free($0) }
    return key
}()

private let emptyMessage: StaticString = ""

func recordError(_ message: String) {
    free(pthread_getspecific(lastErrorKey))
    pthread_setspecific(lastErrorKey, strdup(message))
}

func lastErrorPointer() -> UnsafePointer<CChar> {
    if let p = pthread_getspecific(lastErrorKey) {
        return UnsafePointer(p.assumingMemoryBound(to: CChar.self))
    }
    return UnsafeRawPointer(emptyMessage.utf8Start).assumingMemoryBound(to: CChar.self)
}

// MARK: - Status mapping

extension AimetError.Kind {
    var status: aimet_status_t {
        switch self {
        case .invalidArgument: return AIMET_STATUS_INVALID_ARGUMENT
        case .nullPointer: return AIMET_STATUS_NULL_POINTER
        case .shapeMismatch: return AIMET_STATUS_SHAPE_MISMATCH
        case .numeric: return AIMET_STATUS_NUMERIC
        case .unsupported: return AIMET_STATUS_UNSUPPORTED
        case .io: return AIMET_STATUS_IO
        case .format: return AIMET_STATUS_FORMAT
        case .notFound: return AIMET_STATUS_FILE_NOT_FOUND
        case .unknownName: return AIMET_STATUS_UNKNOWN_NAME
        case .cancelled: return AIMET_STATUS_CANCELLED
        case .internalError: return AIMET_STATUS_INTERNAL
        }
    }
}

/// The one wrapper around every fallible `@_cdecl` body: nothing thrown
/// crosses the boundary; it becomes a status and a thread-local message.
func guarded(_ function: String, _ body: () throws -> Void) -> Int32 {
    do {
        try body()
        return AIMET_STATUS_OK.rawValue
    } catch let error as AimetError {
        recordError("\(function): \(error.message)")
        return error.kind.status.rawValue
    } catch let error as HandleError {
        recordError("\(function): \(error.message)")
        return error.status.rawValue
    } catch {
        recordError("\(function): internal error: \(error)")
        return AIMET_STATUS_INTERNAL.rawValue
    }
}

func statusText(_ status: Int32) -> StaticString {
    switch aimet_status(rawValue: status) {
    case AIMET_STATUS_OK: return "ok"
    case AIMET_STATUS_INVALID_ARGUMENT: return "invalid argument"
    case AIMET_STATUS_NULL_POINTER: return "null pointer"
    case AIMET_STATUS_SHAPE_MISMATCH: return "shape mismatch"
    case AIMET_STATUS_NUMERIC: return "numeric error (NaN, infinity or zero sigma)"
    case AIMET_STATUS_UNSUPPORTED: return "unsupported"
    case AIMET_STATUS_IO: return "input/output error"
    case AIMET_STATUS_FORMAT: return "malformed model file"
    case AIMET_STATUS_FILE_NOT_FOUND: return "file not found"
    case AIMET_STATUS_UNKNOWN_NAME: return "unknown name"
    case AIMET_STATUS_INVALID_HANDLE: return "invalid handle (freed, or not a handle of that kind)"
    case AIMET_STATUS_BUSY: return "handle in use by another thread"
    case AIMET_STATUS_CANCELLED: return "cancelled"
    case AIMET_STATUS_INTERNAL: return "internal error"
    default: return "unknown status"
    }
}
