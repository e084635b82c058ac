import XCTest
@testable import AimetCore

final class HighBiasFoldTests: XCTestCase {
    func testHandComputedWithReLU() throws {
        // 2 channels; beta = [10, 1], gamma = [1, 1], S = [2, 1]:
        // beta' = [5, 1], gamma' = [0.5, 1]; c = max(0, beta' - 3|gamma'|) = [3.5, 0].
        var l1 = try WeightLayer(name: "a", kind: .conv2d, weight: Tensor(shape: [2, 1, 1, 1], data: [1, 1]), bias: [6, 2])
        var l2 = try WeightLayer(name: "b", kind: .conv2d, weight: Tensor(shape: [1, 2, 1, 2], data: [1, 2, 3, 4]), bias: [1])
        let applied = try HighBiasFold.foldPair(&l1, &l2, bnGamma: [1, 1], bnBeta: [10, 1], scale: [2, 1], reluBetween: true)
        XCTAssertTrue(applied)
        XCTAssertEqual(l1.bias!, [2.5, 2])
        // b2 += W2.sum(k) @ c = (1 + 2) * 3.5 + (3 + 4) * 0 = 10.5
        XCTAssertEqual(l2.bias!, [11.5])
    }

    func testWithoutReLUMovesAllOfBetaAndIsExact() throws {
        var l1 = makeLayer(.conv2d, [5, 3, 3, 3], seed: 1)
        var l2 = makeLayer(.conv2d, [4, 5, 3, 3], seed: 2)
        let bn = makeBatchNorm(5)
        let x = FeatureMap.random(3, 7, 7, seed: 3)
        // Without an activation between, y = L2(L1(x)); the moved bias keeps it exact
        // when L2 does not pad (the shift then reaches every output position).
        let before = forward(l2, forward(l1, x))
        let scale: [Float] = [1, 2, 0.5, 4, 1]
        try HighBiasFold.foldPair(&l1, &l2, bnGamma: bn.gamma, bnBeta: bn.beta, scale: scale, reluBetween: false)
        assertClose(forward(l2, forward(l1, x)).data, before.data)
    }

    func testDepthwiseSecondLayerIsElementwise() throws {
        var l1 = makeLayer(.conv2d, [3, 2, 1, 1], seed: 1)
        var dw = makeLayer(.conv2d, [3, 1, 3, 3], groups: 3, seed: 2)
        let b2 = dw.bias!
        let sums = (0..<3).map { ch in dw.weight.data[(ch * 9)..<(ch * 9 + 9)].reduce(0, +) }
        try HighBiasFold.foldPair(&l1, &dw, bnGamma: [0, 0, 0], bnBeta: [1, 2, 3], scale: [1, 1, 1], reluBetween: true)
        assertClose(dw.bias!, (0..<3).map { b2[$0] + sums[$0] * Float($0 + 1) })
    }

    func testMissingBiasSkipsThePair() throws {
        var l1 = makeLayer(.conv2d, [3, 2, 1, 1], seed: 1)
        var l2 = makeLayer(.conv2d, [2, 3, 1, 1], bias: false, seed: 2)
        let before = (l1, l2)
        XCTAssertFalse(try HighBiasFold.foldPair(&l1, &l2, bnGamma: [1, 1, 1], bnBeta: [5, 5, 5], scale: [1, 1, 1], reluBetween: true))
        XCTAssertEqual(l1, before.0)
        XCTAssertEqual(l2, before.1)
    }

    func testBadInputs() {
        var l1 = makeLayer(.conv2d, [3, 2, 1, 1]), l2 = makeLayer(.conv2d, [2, 3, 1, 1])
        assertThrows(.shapeMismatch, containing: "scale factor has 2 entries") {
            try HighBiasFold.foldPair(&l1, &l2, bnGamma: [1, 1, 1], bnBeta: [1, 1, 1], scale: [1, 1], reluBetween: true)
        }
        assertThrows(.numeric, containing: "BN beta is not finite") {
            try HighBiasFold.foldPair(&l1, &l2, bnGamma: [1, 1, 1], bnBeta: [1, .infinity, 1], scale: [1, 1, 1], reluBetween: true)
        }
    }
}
