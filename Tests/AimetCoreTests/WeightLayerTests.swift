import XCTest
@testable import AimetCore

final class WeightLayerTests: XCTestCase {
    func testChannelGeometryPerLayout() {
        XCTAssertEqual(makeLayer(.conv2d, [8, 2, 3, 3], groups: 2).inChannels, 4)
        let t = makeLayer(.convTranspose2d, [6, 2, 3, 3], groups: 3)
        XCTAssertEqual(t.outChannels, 6)
        XCTAssertEqual(t.inChannels, 6)
        XCTAssertTrue(t.isDepthwise == false)
        XCTAssertTrue(makeLayer(.conv2d, [5, 1, 3, 3], groups: 5).isDepthwise)
        XCTAssertEqual(makeLayer(.linear, [3, 7]).inChannels, 7)
    }

    func testRangesOfATransposedConvUseItsOwnLayout() throws {
        // [Cin 2, Cout 3, 1, 1]: out channel o is column o, in channel i is row i.
        let t = try WeightLayer(name: "t", kind: .convTranspose2d,
                                weight: Tensor(shape: [2, 3, 1, 1], data: [1, -5, 2, 4, 0, -3]), bias: nil)
        XCTAssertEqual(t.outputChannelRanges, [4, 5, 3])
        XCTAssertEqual(t.inputChannelRanges, [5, 4])
    }

    func testConstructorValidation() {
        let w = try! Tensor(shape: [4, 2, 3, 3], data: [Float](repeating: 1, count: 72))
        assertThrows(.shapeMismatch, containing: "must have 3 dimensions") {
            _ = try WeightLayer(name: "c", kind: .conv1d, weight: w, bias: nil)
        }
        assertThrows(.shapeMismatch, containing: "bias has 3 entries") {
            _ = try WeightLayer(name: "c", kind: .conv2d, weight: w, bias: [0, 0, 0])
        }
        assertThrows(.shapeMismatch, containing: "not divisible by groups 3") {
            _ = try WeightLayer(name: "c", kind: .conv2d, weight: w, bias: nil, groups: 3)
        }
        assertThrows(.invalidArgument, containing: "groups must be >= 1") {
            _ = try WeightLayer(name: "c", kind: .conv2d, weight: w, bias: nil, groups: 0)
        }
        var bad = w
        bad.data[5] = .nan
        assertThrows(.numeric, containing: "weight is not finite at flat index 5") {
            _ = try WeightLayer(name: "c", kind: .conv2d, weight: bad, bias: nil)
        }
        assertThrows(.shapeMismatch, containing: "holds 72 elements") {
            _ = try Tensor(shape: [4, 2, 3, 3], data: [Float](repeating: 1, count: 71)).count
        }
    }
}
