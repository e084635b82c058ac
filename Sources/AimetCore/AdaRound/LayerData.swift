/// The data AdaRound optimises each layer on, from one pass over the model.
///
/// Per calibration batch it keeps two walks (`Walk`): one of the float model,
/// one of the model whose earlier layers carry their adarounded weights
/// (activations in float). Layer after layer, in graph order, the second walk
/// goes on to the layer's node — the layer's input is then computed, from the
/// adarounded layers before it — and the first walk past the node whose output
/// is the layer's target. The next layer takes both on from there, with the
/// second walk's model recompiled for the weights just chosen. Every node thus
/// runs once per batch in each model, where running the model from its start
/// for each layer (AIMET does, stopping each run at the layer) costs a run
/// per layer: on MobileNetV2, 53 partial runs instead of 2.
struct LayerData {
    private let float: Executor
    private var quantized: Executor
    private let floatWalks: [Walk]
    private let quantizedWalks: [Walk]
    /// Every layer's target (the value AdaRound reconstructs), kept as the float walks compute them.
    private let targets: Set<String>
    /// Targets computed but not yet asked for, per batch.
    private var pending: [[String: Tensor]]
    /// The last layer's input, taken out of the quantized walks while AdaRound
    /// works on it (so its values are held once, concatenated, not also per batch
    /// — the input of an early layer is among the largest arrays): the name, the
    /// concatenated values and each batch's share, given back before the walks go on.
    private var lent: (name: String, data: [Float], counts: [Int])?
    private let opset: Int

    /// Walks of `graph` on each batch (graph input name → tensor, batch axis 0), before the first node.
    init(graph: Graph, opset: Int, threads: Int, batches: [[String: Tensor]], targets: Set<String>) throws {
        let executor = try Executor(graph: graph, opset: opset, threads: threads)
        float = executor
        quantized = executor
        floatWalks = try batches.map { try executor.walk($0) }
        quantizedWalks = try batches.map { try executor.walk($0) }
        self.targets = targets
        self.opset = opset
        pending = Array(repeating: [:], count: batches.count)
    }

    /// The input of node `node` (`inputName`) from the model with the weights
    /// chosen so far, and the value `targetName` (computed by node `end`, at or
    /// after `node`) from the float model; each over all batches, concatenated
    /// along axis 0. Layers must be asked for in graph order.
    mutating func layer(node: Int, inputName: String, end: Int, targetName: String,
                        what: String) throws -> (input: Tensor, target: Tensor) {
        giveBack()
        var inputs: [Tensor] = [], outputs: [Tensor] = []
        for b in floatWalks.indices {
            _ = try quantized.advance(quantizedWalks[b], toNode: node, keep: [])
            guard let input = quantized.take(quantizedWalks[b], inputName) else {
                throw AimetError(.internalError, "\(what): its input '\(inputName)' was not computed")
            }
            inputs.append(input)
            pending[b].merge(try float.advance(floatWalks[b], toNode: end + 1, keep: targets)) { _, new in new }
            guard let target = pending[b].removeValue(forKey: targetName) else {
                throw AimetError(.internalError, "\(what): its output '\(targetName)' was not computed")
            }
            outputs.append(target)
        }
        let input = try Self.concatenate(inputs, "input of \(what)")
        lent = (inputName, input.data, inputs.map(\.count))
        return (input, try Self.concatenate(outputs, "output of \(what)"))
    }

    /// Gives the last layer's input back to the quantized walks, batch by batch.
    private mutating func giveBack() {
        guard let (name, data, counts) = lent else { return }
        lent = nil
        if counts.count == 1 {
            quantized.giveBack(quantizedWalks[0], name, data)
            return
        }
        var start = 0
        for (b, count) in counts.enumerated() {
            quantized.giveBack(quantizedWalks[b], name, Array(data[start..<(start + count)]))
            start += count
        }
    }

    /// The layers from here on run with `graph`'s parameters (a layer's weights just chosen).
    mutating func parametersChanged(_ graph: Graph) throws {
        quantized = try Executor(graph: graph, opset: opset, threads: float.threads)
    }

    /// Tensors of equal non-batch shape, stacked along axis 0.
    static func concatenate(_ tensors: [Tensor], _ what: String) throws -> Tensor {
        let first = tensors[0]
        guard tensors.count > 1 else { return first }
        var data: [Float] = []
        data.reserveCapacity(tensors.reduce(0) { $0 + $1.count })
        var samples = 0
        for t in tensors {
            guard t.rank == first.rank, t.shape.dropFirst() == first.shape.dropFirst() else {
                throw AimetError.shape("the \(what) has shape \(first.shape) in the first batch and \(t.shape) in another; batches must differ only in size")
            }
            data.append(contentsOf: t.data)
            samples += t.shape[0]
        }
        return Tensor(validShape: [samples] + Array(first.shape.dropFirst()), data: data)
    }
}
