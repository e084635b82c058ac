import XCTest
@testable import AimetCore

final class CrossLayerScalingTests: XCTestCase {
    func testPairHandComputed() throws {
        // L1: 2 out channels with ranges r1 = [4, 1]; L2: input ranges c2 = [1, 4].
        // S = r1 / sqrt(r1 * c2) = [4/2, 1/2] = [2, 0.5].
        var l1 = try WeightLayer(name: "a", kind: .conv2d, weight: Tensor(shape: [2, 1, 1, 1], data: [-4, 1]), bias: [2, 3])
        var l2 = try WeightLayer(name: "b", kind: .conv2d, weight: Tensor(shape: [1, 2, 1, 1], data: [1, -4]), bias: [0])
        let s = try CrossLayerScaling.scalePair(&l1, &l2)
        XCTAssertEqual(s, [2, 0.5])
        XCTAssertEqual(l1.weight.data, [-2, 2])
        XCTAssertEqual(l1.bias!, [1, 6])
        XCTAssertEqual(l2.weight.data, [2, -2])
        XCTAssertEqual(l2.bias!, [0])
    }

    func testPairEqualizesRangesAndPreservesFunctionThroughReLU() throws {
        let cases: [(WeightLayer, WeightLayer)] = [
            (makeLayer(.conv2d, [8, 3, 3, 3], seed: 1), makeLayer(.conv2d, [5, 8, 3, 3], seed: 2)),
            (makeLayer(.conv2d, [8, 1, 3, 3], groups: 8, seed: 3), makeLayer(.conv2d, [4, 8, 1, 1], seed: 4)),
            (makeLayer(.conv1d, [6, 3, 3], seed: 5), makeLayer(.conv1d, [2, 6, 3], seed: 6)),
            (makeLayer(.conv2d, [6, 3, 3, 3], seed: 7), makeLayer(.convTranspose2d, [6, 4, 2, 2], seed: 8)),
            (makeLayer(.convTranspose2d, [3, 6, 2, 2], seed: 9), makeLayer(.conv2d, [4, 6, 3, 3], seed: 10)),
            (makeLayer(.conv2d, [6, 3, 3, 3], seed: 11), makeLayer(.conv2d, [4, 3, 3, 3], groups: 2, seed: 12)),
        ]
        for (first, second) in cases {
            var l1 = first, l2 = second
            // Make the ranges very unequal, as after a BN fold.
            l1.scaleOutputChannels(by: (0..<l1.outChannels).map { Float(1 << ($0 % 5)) })
            let x = FeatureMap.random(l1.inChannels, first.weight.rank == 3 ? 1 : 6, 6, seed: 99)
            let before = forward(l2, relu(forward(l1, x)))
            let s = try CrossLayerScaling.scalePair(&l1, &l2)
            XCTAssertEqual(s.count, l1.outChannels)
            assertClose(l1.outputChannelRanges, l2.inputChannelRanges)
            assertClose(forward(l2, relu(forward(l1, x))).data, before.data)
        }
    }

    func testTripletEqualizesAllThreeAndPreservesFunction() throws {
        var l1 = makeLayer(.conv2d, [6, 3, 1, 1], seed: 1)
        var dw = makeLayer(.conv2d, [6, 1, 3, 3], groups: 6, seed: 2)
        var l3 = makeLayer(.conv2d, [4, 6, 1, 1], seed: 3)
        l1.scaleOutputChannels(by: [1, 8, 0.25, 3, 1, 16])
        let x = FeatureMap.random(3, 7, 7, seed: 4)
        let before = forward(l3, relu(forward(dw, relu(forward(l1, x)))))
        let r1 = l1.outputChannelRanges, rdw = dw.outputChannelRanges, c3 = l3.inputChannelRanges
        let (s12, s23) = try CrossLayerScaling.scaleTriplet(&l1, &dw, &l3)
        let m = (0..<6).map { Float(cbrt(Double(r1[$0]) * Double(rdw[$0]) * Double(c3[$0]))) }
        assertClose(s12, (0..<6).map { r1[$0] / m[$0] })
        assertClose(s23, (0..<6).map { m[$0] / c3[$0] })
        assertClose(l1.outputChannelRanges, m)
        assertClose(dw.outputChannelRanges, m)
        assertClose(l3.inputChannelRanges, m)
        assertClose(forward(l3, relu(forward(dw, relu(forward(l1, x))))).data, before.data)
    }

    func testDeadChannelsGetFactorOne() throws {
        // Channel 1 of L1 is all zero (0/0 = NaN), channel 2 of L2's input is zero (x/0 = inf).
        var l1 = try WeightLayer(name: "a", kind: .conv2d, weight: Tensor(shape: [3, 1, 1, 1], data: [2, 0, 3]), bias: nil)
        var l2 = try WeightLayer(name: "b", kind: .conv2d, weight: Tensor(shape: [1, 3, 1, 1], data: [8, 5, 0]), bias: nil)
        let s = try CrossLayerScaling.scalePair(&l1, &l2)
        XCTAssertEqual(s[0], 0.5)
        XCTAssertEqual(s[1], 1)
        XCTAssertEqual(s[2], 1)
        XCTAssertTrue(l1.weight.data.allSatisfy(\.isFinite) && l2.weight.data.allSatisfy(\.isFinite))
    }

    func testErrorsLeaveLayersUntouched() {
        let conv = makeLayer(.conv2d, [6, 3, 3, 3])
        let wrong = makeLayer(.conv2d, [4, 5, 3, 3])
        let linear = makeLayer(.linear, [4, 6])
        let notDepthwise = makeLayer(.conv2d, [6, 3, 3, 3], groups: 2)
        var a = conv, b = wrong, c = linear, d = notDepthwise, e = makeLayer(.conv2d, [2, 6, 1, 1])
        assertThrows(.shapeMismatch, containing: "6 output channels") { _ = try CrossLayerScaling.scalePair(&a, &b) }
        assertThrows(.unsupported, containing: "Linear 'l' cannot be cross-layer scaled") {
            _ = try CrossLayerScaling.scalePair(&a, &c)
        }
        assertThrows(.unsupported, containing: "not depthwise") { _ = try CrossLayerScaling.scaleTriplet(&a, &d, &e) }
        XCTAssertEqual(a, conv)
        XCTAssertEqual(b, wrong)
        XCTAssertEqual(d, notDepthwise)
    }
}
