import Foundation
import NICHarness

enum DemoCommand {
    static let help = """
        usage: vnic demo

        Drives one card of each implemented type the way its Linux driver does (probe, init,
        broadcast and unicast frames each way, cable unplugged and plugged back, stop) with every
        card on one internal network, and prints a table of what worked. Then a card on a NAT of
        its own (a PCnet-FAST III in slot 0, a PRO/1000 MT Desktop in slot 1) gets a DHCP lease and
        fetches a file from an HTTP server on 127.0.0.1 through the gateway. The Intel cards also
        exchange 9014-byte jumbo frames, which the PCnet cards drop and count. Exit status 0 when every
        step worked for every card, 1 otherwise.
        """

    static func run(_ arguments: [String]) throws(CommandLineError) -> Int32 {
        if arguments.contains("-h") || arguments.contains("--help") {
            print(help)
            return 0
        }
        guard arguments.isEmpty else { throw CommandLineError(message: "demo: unknown argument '\(arguments[0])'") }
        let report = Demo.run()
        print("vnic demo: \(report.cards.count) cards on internal network \"\(report.network)\"\n")
        print(report.table)
        let nat = Demo.runNAT()
        print("\nvnic demo: cards behind a NAT each, fetching a file from a server on 127.0.0.1\n")
        print(nat.table)
        let passed = report.passed && nat.passed
        print("\n" + (passed ? "every step worked" : "some steps FAILED"))
        return passed ? 0 : 1
    }
}
