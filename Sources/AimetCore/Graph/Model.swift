/// A model: the graph the library works on, and — for a model loaded from
/// ONNX — the original protobuf, which supplies everything the graph does not
/// interpret when the model is saved again.
public struct Model: Sendable {
    public var graph: Graph
    var source: OnnxSource?

    public init(graph: Graph) {
        self.graph = graph
        self.source = nil
    }

    /// Runs `transform` on a copy and keeps the result only if it succeeds, so
    /// a failing transform leaves the model exactly as it was.
    public mutating func transact<R>(_ transform: (inout Model) throws -> R) throws -> R {
        var copy = self
        let result = try transform(&copy)
        self = copy
        return result
    }
}
