import Foundation
import NICTestSupport
import Testing

@Suite("vnic command line", .serialized)
struct CommandLineTests {
    func executable() throws -> URL? {
        guard let url = vnicExecutable() else {
            print("SKIP: the vnic executable is not built next to the tests (run swift build first)")
            return nil
        }
        return url
    }

    @Test func replayPassesTheFixtures() throws {
        guard let vnic = try executable() else { return }
        let traces = fixtureTraces().map(\.path)
        let result = try run(vnic, ["replay"] + traces)
        #expect(result.status == 0, "\(result.error)")
        #expect(result.output.split(separator: "\n").filter { $0.hasPrefix("PASS") }.count == traces.count)
    }

    @Test func wrongExpectationExitsOneNamingTheLine() throws {
        guard let vnic = try executable() else { return }
        let path = try temporaryFile(
            "vnic-trace 1\ndevice am79c973 mac=52:54:00:12:34:56\ncfg-read 0x0 4 = 0x12345678\n")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let result = try run(vnic, ["replay", path])
        #expect(result.status == 1)
        #expect(result.error.contains("line 3"))
        #expect(result.error.contains("expected 0x12345678"))
        #expect(result.error.contains("actual 0x20001022"))
    }

    @Test func malformedLineExitsTwoNamingTheLine() throws {
        guard let vnic = try executable() else { return }
        let path = try temporaryFile("vnic-trace 1\ndevice am79c973 mac=52:54:00:12:34:56\n\nio-write 0 zz 2 1\n")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let result = try run(vnic, ["replay", path])
        #expect(result.status == 2)
        #expect(result.error.contains("line 4"))
    }

    @Test func unreadableFileAndUnknownCommandAreErrors() throws {
        guard let vnic = try executable() else { return }
        let missing = try run(vnic, ["replay", "/nonexistent/x.trace"])
        #expect(missing.status == 2)
        #expect(missing.error.contains("/nonexistent/x.trace"))
        let unknown = try run(vnic, ["frobnicate"])
        #expect(unknown.status == 2)
        #expect(unknown.error.contains("frobnicate"))
        let badOption = try run(vnic, ["bench", "--seconds", "abc"])
        #expect(badOption.status == 2)
        #expect(badOption.error.contains("--seconds"))
    }

    @Test func everyCommandHasHelp() throws {
        guard let vnic = try executable() else { return }
        for command in ["demo", "replay", "bench", "record-fixtures", "fuzz-decode", "nat"] {
            let result = try run(vnic, [command, "--help"])
            #expect(result.status == 0)
            #expect(result.output.contains("usage: vnic \(command)"))
        }
    }

    @Test func demoPrintsATableWhereEveryStepWorked() throws {
        guard let vnic = try executable() else { return }
        let result = try run(vnic, ["demo"])
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.contains("PCnet-PCI II (Am79C970A)"))
        #expect(result.output.contains("PCnet-FAST III (Am79C973)"))
        #expect(result.output.contains("PRO/1000 MT Server (82545EM)"))
        #expect(result.output.contains("9014-byte jumbo broadcast"))
        #expect(result.output.contains("cards behind a NAT each"))
        #expect(result.output.contains("10.0.3.15"), "the second card's NAT is 10.0.3.0/24")
        #expect(result.output.contains("262144 bytes intact"))
        #expect(result.output.contains("two cards on UDP tunnels to each other"))
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/vde_switch") {
            #expect(result.output.contains("two cards on a vde_switch"))
        } else {
            print("SKIP the demo's VDE part: no /usr/bin/vde_switch (apt-get install vde2)")
        }
        #expect(result.output.contains("every step worked"))
        #expect(!result.output.contains("FAIL"))
    }

    @Test func fuzzDecodeTurnsAnInputIntoAReplayableTrace() throws {
        guard let vnic = try executable() else { return }
        let input = NSTemporaryDirectory() + "vnic-fuzz-\(UUID().uuidString)"
        try Data([1, 10, 2, 0x21, 0x43, 0, 12, 7, 1, 64, 0, 9]).write(to: URL(fileURLWithPath: input))
        defer { try? FileManager.default.removeItem(atPath: input) }
        let decoded = try run(vnic, ["fuzz-decode", input])
        #expect(decoded.status == 0)
        #expect(decoded.output.hasPrefix("vnic-trace 1\ndevice am79c973"))
        let path = try temporaryFile(decoded.output)
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(try run(vnic, ["replay", path]).status == 0)
    }
}
