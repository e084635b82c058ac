// Elementwise arithmetic with broadcasting.

extension OpCatalogue {
    static let elementwise: [OpEntry] = [
        binary("Add", .add), binary("Sub", .sub), binary("Mul", .mul), binary("Div", .div),
    ]

    /// A two-input op with numpy broadcasting.
    private static func binary(_ type: String, _ operation: BinaryKernel.Operation) -> OpEntry {
        OpEntry(type) { c in c.step(BinaryKernel(operation), [try c.input(0, "A"), try c.input(1, "B")]) }
    }
}
