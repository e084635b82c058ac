import XCTest
@testable import AimetCore

final class BatchNormFoldTests: XCTestCase {
    // MARK: - Hand-computed cases

    func testAfterLayerHandComputed() throws {
        // Linear 2 -> 2, W = [[1, 2], [3, 4]], b = [1, -1]; BN gamma [2, 1], beta [0.5, 0],
        // mean [1, 2], var [3, 0] with eps 1: sigma = [2, 1], s = [1, 1].
        var layer = try WeightLayer(name: "fc", kind: .linear,
                                    weight: Tensor(shape: [2, 2], data: [1, 2, 3, 4]), bias: [1, -1])
        let bn = try BatchNormParams(gamma: [2, 1], beta: [0.5, 0], runningMean: [1, 2], runningVar: [3, 0], eps: 1)
        try BatchNormFold.fold(bn, into: &layer, position: .afterLayer)
        XCTAssertEqual(layer.weight.data, [1, 2, 3, 4])
        // b' = beta + (b - mu) * s = [0.5 + 0, 0 + (-3)]
        XCTAssertEqual(layer.bias!, [0.5, -3])
    }

    func testBeforeLayerHandComputed() throws {
        // Conv2d 2 -> 1, 1x2 kernel: W[0] = [[1, 2], [3, 4]] (in0: 1,2; in1: 3,4), no bias.
        // BN: gamma [2, 4], beta [1, 0], mean [0, 1], var [4, 16], eps 0 → sigma [2, 4], s [1, 1].
        // shift = beta - mu * s = [1, -1]; b' = W.sum(k) @ shift = 3 * 1 + 7 * -1 = -4.
        var layer = try WeightLayer(name: "c", kind: .conv2d,
                                    weight: Tensor(shape: [1, 2, 1, 2], data: [1, 2, 3, 4]), bias: nil)
        let bn = try BatchNormParams(gamma: [2, 4], beta: [1, 0], runningMean: [0, 1], runningVar: [4, 16], eps: 0)
        try BatchNormFold.fold(bn, into: &layer, position: .beforeLayer)
        XCTAssertEqual(layer.weight.data, [1, 2, 3, 4])
        XCTAssertEqual(layer.bias!, [-4])
    }

    func testBiaslessLayerGainsBias() throws {
        var layer = makeLayer(.conv2d, [4, 3, 3, 3], bias: false)
        XCTAssertNil(layer.bias)
        try BatchNormFold.fold(makeBatchNorm(4), into: &layer, position: .afterLayer)
        XCTAssertEqual(layer.bias?.count, 4)
    }

    // MARK: - Function preservation (oracle: naive forward)

    func testAfterLayerPreservesFunctionForEveryKind() throws {
        let cases: [(LayerKind, [Int], Int)] = [
            (.conv2d, [6, 4, 3, 3], 1), (.conv2d, [6, 2, 3, 3], 2), (.conv2d, [6, 1, 3, 3], 6),
            (.conv1d, [5, 3, 3], 1), (.linear, [7, 5], 1),
            (.convTranspose2d, [4, 6, 2, 2], 1), (.convTranspose2d, [4, 1, 3, 3], 4),
            (.convTranspose1d, [3, 5, 2], 1),
        ]
        for (kind, shape, groups) in cases {
            let layer = makeLayer(kind, shape, groups: groups, seed: 3)
            let bn = makeBatchNorm(layer.outChannels)
            let x = FeatureMap.random(layer.inChannels, kind == .linear ? 1 : (kind.weightRank == 3 ? 1 : 5),
                                      kind == .linear ? 1 : 6, seed: 11)
            let expected = batchNorm(bn, forward(layer, x, padding: 1))
            var folded = layer
            try BatchNormFold.fold(bn, into: &folded, position: .afterLayer)
            assertClose(forward(folded, x, padding: 1).data, expected.data)
        }
    }

    func testBeforeLayerPreservesFunction() throws {
        for (kind, shape) in [(LayerKind.conv2d, [5, 4, 3, 3]), (.conv1d, [5, 4, 3]), (.linear, [6, 4])] {
            let layer = makeLayer(kind, shape, seed: 5)
            let bn = makeBatchNorm(layer.inChannels)
            let x = FeatureMap.random(layer.inChannels, kind == .conv2d ? 6 : 1, kind == .linear ? 1 : 7, seed: 2)
            let expected = forward(layer, batchNorm(bn, x))
            var folded = layer
            try BatchNormFold.fold(bn, into: &folded, position: .beforeLayer)
            assertClose(forward(folded, x).data, expected.data)
        }
    }

    // MARK: - Validity rules

    func testBeforeLayerRejectsPaddingGroupsAndTransposed() throws {
        let bn = makeBatchNorm(4)
        let padded = makeLayer(.conv2d, [6, 4, 3, 3], padded: true)
        let grouped = makeLayer(.conv2d, [6, 2, 3, 3], groups: 2)
        let transposed = makeLayer(.convTranspose2d, [4, 6, 3, 3])
        for (layer, reason) in [(padded, "pads its input"), (grouped, "groups 2"), (transposed, "transposed")] {
            XCTAssertFalse(try BatchNormFold.check(layer, bn, .beforeLayer))
            var copy = layer
            assertThrows(.unsupported, containing: reason) {
                try BatchNormFold.fold(bn, into: &copy, position: .beforeLayer)
            }
            XCTAssertEqual(copy, layer, "a refused fold leaves the layer unchanged")
        }
    }

    func testTransposedAfterLayerNeedsGroupsOneOrInputChannels() throws {
        let grouped = makeLayer(.convTranspose2d, [4, 3, 3, 3], groups: 2) // Cin 4, Cout 6, groups 2
        XCTAssertFalse(try BatchNormFold.check(grouped, makeBatchNorm(6), .afterLayer))
        let depthwise = makeLayer(.convTranspose2d, [4, 1, 3, 3], groups: 4)
        XCTAssertTrue(try BatchNormFold.check(depthwise, makeBatchNorm(4), .afterLayer))
    }

    func testChannelMismatchIsAnError() {
        var layer = makeLayer(.conv2d, [6, 4, 3, 3])
        assertThrows(.shapeMismatch, containing: "5 features") {
            try BatchNormFold.fold(makeBatchNorm(5), into: &layer, position: .afterLayer)
        }
    }

    func testZeroSigmaIsAnErrorNotNaN() throws {
        let layer = makeLayer(.conv2d, [2, 1, 1, 1])
        let bn = try BatchNormParams(gamma: [1, 1], beta: [0, 0], runningMean: [0, 0], runningVar: [1, 0], eps: 0)
        var copy = layer
        assertThrows(.numeric, containing: "sigma") { try BatchNormFold.fold(bn, into: &copy, position: .afterLayer) }
        XCTAssertEqual(copy, layer)
    }

    func testNonFiniteBatchNormIsRejected() {
        assertThrows(.numeric, containing: "running_mean is not finite at index 1") {
            _ = try BatchNormParams(gamma: [1, 1], beta: [0, 0], runningMean: [0, .nan], runningVar: [1, 1], eps: 1e-5)
        }
        assertThrows(.numeric, containing: "running_var is negative") {
            _ = try BatchNormParams(gamma: [1], beta: [0], runningMean: [0], runningVar: [-1], eps: 1e-5)
        }
        assertThrows(.shapeMismatch, containing: "beta has 1 entries") {
            _ = try BatchNormParams(gamma: [1, 2], beta: [0], runningMean: [0, 0], runningVar: [1, 1], eps: 1e-5)
        }
    }
}
