/// AIMET's quantization schemes (`aimet_common.defs.QuantScheme`), by AIMET's
/// own names (the raw values).
///
/// The range-learning schemes start from a TF / TF-enhanced calibration and
/// then train the ranges; this library does not train ranges, so they calibrate
/// exactly like their initialisation. Percentile calibration is named for
/// compatibility with AIMET scripts but not implemented.
public enum QuantScheme: String, CaseIterable, Sendable {
    case postTrainingTF = "post_training_tf"
    case postTrainingTFEnhanced = "post_training_tf_enhanced"
    case trainingRangeLearningWithTFInit = "training_range_learning_with_tf_init"
    case trainingRangeLearningWithTFEnhancedInit = "training_range_learning_with_tf_enhanced_init"
    case postTrainingPercentile = "post_training_percentile"

    /// How a scheme turns observed values into an encoding.
    public enum Calibration: Sendable, Equatable {
        /// TF: the observed min / max (`MinMaxEncodingAnalyzer`).
        case minMax
        /// TF-enhanced: SQNR search over a histogram (`SqnrEncodingAnalyzer`).
        case sqnr
        /// Percentile clipping of a histogram (not implemented).
        case percentile
    }

    public var calibration: Calibration {
        switch self {
        case .postTrainingTF, .trainingRangeLearningWithTFInit: return .minMax
        case .postTrainingTFEnhanced, .trainingRangeLearningWithTFEnhancedInit: return .sqnr
        case .postTrainingPercentile: return .percentile
        }
    }

    /// Looks a scheme up by AIMET's name (`"post_training_tf"`, ...).
    public init(name: String) throws {
        guard let scheme = QuantScheme(rawValue: name) else {
            let known = QuantScheme.allCases.map(\.rawValue).joined(separator: ", ")
            throw AimetError.unknownName("unknown quant scheme '\(name)'; expected one of \(known)")
        }
        self = scheme
    }
}
