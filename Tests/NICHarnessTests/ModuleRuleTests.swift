import Foundation
import NICTestSupport
import Testing

@Suite("The module rule of Documentation/ARCHITECTURE.md")
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

    /// The dependencies Package.swift gives `target`, read from its text.
    func packageDependencies(of target: String) throws -> Set<String> {
        let manifest = try String(contentsOf: repositoryRoot.appendingPathComponent("Package.swift"), encoding: .utf8)
        let marker = "name: \"\(target)\", dependencies: ["
        let start = try #require(manifest.range(of: marker), "no target \(target) in Package.swift")
        let rest = manifest[start.upperBound...]
        let end = try #require(rest.firstIndex(of: "]"))
        return Set(
            rest[..<end].split(separator: ",").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
                .map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }.filter { !$0.isEmpty })
    }

    @Test func theCLibraryNeverDependsOnTheHarness() throws {
        let dependencies = try packageDependencies(of: "VNIC")
        #expect(dependencies.contains("NICCards") && dependencies.contains("NICTrace"), "\(dependencies)")
        #expect(!dependencies.contains("NICHarness"), "Package.swift: VNIC depends on NICHarness")
        #expect(!imports(of: "VNIC").contains("NICHarness"), "a VNIC source imports NICHarness")
        // The catalogue and the trace format are production modules too: no harness below them.
        for module in ["NICCards", "NICTrace"] {
            #expect(!(try packageDependencies(of: module)).contains("NICHarness"), "\(module) depends on NICHarness")
            #expect(!imports(of: module).contains("NICHarness"), "\(module) imports NICHarness")
        }
    }

    /// Swift mangles a module name as its length and its name (`10NICHarness`).
    static func mangled(_ module: String) -> String { "\(module.utf8.count)\(module)" }

    @Test func theStaticCLibraryHasNoHarnessSymbol() throws {
        // The release library is what hypervisors link; Scripts/test builds it afresh (an archive that SwiftPM
        // updates in place keeps the members of objects that no longer exist, so only a fresh one tells).
        let library = repositoryRoot.appendingPathComponent(".build/release/libVNIC.a")
        guard FileManager.default.fileExists(atPath: library.path) else {
            print("SKIP libVNIC.a symbol test: no .build/release/libVNIC.a (Scripts/test builds it)")
            return
        }
        guard let result = try runFromPath("nm", ["--defined-only", library.path], timeout: 120) else {
            print("SKIP libVNIC.a symbol test: no nm (binutils)")
            return
        }
        #expect(result.status == 0, "nm \(library.path): \(result.error)")
        let symbols = result.output.split(separator: "\n")
        // The check can see modules: the catalogue's and the backends' symbols are there.
        #expect(symbols.contains { $0.contains(Self.mangled("NICCards")) }, "no NICCards symbol in libVNIC.a")
        #expect(symbols.contains { $0.contains(Self.mangled("NetBackend")) }, "no NetBackend symbol in libVNIC.a")
        let harness = symbols.filter { $0.contains(Self.mangled("NICHarness")) }
        #expect(harness.isEmpty, "libVNIC.a has \(harness.count) NICHarness symbols: \(harness.prefix(3))")
    }
}
