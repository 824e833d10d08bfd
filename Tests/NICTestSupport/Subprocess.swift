import Foundation
import Glibc

/// What a finished process left: its exit status and what it printed.
public struct ProcessResult: Sendable {
    public var status: Int32
    public var output: String
    public var error: String
}

/// Runs `executable` with `arguments` in the repository root, bounded by `timeout` seconds (then killed by its pid);
/// returns the exit status, standard output and standard error.
public func run(_ executable: URL, _ arguments: [String], timeout: Double = 60) throws -> ProcessResult {
    let base = NSTemporaryDirectory() + "vnic-run-\(UUID().uuidString)"
    _ = FileManager.default.createFile(atPath: base + ".out", contents: nil)
    _ = FileManager.default.createFile(atPath: base + ".err", contents: nil)
    defer {
        try? FileManager.default.removeItem(atPath: base + ".out")
        try? FileManager.default.removeItem(atPath: base + ".err")
    }
    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
    process.currentDirectoryURL = repositoryRoot
    process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: base + ".out"))
    process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: base + ".err"))
    try process.run()
    let deadline = Date().addingTimeInterval(timeout)
    while process.isRunning && Date() < deadline { usleep(10_000) }
    if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    process.waitUntilExit()
    let output = (try? String(contentsOfFile: base + ".out", encoding: .utf8)) ?? ""
    let error = (try? String(contentsOfFile: base + ".err", encoding: .utf8)) ?? ""
    return ProcessResult(status: process.terminationStatus, output: output, error: error)
}

/// Runs a tool found on `PATH` (`nm`, `cc`), bounded by `timeout` seconds; `nil` when it is not installed.
public func runFromPath(_ name: String, _ arguments: [String], timeout: Double = 60) throws -> ProcessResult? {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
    for directory in path.split(separator: ":") {
        let candidate = URL(fileURLWithPath: String(directory)).appendingPathComponent(name)
        if FileManager.default.isExecutableFile(atPath: candidate.path) {
            return try run(candidate, arguments, timeout: timeout)
        }
    }
    return nil
}

/// A long-running child process whose output goes to a file, stopped by its pid with bounded waits.
public final class ChildProcess {
    public let process = Process()
    public let outputPath = NSTemporaryDirectory() + "vnic-child-\(UUID().uuidString).out"

    /// The child's standard input when it was started `holdingInputOpen` (a program such as `vde_switch` runs only
    /// while its input stays open).
    public let input: Pipe?

    /// Starts `executable`; with `holdingInputOpen` its standard input is a pipe kept open until the child stops.
    public init(_ executable: URL, _ arguments: [String], holdingInputOpen: Bool = false) throws {
        _ = FileManager.default.createFile(atPath: outputPath, contents: nil)
        process.executableURL = executable
        process.arguments = arguments
        input = holdingInputOpen ? Pipe() : nil
        if let input { process.standardInput = input }
        let output = try FileHandle(forWritingTo: URL(fileURLWithPath: outputPath))
        process.standardOutput = output
        process.standardError = output
        try process.run()
    }

    deinit {
        _ = stop(signal: SIGKILL)
        try? FileManager.default.removeItem(atPath: outputPath)
    }

    public var output: String { (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "" }

    /// Waits up to `timeout` seconds for `text` in the output; `false` if the child exits or time runs out first.
    public func waitForOutput(_ text: String, timeout: Double = 10) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if output.contains(text) { return true }
            if !process.isRunning { return output.contains(text) }
            usleep(20_000)
        }
        return false
    }

    /// Sends `signal` to the child's pid and waits up to `timeout` seconds (then SIGKILL); the exit status, or -1 if
    /// it had to be killed.
    public func stop(signal: Int32 = SIGTERM, timeout: Double = 5) -> Int32 {
        guard process.isRunning else { return process.terminationStatus }
        kill(process.processIdentifier, signal)
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning, Date() < deadline { usleep(10_000) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            return -1
        }
        return process.terminationStatus
    }
}

/// Runs a command through `env`, bounded by `timeout`; its status and output together.
@discardableResult
public func shell(_ arguments: [String], timeout: Double = 15) -> (status: Int32, output: String) {
    do {
        let result = try run(URL(fileURLWithPath: "/usr/bin/env"), arguments, timeout: timeout)
        return (result.status, result.output + result.error)
    } catch {
        return (-1, "\(error)")
    }
}

/// `arguments` run with an empty signal mask. A child of a test thread inherits the thread's blocked signals, and
/// programs that wait for SIGALRM (busybox ping's second echo) or SIGCHLD (a shell's `wait`) then hang.
public func unmasked(_ arguments: [String]) -> [String] {
    [
        "python3", "-c",
        "import os, signal, sys; signal.pthread_sigmask(signal.SIG_SETMASK, []); os.execvp(sys.argv[1], sys.argv[1:])",
    ] + arguments
}
