import Foundation
import Testing

@Suite("The module rule of DESIGN.md")
struct ModuleRuleTests {
    static let cards = ["PCNet", "E1000", "VirtioNet"]

    func imports(of module: String) -> Set<String> {
        let directory = repositoryRoot.appendingPathComponent("Sources/\(module)")
        guard let files = FileManager.default.enumerator(atPath: directory.path) else { return [] }
        var found = Set<String>()
        for case let file as String in files where file.hasSuffix(".swift") {
            let text = (try? String(contentsOf: directory.appendingPathComponent(file), encoding: .utf8)) ?? ""
            for line in text.split(separator: "\n") {
                let words = line.split(separator: " ")
                if let index = words.firstIndex(of: "import"), index + 1 < words.count {
                    found.insert(String(words[index + 1]))
                }
            }
        }
        return found
    }

    @Test func cardsNeverImportBackendsOrEachOther() {
        for card in Self.cards {
            let imported = imports(of: card)
            #expect(!imported.contains("NetBackend"), "\(card) imports NetBackend")
            for other in Self.cards where other != card {
                #expect(!imported.contains(other), "\(card) imports \(other)")
            }
        }
    }

    @Test func backendsNeverImportCards() {
        let imported = imports(of: "NetBackend")
        for card in Self.cards { #expect(!imported.contains(card), "NetBackend imports \(card)") }
    }

    @Test func coreImportsNothingOfOurs() {
        let imported = imports(of: "NICCore")
        for module in Self.cards + ["NetBackend", "NICHarness"] { #expect(!imported.contains(module)) }
        // CNICAccel is NICCore's own C shim (carry-less-multiplication CRC); nothing else of ours.
        #expect(imported.isSubset(of: ["Foundation", "Glibc", "Synchronization", "CNICAccel"]), "\(imported)")
    }

    @Test func theCLibrarysNetworkModulesNeedNoFoundation() {
        // libVNIC.a goes into C hypervisors: the card and backend modules it links stay on Glibc, so a host needs
        // only the Swift runtime libraries, not Foundation and ICU.
        for module in Self.cards + ["NetBackend", "VNIC"] {
            #expect(!imports(of: module).contains("Foundation"), "\(module) imports Foundation")
        }
    }
}
