extension AdaRoundLayerReport {
    /// The report of one layer, for the C API and the command line.
    public var json: JSON {
        .object([
            ("name", .string(name)), ("weight", .string(weightName)), ("bitwidth", .int(bitwidth)),
            ("iterations", .int(iterations)), ("seconds", .double(seconds)),
            ("iterations_per_second", .double(iterationsPerSecond)),
            ("mse_nearest", .double(mseNearest)), ("mse_adaround", .double(mseAdaRound)),
            ("kept_nearest", .bool(keptNearest)),
        ])
    }
}
