import Foundation
import XCTest
@testable import AimetCore

/// The inputs that crashed the ONNX loader fuzzer (bench/fuzz_onnx.sh), kept
/// in Fixtures/fuzz/ as `<stage>-<what crashed>.onnx`, and the fuzzer's seed
/// corpus (bench/fuzz/corpus/): each goes through the harness's pipeline — load,
/// export round trip, run, quantsim, equalize, export and run again — and must end in
/// models or `AimetError`s, never a trap; a crashing input must now meet an
/// error where it crashed.
final class FuzzRegressionTests: XCTestCase {
    private static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()

    /// The `.onnx` files of a folder (none when there is no such folder).
    private func inputs(_ folder: URL) -> [URL] {
        let files = (try? FileManager.default.contentsOfDirectory(at: folder, includingPropertiesForKeys: nil)) ?? []
        return files.filter { $0.pathExtension == "onnx" }.sorted { $0.path < $1.path }
    }

    /// What happened to one input: the AimetErrors met, by stage, and any
    /// other error (a bug: only AimetError may come out of the library).
    private struct Outcome {
        var errors: [String] = []
        var problems: [String] = []

        /// Runs one stage, recording how it failed; nil when it did.
        mutating func stage<R>(_ name: String, _ body: () throws -> R) -> R? {
            do {
                return try body()
            } catch let error as AimetError {
                errors.append("\(name): \(error.message)")
            } catch {
                problems.append("\(name) threw a non-AimetError: \(error)")
            }
            return nil
        }
    }

    /// The harness's pipeline on one input.
    private func pipeline(_ data: Data) -> Outcome {
        var outcome = Outcome()
        guard let model = outcome.stage("load", { try Model(onnxData: data) }) else { return outcome }
        check(model, "", &outcome)
        var equalized = model
        if outcome.stage("equalize", { try Equalize.run(&equalized) }) != nil {
            check(equalized, "after equalize: ", &outcome)
        }
        return outcome
    }

    /// Export and reload (an exported model must load again), then, as
    /// FUZZ_RUN=1, a run of the model and of its quantization simulation on
    /// small inputs of the declared shapes (free dimensions 1).
    private func check(_ model: Model, _ prefix: String, _ outcome: inout Outcome) {
        if let bytes = outcome.stage("\(prefix)export", { try model.onnxData() }) {
            do {
                _ = try Model(onnxData: bytes)
            } catch {
                outcome.problems.append("\(prefix)the export does not load again: \(error)")
            }
        }
        guard let inputs = model.graph.sampleInputs(maxValues: 4096) else { return }
        _ = outcome.stage("\(prefix)run") { try Executor(model: model).run(inputs) }
        guard let sim = outcome.stage("\(prefix)quantsim", { try QuantSim(model: model) }) else { return }
        sim.beginCalibration()
        _ = outcome.stage("\(prefix)quantsim") { try sim.run(inputs) }
        if outcome.stage("\(prefix)quantsim", { try sim.endCalibration() }) != nil {
            _ = outcome.stage("\(prefix)quantsim") { try sim.run(inputs) }
            _ = outcome.stage("\(prefix)quantsim") { try sim.encodingsFile().jsonText() }
        }
    }

    func testCrashingInputsNowFailCleanly() {
        for url in inputs(Self.root.appendingPathComponent("Fixtures/fuzz")) {
            let outcome = pipeline((try? Data(contentsOf: url)) ?? Data())
            XCTAssertEqual(outcome.problems, [], url.lastPathComponent)
            // The file name says where it crashed: that stage now fails with an error.
            let stage = String(url.lastPathComponent.prefix { $0 != "-" })
            XCTAssertTrue(outcome.errors.contains { $0.hasPrefix(stage) || $0.contains(": \(stage):") },
                          "\(url.lastPathComponent): no \(stage) error in \(outcome.errors)")
        }
    }

    func testSeedCorpusLoadsOrFailsCleanly() {
        let seeds = inputs(Self.root.appendingPathComponent("../../bench/fuzz/corpus").standardized)
        XCTAssertGreaterThanOrEqual(seeds.count, 10)
        var loaded = 0
        for url in seeds {
            let outcome = pipeline((try? Data(contentsOf: url)) ?? Data())
            XCTAssertEqual(outcome.problems, [], url.lastPathComponent)
            if !outcome.errors.contains(where: { $0.hasPrefix("load") }) { loaded += 1 }
        }
        XCTAssertGreaterThanOrEqual(loaded, 5, "the valid seeds load")
    }
}
