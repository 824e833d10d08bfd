import Foundation

/// The repository root, found from this file's path.
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

/// The trace files in `Fixtures/traces/<subdirectory>`, sorted.
func fixtureTraces(_ subdirectory: String = "") -> [URL] {
    let directory = repositoryRoot.appendingPathComponent("Fixtures/traces").appendingPathComponent(subdirectory)
    let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
    return names.filter { $0.hasSuffix(".trace") }.sorted().map { directory.appendingPathComponent($0) }
}

/// The built `vnic` executable next to the test bundle, if it was built.
func vnicExecutable() -> URL? {
    var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for _ in 0..<3 {
        let candidate = directory.appendingPathComponent("vnic")
        if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        directory = directory.deletingLastPathComponent()
    }
    return nil
}

/// Runs `executable` with `arguments`, bounded by `timeout` seconds (then terminated by its pid); returns the exit
/// status, standard output and standard error.
func run(_ executable: URL, _ arguments: [String], timeout: Double = 60) throws -> (
    status: Int32, output: String, error: String
) {
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
    return (process.terminationStatus, output, error)
}

/// Writes `text` to a fresh temporary file and returns its path.
func temporaryFile(_ text: String, name: String = "trace") throws -> String {
    let path = NSTemporaryDirectory() + "vnic-\(name)-\(UUID().uuidString).trace"
    try text.write(toFile: path, atomically: true, encoding: .utf8)
    return path
}
