import Foundation
import NICTestSupport
import Testing

/// Builds Tests/C/drive_card.c against the static library `libVNIC.a` with the system C compiler and runs it: a C
/// host linking vnic the way the README tells hypervisor authors to.
@Suite("C program")
struct CProgramTests {
    /// `libVNIC.a` from the same build as this test bundle (`swift build` makes it; `swift test` alone does not).
    static func library() -> String? { builtProduct("libVNIC.a")?.path }

    /// The toolchain's Swift runtime folder, from the `swift` on PATH.
    static func swiftRuntime() -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        for folder in path.split(separator: ":") {
            let swift = URL(fileURLWithPath: String(folder)).appendingPathComponent("swift")
            guard FileManager.default.isExecutableFile(atPath: swift.path) else { continue }
            let runtime = swift.resolvingSymlinksInPath().deletingLastPathComponent()
                .appendingPathComponent("../lib/swift/linux").standardized.path
            if FileManager.default.fileExists(atPath: runtime + "/x86_64/swiftrt.o") { return runtime }
        }
        return nil
    }

    static func run(_ executable: String, _ arguments: [String]) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let output = NSTemporaryDirectory() + "vnic-c-\(UUID().uuidString).log"
        _ = FileManager.default.createFile(atPath: output, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: output) }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: output))
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        let deadline = Date().addingTimeInterval(120)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        return (process.terminationStatus, (try? String(contentsOfFile: output, encoding: .utf8)) ?? "")
    }

    @Test func aCProgramLinksTheStaticLibraryAndDrivesACard() throws {
        guard let library = Self.library() else {
            print(
                "SKIP C program test: no libVNIC.a next to the test bundle (run `swift build` first; Scripts/test does)"
            )
            return
        }
        guard let runtime = Self.swiftRuntime() else {
            print("SKIP C program test: no Swift runtime folder found from `swift` on PATH")
            return
        }
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/cc") else {
            print("SKIP C program test: no C compiler at /usr/bin/cc")
            return
        }
        let program = NSTemporaryDirectory() + "vnic-drive-card-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: program) }
        let root = repositoryRoot.path
        let (compiled, compilerOutput) = try Self.run(
            "/usr/bin/cc",
            [
                "-std=c11", "-Wall", "-Wextra", "-Werror", "-o", program, root + "/Tests/C/drive_card.c",
                "-I" + root + "/Sources/CVNIC/include", runtime + "/x86_64/swiftrt.o", library, "-L" + runtime,
                "-lswiftCore", "-lswift_Concurrency", "-lswiftSynchronization", "-lswiftGlibc",
                "-lswiftSwiftOnoneSupport", "-Wl,-rpath," + runtime,
            ])
        #expect(compiled == 0, "cc failed:\n\(compilerOutput)")
        guard compiled == 0 else { return }
        let (status, output) = try Self.run(program, [])
        #expect(status == 0, "drive_card failed:\n\(output)")
        #expect(output.contains("ok   one transmitted frame reached frame_out"))
        #expect(output.hasSuffix("PASSED\n"))
    }
}
