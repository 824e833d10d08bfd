import Foundation
import Glibc
import NICTestSupport
import Testing

/// A long-running child process whose output goes to a file, stopped by its pid with bounded waits.
final class ChildProcess {
    let process = Process()
    let outputPath = NSTemporaryDirectory() + "vnic-child-\(UUID().uuidString).out"

    init(_ executable: URL, _ arguments: [String]) throws {
        _ = FileManager.default.createFile(atPath: outputPath, contents: nil)
        process.executableURL = executable
        process.arguments = arguments
        let output = try FileHandle(forWritingTo: URL(fileURLWithPath: outputPath))
        process.standardOutput = output
        process.standardError = output
        try process.run()
    }

    deinit {
        _ = stop(signal: SIGKILL)
        try? FileManager.default.removeItem(atPath: outputPath)
    }

    var output: String { (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "" }

    /// Waits up to `timeout` seconds for `text` in the output; `false` if the child exits or time runs out first.
    func waitForOutput(_ text: String, timeout: Double = 10) -> Bool {
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
    func stop(signal: Int32 = SIGTERM, timeout: Double = 5) -> Int32 {
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
func shell(_ arguments: [String], timeout: Double = 15) -> (status: Int32, output: String) {
    do {
        let result = try run(URL(fileURLWithPath: "/usr/bin/env"), arguments, timeout: timeout)
        return (result.status, result.output + result.error)
    } catch {
        return (-1, "\(error)")
    }
}

/// `arguments` run with an empty signal mask. A child of a test thread inherits the thread's blocked signals, and
/// programs that wait for SIGALRM (busybox ping's second echo) or SIGCHLD (a shell's `wait`) then hang.
func unmasked(_ arguments: [String]) -> [String] {
    [
        "python3", "-c",
        "import os, signal, sys; signal.pthread_sigmask(signal.SIG_SETMASK, []); os.execvp(sys.argv[1], sys.argv[1:])",
    ] + arguments
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
func freeLoopbackPort() -> UInt16 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
            bind(fd, pointer, length) == 0 && getsockname(fd, pointer, &length) == 0
        }
    }
    return bound ? UInt16(bigEndian: address.sin_port) : 0
}

/// A blocking socket connected to `127.0.0.1:port` (family AF_INET) or the unix socket `path`; -1 on failure.
func connectSocket(port: UInt16? = nil, path: String? = nil) -> Int32 {
    if let port {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        if result == 0 { return fd }
        close(fd)
        return -1
    }
    guard let path else { return -1 }
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    withUnsafeMutableBytes(of: &address.sun_path) { raw in
        for (index, byte) in path.utf8.prefix(raw.count - 1).enumerated() { raw[index] = byte }
    }
    let result = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
        }
    }
    if result == 0 { return fd }
    close(fd)
    return -1
}

/// Reads until `count` bytes arrived, the peer closed, or `timeout` passed.
func receiveBytes(_ fd: Int32, count: Int, timeout: Double = 5) -> [UInt8] {
    var result: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65_536)
    let deadline = Date().addingTimeInterval(timeout)
    while result.count < count, Date() < deadline {
        var poll = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard Glibc.poll(&poll, 1, 50) == 1 else { continue }
        let got = recv(fd, &buffer, min(buffer.count, count - result.count), 0)
        if got <= 0 { break }
        result += buffer[0..<got]
    }
    return result
}
