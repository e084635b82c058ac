import AimetCore
#if canImport(Glibc)
import Glibc
#endif

// MARK: - Text formatting

/// `[?, 1, 16, 16]` (free dimensions as `?`), or `(unknown shape)`.
func formatShape(_ shape: [Int]?) -> String {
    guard let shape else { return "(unknown shape)" }
    return "[" + shape.map { $0 < 0 ? "?" : String($0) }.joined(separator: ", ") + "]"
}

/// 34682 → `34,682`.
func grouped(_ n: Int) -> String {
    let digits = String(n.magnitude)
    var out = ""
    for (k, c) in digits.enumerated() {
        if k > 0 && (digits.count - k) % 3 == 0 { out += "," }
        out.append(c)
    }
    return (n < 0 ? "-" : "") + out
}

/// Milliseconds with one decimal.
func ms(_ value: Double) -> String {
    let tenths = Int((value * 10).rounded())
    return "\(tenths / 10).\(tenths % 10) ms"
}

/// A number in 4 significant digits (`%.4g`).
func short(_ value: Float) -> String {
    var buffer = [CChar](repeating: 0, count: 32)
    _ = withVaList([Double(value)]) { vsnprintf(&buffer, buffer.count, "%.4g", $0) }
    return buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
}

func padded(_ s: String, _ width: Int) -> String {
    s.count >= width ? s : s + String(repeating: " ", count: width - s.count)
}

func plural(_ n: Int, _ word: String, _ plural: String? = nil) -> String {
    "\(n) \(n == 1 ? word : (plural ?? word + "s"))"
}

// MARK: - Reports

extension EqualizeReport {
    /// The report as text. `would`: phrase it as what equalization would do.
    func printText(options: Equalize.Options, would: Bool) {
        // Folded BatchNorms, in columns.
        if options.foldBatchNorms {
            let verb = would ? "would fold" : "folded"
            print("BatchNorm fold: \(plural(folded.count, "BatchNormalization node")) \(verb)"
                  + (folded.isEmpty ? "" : " (layer ← batchnorm):"))
            let width = folded.map(\.layer.count).max() ?? 0
            for pair in folded {
                let note = pair.position == .beforeLayer ? "   (the BN comes before the layer)" : ""
                print("  \(padded(pair.layer, width))  ← \(pair.batchNorm)\(note)")
            }
        } else {
            print("BatchNorm fold: off (--no-bn-fold)")
        }
        if options.replaceRelu6 {
            print("ReLU6 → ReLU: \(plural(relu6Replaced.count, "ReLU6 node")) \(would ? "would be" : "were") replaced")
        } else {
            print("ReLU6 → ReLU: off (--keep-relu6)")
        }
        if options.scale {
            print("Cross-layer scaling: \(plural(clsSets.count, "CLS set")) \(would ? "would be scaled" : "scaled")"
                  + (clsSets.isEmpty ? "" : " (relu: a ReLU joins the layer to the one above; S: min .. max of the factors):"))
            let width = clsSets.flatMap(\.layers).map(\.count).max() ?? 0
            for (n, set) in clsSets.enumerated() {
                print("  \(n + 1). \(set.kind)")
                for (k, layer) in set.layers.enumerated() {
                    guard k > 0 else {
                        print("       \(layer)")
                        continue
                    }
                    let factor = set.layers.count == 3 ? (k == 1 ? "S12" : "S23") : "S  "
                    let s = set.scales[k - 1]
                    let range = "\(short(s.min() ?? .nan)) .. \(short(s.max() ?? .nan))"
                    print("       \(padded(layer, width))  \(set.reluBetween[k - 1] ? "relu" : "    ")  \(factor) \(range)")
                }
            }
        } else {
            print("Cross-layer scaling: off (--no-scale)")
        }
        if options.scale && options.highBiasFold {
            print("High-bias fold: \(plural(highBiasFolded, "pair")) \(would ? "would be folded" : "folded")")
        } else {
            print("High-bias fold: off (\(options.scale ? "--no-high-bias-fold" : "--no-scale"))")
        }
    }
}
