import Foundation
import Glibc

/// A TCP port on 127.0.0.1 that was free a moment ago.
public func freeLoopbackPort() -> UInt16 {
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
public func connectSocket(port: UInt16? = nil, path: String? = nil) -> Int32 {
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
public func receiveBytes(_ fd: Int32, count: Int, timeout: Double = 5) -> [UInt8] {
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

/// Whether the unix stream socket at `path` takes a connection now (a server may bind its socket a moment before it
/// listens on it, as vde_switch does).
public func acceptsConnections(path: String) -> Bool {
    let fd = connectSocket(path: path)
    if fd >= 0 { close(fd) }
    return fd >= 0
}
