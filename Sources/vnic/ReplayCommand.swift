import Foundation
import NICCards
import NICHarness
import NICTrace

enum ReplayCommand {
    static let help = """
        usage: vnic replay TRACE...

        Runs each trace (format v1) against a fresh card and prints one line per trace.
        Exit status: 0 when every assertion holds; 1 when one fails (the line, expected and actual
        are printed); 2 when a trace is malformed or unreadable (the line is printed).
        """

    static func run(_ arguments: [String]) throws(CommandLineError) -> Int32 {
        if arguments.contains("-h") || arguments.contains("--help") {
            print(help)
            return 0
        }
        if let option = arguments.first(where: { $0.hasPrefix("-") }) {
            throw CommandLineError(message: "replay: unknown option '\(option)'\n\n\(help)")
        }
        guard !arguments.isEmpty else { throw CommandLineError(message: "replay: no trace given\n\n\(help)") }
        var status: Int32 = 0
        for path in arguments {
            guard let data = FileManager.default.contents(atPath: path) else {
                printError("\(path): cannot read the file")
                status = max(status, 2)
                continue
            }
            guard let text = String(data: data, encoding: .utf8) else {
                printError("\(path): line 1: not UTF-8 text")
                status = max(status, 2)
                continue
            }
            do throws(TraceFailure) {
                let summary = try TraceReplayer.run(text)
                print(
                    "PASS \(path): \(summary.model.rawValue), \(summary.operations) operations, "
                        + "\(summary.assertions) assertions, \(summary.transmitted) frames transmitted")
            } catch {
                printError("FAIL \(path): \(error)")
                status = max(status, error.exitStatus)
            }
        }
        return status
    }
}
