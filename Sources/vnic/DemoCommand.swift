import Foundation
import NICHarness

enum DemoCommand {
    static let help = """
        usage: vnic demo

        Drives one card of each implemented type the way its Linux driver does (probe, init,
        broadcast and unicast frames each way, cable unplugged and plugged back, stop) with every
        card on one internal network, and prints a table of what worked. Exit status 0 when every
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
        print("\n" + (report.passed ? "every step worked" : "some steps FAILED"))
        return report.passed ? 0 : 1
    }
}
