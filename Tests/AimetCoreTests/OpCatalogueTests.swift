import XCTest
@testable import AimetCore

final class OpCatalogueTests: XCTestCase {
    /// One entry per op type: a type in two families would make one of them unreachable.
    func testEveryOpTypeIsCataloguedOnce() {
        var seen: [String: Int] = [:]
        for entry in OpCatalogue.families.joined() { seen[entry.type, default: 0] += 1 }
        XCTAssertEqual(seen.filter { $0.value > 1 }.keys.sorted(), [])
        XCTAssertEqual(OpCatalogue.entries.count, seen.count)
        XCTAssertGreaterThanOrEqual(seen.count, 141)
    }
}
