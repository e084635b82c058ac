// Reductions over axes.

extension OpCatalogue {
    static let reductions: [OpEntry] = []
}
