import Foundation
import NICHarness
import NICTrace

enum RecordCommand {
    static let help = """
        usage: vnic record-fixtures [DIR]

        Runs every driver-script scenario with a recorder and writes one trace per scenario into
        DIR (default Fixtures/traces), replacing files of the same name.
        """

    static func run(_ arguments: [String]) throws(CommandLineError) -> Int32 {
        if arguments.contains("-h") || arguments.contains("--help") {
            print(help)
            return 0
        }
        guard arguments.count <= 1 else { throw CommandLineError(message: "record-fixtures: at most one directory") }
        let directory = arguments.first ?? "Fixtures/traces"
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw CommandLineError(message: "record-fixtures: '\(directory)' is not a directory")
        }
        for scenario in Scenario.all {
            let trace: Trace
            do throws(HarnessError) {
                trace = try scenario.record()
            } catch {
                throw CommandLineError(message: "record-fixtures: \(scenario.name): \(error.message)", status: 1)
            }
            let path = directory + "/" + scenario.name + ".trace"
            do {
                try trace.text.write(toFile: path, atomically: true, encoding: .utf8)
            } catch {
                throw CommandLineError(message: "record-fixtures: cannot write \(path): \(error)", status: 1)
            }
            print("wrote \(path) (\(trace.lines.count) lines)")
        }
        return 0
    }
}
