import Foundation
import Glibc
import NICTestSupport
import NetBackend
import Testing

extension NATCommandTests {
    @Test("every NAT option of the table is a flag: each rejected value exits 2 naming it, all examples start")
    func everyOptionOfTheTable() throws {
        guard let vnic = Self.vnic() else { return }
        let help = try run(vnic, ["nat", "--help"])
        var accepted: [String] = []
        for option in NATOptions.table {
            #expect(help.output.contains("--" + option.name), "--help lists --\(option.name)")
            for value in option.rejected {
                let result = try run(vnic, ["nat", "--tap", "t0", "--" + option.name, value], timeout: 10)
                #expect(result.status == 2, "--\(option.name) \(value): \(result.error)")
                #expect(result.error.contains("--\(option.name) '\(value)': "), "\(result.error)")
            }
            guard var example = option.example else {
                accepted.append("--" + option.name)
                continue
            }
            if option.name == "forward" { example = "web,tcp,127.0.0.1,\(freeLoopbackPort()),,80" }
            accepted += ["--" + option.name, example]
        }
        let path = NSTemporaryDirectory() + "vnic-nat-\(UUID().uuidString.prefix(8)).sock"
        let child = try ChildProcess(vnic, ["nat", "--stream", "unix:\(path)"] + accepted)
        #expect(child.waitForOutput("SIGINT or SIGTERM stops"), "\(accepted): \(child.output)")
        #expect(child.stop(signal: SIGINT) == 0, "\(child.output)")
    }
}
