import Foundation
import XCTest
@testable import AimetCore

final class RuntimeTests: XCTestCase {
    private static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
    private static let dataFolder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("data")

    private func floats(_ name: String) throws -> [Float] {
        let data = try Data(contentsOf: RuntimeTests.fixtures.appendingPathComponent(name))
        return data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    }

    func testDigitsModelMatchesOnnxruntime() throws {
        let model = try Model.load(onnxFile: RuntimeTests.dataFolder.appendingPathComponent("digits_mbv2.onnx").path)
        let executor = try Executor(model: model)
        let x = try Tensor(shape: [32, 1, 16, 16], data: floats("digits_x32.bin"))
        let expected = try floats("digits_logits.bin")
        let fused = try executor.run(["input": x])["logits"]!
        XCTAssertEqual(fused.shape, [32, 10])
        assertClose(fused.data, expected, tolerance: 1e-4)
        var seen: [String] = []
        let exact = try executor.run(["input": x]) { name, _ in seen.append(name) }["logits"]!
        assertClose(exact.data, expected, tolerance: 1e-4)
        XCTAssertEqual(seen.first, "input")
    }
}
