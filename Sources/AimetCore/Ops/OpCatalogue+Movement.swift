// Ops that rearrange data: transposes, padding, resizing, depth/space shuffles.

extension OpCatalogue {
    static let movement: [OpEntry] = []
}
