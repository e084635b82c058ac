import AimetCore
import CAimetABI
import Glibc

// Conversions between the caller's C structs and the core's value types.
// Reading copies everything in, so a failing transform never touches the
// caller's buffers; writing back happens only after the whole call succeeded.

/// Largest element count accepted from a caller (guards overflow and absurd sizes).
private let maxElements = 1 << 40

func nullError(_ what: String) -> AimetError { AimetError(.nullPointer, "\(what) is NULL") }

func optionalName(_ p: UnsafePointer<CChar>?) -> String { p.map { String(cString: $0) } ?? "" }

func readFloats(_ p: UnsafePointer<Float>?, count: Int64, what: String) throws -> [Float] {
    guard count >= 0, count <= maxElements else {
        throw AimetError(.invalidArgument, "\(what): length \(count) is out of range")
    }
    guard let p else { throw nullError(what) }
    return Array(UnsafeBufferPointer(start: p, count: Int(count)))
}

extension Tensor {
    /// Whether the caller's `data` of shape `dims` equals this tensor bit for
    /// bit, read in place (false for NULL data or another shape).
    func holds(_ data: UnsafePointer<Float>?, _ dims: [Int]) -> Bool {
        guard let data, shape == dims else { return false }
        return self.data.withUnsafeBytes { bytes in bytes.baseAddress.map { memcmp($0, data, bytes.count) == 0 } ?? true }
    }
}

func layerKind(_ raw: Int32, _ label: String) throws -> LayerKind {
    switch aimet_layer_kind(rawValue: UInt32(bitPattern: raw)) {
    case AIMET_LAYER_CONV1D: return .conv1d
    case AIMET_LAYER_CONV2D: return .conv2d
    case AIMET_LAYER_CONV_TRANSPOSE1D: return .convTranspose1d
    case AIMET_LAYER_CONV_TRANSPOSE2D: return .convTranspose2d
    case AIMET_LAYER_LINEAR: return .linear
    default: throw AimetError(.invalidArgument, "\(label): unknown layer kind \(raw)")
    }
}

/// Copies a caller's layer into the core's value type, validating it.
func readLayer(_ pointer: UnsafePointer<aimet_layer_t>?, _ role: String) throws -> WeightLayer {
    guard let c = pointer?.pointee else { throw nullError(role) }
    let name = optionalName(c.name)
    let label = name.isEmpty ? role : "\(role) '\(name)'"
    let kind = try layerKind(c.kind, label)
    guard c.weight_ndim == Int32(kind.weightRank) else {
        throw AimetError(.shapeMismatch, "\(label): a \(kind) weight has \(kind.weightRank) dimensions, weight_ndim is \(c.weight_ndim)")
    }
    guard let shapePointer = c.weight_shape else { throw nullError("\(label): weight_shape") }
    let shape = Array(UnsafeBufferPointer(start: shapePointer, count: Int(c.weight_ndim)))
    var count: Int64 = 1
    for dim in shape {
        guard dim > 0 else { throw AimetError(.shapeMismatch, "\(label): weight shape \(shape) has a non-positive dimension") }
        let (product, overflow) = count.multipliedReportingOverflow(by: dim)
        guard !overflow, product <= maxElements else {
            throw AimetError(.invalidArgument, "\(label): weight shape \(shape) is too large")
        }
        count = product
    }
    let weight = try readFloats(c.weight, count: count, what: "\(label): weight")
    let bias = try c.bias.map { try readFloats($0, count: c.bias_len, what: "\(label): bias") }
    return try WeightLayer(name: name.isEmpty ? role : name, kind: kind,
                           weight: Tensor(shape: shape.map { Int($0) }, data: weight),
                           bias: bias, groups: Int(c.groups), padded: c.padded != 0)
}

/// Writes a transformed layer back into the caller's buffers.
func writeLayer(_ layer: WeightLayer, to pointer: UnsafePointer<aimet_layer_t>) {
    let c = pointer.pointee
    layer.weight.data.withUnsafeBufferPointer { src in
        c.weight!.update(from: src.baseAddress!, count: src.count)
    }
    if let bias = layer.bias, let dst = c.bias {
        bias.withUnsafeBufferPointer { dst.update(from: $0.baseAddress!, count: $0.count) }
    }
}

func readBatchNorm(_ pointer: UnsafePointer<aimet_batchnorm_t>?, needsStatistics: Bool = true) throws -> BatchNormParams {
    guard let c = pointer?.pointee else { throw nullError("bn") }
    let name = optionalName(c.name)
    let label = name.isEmpty ? "bn" : "bn '\(name)'"
    let n = c.num_features
    guard n > 0 else { throw AimetError(.invalidArgument, "\(label): num_features must be positive, got \(n)") }
    let gamma = try readFloats(c.gamma, count: n, what: "\(label): gamma")
    let beta = try readFloats(c.beta, count: n, what: "\(label): beta")
    let zeros = [Float](repeating: 0, count: Int(n))
    let mean = needsStatistics || c.running_mean != nil
        ? try readFloats(c.running_mean, count: n, what: "\(label): running_mean") : zeros
    let variance = needsStatistics || c.running_var != nil
        ? try readFloats(c.running_var, count: n, what: "\(label): running_var") : zeros
    return try BatchNormParams(name: name, gamma: gamma, beta: beta,
                               runningMean: mean, runningVar: variance, eps: c.eps)
}

func bnPosition(_ raw: Int32) throws -> BatchNormPosition {
    switch aimet_bn_position(rawValue: UInt32(bitPattern: raw)) {
    case AIMET_BN_AFTER_LAYER: return .afterLayer
    case AIMET_BN_BEFORE_LAYER: return .beforeLayer
    default: throw AimetError(.invalidArgument, "position must be AIMET_BN_AFTER_LAYER (0) or AIMET_BN_BEFORE_LAYER (1), got \(raw)")
    }
}
