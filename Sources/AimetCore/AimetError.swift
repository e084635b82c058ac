/// The one error type of the core. Every failure the C ABI reports starts here:
/// `kind` becomes the status code, `message` the text of `aimet_last_error()`.
public struct AimetError: Error, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        case invalidArgument
        case nullPointer
        case shapeMismatch
        case numeric
        case unsupported
        case io
        case format
        case notFound
        case unknownName
        /// The caller asked to stop (a progress callback).
        case cancelled
        case internalError
    }

    public let kind: Kind
    public let message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }

    static func invalid(_ message: String) -> AimetError { AimetError(.invalidArgument, message) }
    static func shape(_ message: String) -> AimetError { AimetError(.shapeMismatch, message) }
    static func numeric(_ message: String) -> AimetError { AimetError(.numeric, message) }
    static func unsupported(_ message: String) -> AimetError { AimetError(.unsupported, message) }
    static func format(_ message: String) -> AimetError { AimetError(.format, message) }
    static func io(_ message: String) -> AimetError { AimetError(.io, message) }
    static func notFound(_ message: String) -> AimetError { AimetError(.notFound, message) }
    static func unknownName(_ message: String) -> AimetError { AimetError(.unknownName, message) }
}
