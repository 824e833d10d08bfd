import Foundation

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
