extension Graph {
    /// Inputs of the declared shapes (free or unknown dimensions 1, an input
    /// without a shape [1]) filled with a fixed pattern, for smoke runs and
    /// the fuzzer; nil when an input would have more than `maxValues` values.
    public func sampleInputs(maxValues: Int) -> [String: Tensor]? {
        var result: [String: Tensor] = [:]
        for input in inputs {
            let shape = (input.shape ?? [1]).map { $0 <= 0 ? 1 : $0 }
            var count = 1
            for d in shape {
                let (product, overflow) = count.multipliedReportingOverflow(by: d)
                guard !overflow, product <= maxValues else { return nil }
                count = product
            }
            guard let tensor = try? Tensor(shape: shape, data: (0..<count).map { Float($0 % 7) - 3 }) else { return nil }
            result[input.name] = tensor
        }
        return result
    }
}
