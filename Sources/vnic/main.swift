import Foundation
import NICHarness

/// `vnic`: the command-line tool. Each subcommand prints --help; errors name the bad argument.
struct CommandLineError: Error {
    var message: String
    var status: Int32 = 2
}

let usage = """
    usage: vnic COMMAND [ARGUMENTS]

    commands:
      demo              cards of each implemented type, driven like their Linux drivers, on an internal network
      replay TRACE...   run register-level traces against a fresh card each
      bench [--json]    datapath figures per card (build with -c release)
      record-fixtures [DIR]
                        re-record the driver-script traces (default Fixtures/traces)
      fuzz-decode INPUT turn a fuzzer input (a crash) into a trace on standard output
      nat --tap NAME [--netns PATH] | --stream unix:PATH|tcp:127.0.0.1:PORT  [OPTIONS]
                        a NAT engine for a TAP interface or a QEMU -netdev stream guest

    run 'vnic COMMAND --help' for a command's options.
    """

func printError(_ text: String) {
    FileHandle.standardError.write((text + "\n").data(using: .utf8)!)
}

func run(_ arguments: [String]) throws(CommandLineError) -> Int32 {
    guard let command = arguments.first else {
        print(usage)
        return 2
    }
    let rest = Array(arguments.dropFirst())
    switch command {
    case "-h", "--help", "help":
        print(usage)
        return 0
    case "demo": return try DemoCommand.run(rest)
    case "replay": return try ReplayCommand.run(rest)
    case "bench": return try BenchCommand.run(rest)
    case "record-fixtures": return try RecordCommand.run(rest)
    case "fuzz-decode": return try FuzzDecodeCommand.run(rest)
    case "nat": return try NATCommand.run(rest)
    default: throw CommandLineError(message: "unknown command '\(command)'\n\n\(usage)")
    }
}

do {
    exit(try run(Array(CommandLine.arguments.dropFirst())))
} catch {
    printError("vnic: \(error.message)")
    exit(error.status)
}
