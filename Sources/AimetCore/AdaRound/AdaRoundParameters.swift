/// The settings of `AdaRound.apply` (AIMET's `AdaroundParameters` plus the
/// arguments of `apply_adaround`).
///
/// AIMET: `AdaroundParameters(data_loader, num_batches, default_num_iterations=None,
/// default_reg_param=0.01, default_beta_range=(20, 2), default_warm_start=0.2)` and
/// `apply_adaround(..., default_param_bw=4, param_bw_override_list=None,
/// ignore_quant_ops_list=None, default_quant_scheme=post_training_tf_enhanced,
/// default_config_file=None)`.
///
/// Layer names (ignore list, bitwidth overrides) may be given as the node
/// name, the weight parameter's name, or that name without a `.weight` suffix
/// (torch's module path, e.g. `features.0.0`).
public struct AdaRoundParameters: Sendable {
    /// How many calibration batches to cache (the first `numBatches` of the data).
    public var numBatches: Int
    /// Optimisation steps per layer; nil: 10000, or 15000 when any adarounded
    /// weight has fewer than 8 bits (AIMET's default).
    public var iterations: Int?
    /// Weight of the rounding loss.
    public var regParam: Float = 0.01
    /// β of the rounding loss, annealed from `start` to `end`.
    public var betaRange: (start: Double, end: Double) = (20, 2)
    /// Fraction of the iterations without rounding loss.
    public var warmStart: Double = 0.2
    /// Adam's learning rate (AIMET: 1e-3, fixed).
    public var learningRate: Double = 1e-3
    /// Cached samples per optimisation step (AIMET: 32).
    public var batchSize: Int = 32
    /// Seed of the mini-batch draws: the same seed gives the same weights, bit for
    /// bit (on one machine with the same `threads`: the split of the work fixes
    /// the order of the float sums).
    public var seed: UInt64 = 0
    /// Optional estimator: when set, each step of a Conv layer (depthwise
    /// ones too, when each output channel has its own input channel) uses this
    /// many output positions drawn uniformly from all cached images (with
    /// replacement) instead of `batchSize` whole images — an unbiased estimate
    /// of the same loss, much cheaper over large feature maps. Layers whose
    /// whole-image mini-batch has no more positions than this, transposed convs
    /// and linear layers keep whole samples.
    public var positionSamples: Int?
    /// Weight bitwidth (2...16).
    public var paramBitwidth: Int = 4
    /// Per-layer bitwidths, by layer name.
    public var paramBitwidthOverrides: [String: Int] = [:]
    /// Layers left alone (not adarounded, no encoding exported), by layer name.
    public var ignore: [String] = []
    /// How weight encodings are computed: `.postTrainingTF` or `.postTrainingTFEnhanced`.
    public var scheme: QuantScheme = .postTrainingTFEnhanced
    /// One encoding per output channel; nil: as `config` says (AIMET's default config: per tensor).
    public var perChannel: Bool?
    /// Symmetry and grid options of the weight encodings (AIMET's `default_config_file`).
    public var config: QuantSimConfig = .aimetDefault
    /// Worker threads; 0 = one per processor.
    public var threads: Int = 0

    public init(numBatches: Int, iterations: Int? = nil) {
        self.numBatches = numBatches
        self.iterations = iterations
    }

    /// AIMET's default iteration count for the given weight bitwidths.
    public func resolvedIterations(bitwidths: [Int]) -> Int {
        iterations ?? (bitwidths.contains { $0 < 8 } ? 15000 : 10000)
    }

    /// Checks the values that do not depend on the model.
    func validate() throws {
        guard numBatches >= 1 else {
            throw AimetError.invalid("num_batches must be at least 1, got \(numBatches)")
        }
        if let iterations, iterations < 1 {
            throw AimetError.invalid("the number of iterations must be at least 1, got \(iterations)")
        }
        guard batchSize >= 1 else { throw AimetError.invalid("the AdaRound batch size must be at least 1, got \(batchSize)") }
        if let positionSamples, positionSamples < 1 {
            throw AimetError.invalid("position_samples must be at least 1, got \(positionSamples)")
        }
        guard regParam.isFinite, regParam >= 0 else {
            throw AimetError.invalid("reg_param must be finite and >= 0, got \(regParam)")
        }
        guard betaRange.start.isFinite, betaRange.end.isFinite, betaRange.start > 0, betaRange.end > 0 else {
            throw AimetError.invalid("beta_range must hold two finite positive values, got (\(betaRange.start), \(betaRange.end))")
        }
        guard warmStart.isFinite, warmStart >= 0, warmStart < 1 else {
            throw AimetError.invalid("warm_start must lie in [0, 1), got \(warmStart)")
        }
        guard learningRate.isFinite, learningRate > 0 else {
            throw AimetError.invalid("the learning rate must be finite and > 0, got \(learningRate)")
        }
        guard threads >= 0 else { throw AimetError.invalid("threads must be >= 0 (0 = one per processor), got \(threads)") }
        try AdaRoundParameters.checkBitwidth(paramBitwidth, what: "default_param_bw")
        for (name, bits) in paramBitwidthOverrides.sorted(by: { $0.key < $1.key }) {
            try AdaRoundParameters.checkBitwidth(bits, what: "the bitwidth override for '\(name)'")
        }
        guard scheme == .postTrainingTF || scheme == .postTrainingTFEnhanced else {
            throw AimetError.invalid("AdaRound supports the quant schemes post_training_tf and post_training_tf_enhanced, got \(scheme.rawValue)")
        }
    }

    private static func checkBitwidth(_ bits: Int, what: String) throws {
        guard Encoding.supportedBitwidths.contains(bits) else {
            throw AimetError.invalid("\(what) is \(bits); AdaRound weight bitwidths must lie in \(Encoding.supportedBitwidths.lowerBound)...\(Encoding.supportedBitwidths.upperBound)")
        }
    }
}
