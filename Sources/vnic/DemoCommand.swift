import Foundation
import NICHarness

enum DemoCommand {
    static let help = """
        usage: vnic demo

        Drives one card of each implemented type the way its Linux driver does (probe, init,
        frames both ways, link down and up) with the cards on one internal network, and prints
        a table of what worked. Exit status 0 when every step worked, 1 otherwise.
        """

    static func run(_ arguments: [String]) throws(CommandLineError) -> Int32 {
        if arguments.contains("-h") || arguments.contains("--help") {
            print(help)
            return 0
        }
        guard arguments.isEmpty else { throw CommandLineError(message: "demo: unknown argument '\(arguments[0])'") }
        print("vnic demo: not available yet")
        return 1
    }
}
