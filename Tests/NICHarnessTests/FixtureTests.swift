import Foundation
import NICHarness
import NICTestSupport
import NICTrace
import Testing

@Suite("Fixtures/traces")
struct FixtureTests {
    @Test func everyFixtureReplays() throws {
        let traces = fixtureTraces() + fixtureTraces("regressions") + fixtureTraces("linux")
        #expect(traces.count >= Scenario.all.count)
        for url in traces {
            let text = try String(contentsOf: url, encoding: .utf8)
            do {
                _ = try TraceReplayer.run(text)
            } catch {
                Issue.record("\(url.lastPathComponent): \(error)")
            }
        }
    }

    @Test func fixturesMatchTheDriverScripts() throws {
        // A fixture differs from a fresh recording when the card's behaviour changed: re-record with
        // `swift run vnic record-fixtures` after checking the change is intended.
        for scenario in Scenario.all {
            let url = repositoryRoot.appendingPathComponent("Fixtures/traces/\(scenario.name).trace")
            let committed = try String(contentsOf: url, encoding: .utf8)
            #expect(committed == (try scenario.record()).text, "\(scenario.name).trace is out of date")
        }
    }
}
