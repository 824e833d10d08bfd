import Foundation
import NICHarness
import NICTrace

enum FuzzDecodeCommand {
    static let help = """
        usage: vnic fuzz-decode INPUT

        Prints the trace a FuzzCards input stands for, so a crash becomes a regression trace:
          vnic fuzz-decode crash-1234 > Fixtures/traces/regressions/NAME.trace
        """

    static func run(_ arguments: [String]) throws(CommandLineError) -> Int32 {
        if arguments.contains("-h") || arguments.contains("--help") {
            print(help)
            return 0
        }
        guard arguments.count == 1 else { throw CommandLineError(message: "fuzz-decode: give exactly one input file") }
        guard let data = FileManager.default.contents(atPath: arguments[0]) else {
            throw CommandLineError(message: "fuzz-decode: cannot read '\(arguments[0])'")
        }
        guard let trace = FuzzDecoder.trace(for: [UInt8](data)) else {
            throw CommandLineError(message: "fuzz-decode: '\(arguments[0])' is trace text that does not parse")
        }
        print(trace.text, terminator: "")
        return 0
    }
}
