import XCTest
import CKernels
@testable import AimetCore

/// The vectorized activations (Sources/CKernels/activations.c) on every
/// instruction set this processor has, against `Activation.value`, the scalar
/// reference (libm's expf / tanhf, float64 erfc): within 1e-6 relative over
/// every 1/256 step of [−100, 100] and ±2^k · {1, 0.75, 1.5} out to the float
/// range's ends (relative to `|value| + 1e-30`: float32 results near the
/// denormal range), with bias and residual.
final class ActivationKernelTests: XCTestCase {
    let isas = [AIMETK_ISA_BASELINE, AIMETK_ISA_AVX2, AIMETK_ISA_AVX512].filter { $0.rawValue <= aimetk_best_isa().rawValue }

    static let vectorized: [Activation] = [
        .sigmoid, .tanh, .hardSigmoid(alpha: 0.2, beta: 0.5), .hardSigmoid(alpha: 1.0 / 6, beta: 0.4), .hardSwish,
        .silu, .swish(alpha: 0.7), .gelu(tanhApproximation: false), .gelu(tanhApproximation: true), .leakyRelu(0.1),
        .softsign, .thresholdedRelu(alpha: 0.5),
    ]

    static let inputs: [Float] = {
        var x = (-25600...25600).map { Float($0) / 256 }
        for k in -126...127 {
            let p = Float(sign: .plus, exponent: k, significand: 1)
            for m: Float in [1, 0.75, 1.5] where (p * m).isFinite { x += [p * m, -p * m] }
        }
        return x + [0, -0.0, .greatestFiniteMagnitude, -.greatestFiniteMagnitude]
    }()

    func testKernelsAgreeWithTheScalarReference() {
        let x = Self.inputs
        var rng = TestRandom(9)
        let residual = rng.floats(x.count, -0.5, 0.5)
        for f in Self.vectorized {
            XCTAssertNotNil(f.kernelCode, "\(f)")
            for isa in isas {
                for (bias, withResidual) in [(Float(0), false), (0.25, true)] {
                    var y = [Float](repeating: .nan, count: x.count)
                    x.withUnsafeBufferPointer { xb in residual.withUnsafeBufferPointer { rb in y.withUnsafeMutableBufferPointer { yb in
                        let (kind, a, b) = f.kernelCode ?? (AIMETK_ACT_SIGMOID, 0, 0)
                        aimetk_activation(kind, a, b, xb.baseAddress!, yb.baseAddress!, xb.count, bias,
                                          withResidual ? rb.baseAddress! : nil, isa)
                    } } }
                    var worst: Double = 0, at = 0
                    for i in x.indices {
                        let v = x[i] + bias + (withResidual ? residual[i] : 0)
                        let expected = f.value(v)
                        if !expected.isFinite || !y[i].isFinite {
                            XCTAssertEqual(y[i].isNaN, expected.isNaN, "\(f) at \(v)")
                            if !expected.isNaN { XCTAssertEqual(y[i], expected, "\(f) at \(v)") }
                            continue
                        }
                        let error = abs(Double(y[i]) - Double(expected))
                        let relative = error / (Double(abs(expected)) + 1e-30)
                        if relative > worst { worst = relative; at = i }
                    }
                    XCTAssertLessThan(worst, 1e-6, "\(f) isa \(isa.rawValue) bias \(bias): worst at x = \(x[at]): \(y[at])")
                }
            }
        }
    }

    /// NaN and ±∞ as the reference gives them (a NaN stays NaN, but ThresholdedRelu's `x > alpha ? x : 0` is 0).
    func testSpecialValues() {
        let x: [Float] = [.nan, .infinity, -.infinity] + Array(repeating: 0, count: 29)
        for f in Self.vectorized {
            for isa in isas {
                var y = [Float](repeating: 0, count: x.count)
                let (kind, a, b) = f.kernelCode ?? (AIMETK_ACT_SIGMOID, 0, 0)
                aimetk_activation(kind, a, b, x, &y, x.count, 0, nil, isa)
                for i in 0...2 {
                    let expected = f.value(x[i])
                    XCTAssertEqual(y[i].isNaN, expected.isNaN, "\(f) at \(x[i]) on isa \(isa.rawValue): \(y[i])")
                    if !expected.isNaN { XCTAssertEqual(y[i], expected, "\(f) at \(x[i]) on isa \(isa.rawValue)") }
                }
            }
        }
    }

    /// The spans `Activation.apply` hands to the C kernel: the same as the scalar loops to 1e-6.
    func testApplyLongAndShortRuns() {
        var rng = TestRandom(3)
        let x = rng.floats(1000, -8, 8)
        for f in Self.vectorized + [.elu(alpha: 0.5, gamma: 1), .celu(alpha: 2), .softplus, .mish] {
            var long = [Float](repeating: 0, count: x.count)
            x.withUnsafeBufferPointer { xb in long.withUnsafeMutableBufferPointer { yb in
                f.apply(xb.baseAddress!, to: yb.baseAddress!, xb.count)
            } }
            for i in x.indices {
                XCTAssertEqual(long[i], f.value(x[i]), accuracy: 1e-6 * max(abs(f.value(x[i])), 1e-30), "\(f) at \(x[i])")
            }
        }
    }
}
