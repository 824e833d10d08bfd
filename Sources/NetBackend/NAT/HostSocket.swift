import CNetShims
import Glibc

/// Thin, non-throwing wrappers over the socket calls the NAT makes. Results carry `errno` instead of throwing so the
/// hot paths stay cheap.
enum HostSocket {
    static let stream = Int32(SOCK_STREAM.rawValue)
    static let datagram = Int32(SOCK_DGRAM.rawValue)

    /// A non-blocking, close-on-exec IPv4 socket; the descriptor, or `-errno`.
    static func open(type: Int32, proto: Int32 = 0) -> Int32 {
        let fd = socket(AF_INET, type | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), proto)
        return fd >= 0 ? fd : -errno
    }

    static func socketAddress(_ endpoint: IPv4Endpoint) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = endpoint.port.bigEndian
        address.sin_addr.s_addr = endpoint.address.rawValue.bigEndian
        return address
    }

    static func endpoint(_ address: sockaddr_in) -> IPv4Endpoint {
        IPv4Endpoint(
            IPv4Address(rawValue: UInt32(bigEndian: address.sin_addr.s_addr)), UInt16(bigEndian: address.sin_port))
    }

    /// Starts a connect; 0, or the errno (`EINPROGRESS` for a TCP connect under way).
    static func connect(_ fd: Int32, to endpoint: IPv4Endpoint) -> Int32 {
        var address = socketAddress(endpoint)
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        return result == 0 ? 0 : errno
    }

    /// Binds; 0 or the errno.
    static func bind(_ fd: Int32, to endpoint: IPv4Endpoint) -> Int32 {
        var address = socketAddress(endpoint)
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        return result == 0 ? 0 : errno
    }

    /// Accepts a connection as a non-blocking, close-on-exec socket; the descriptor or `-errno`.
    static func accept(_ listener: Int32) -> Int32 {
        let fd = Glibc.accept(listener, nil, nil)
        guard fd >= 0 else { return -errno }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        return fd
    }

    /// The local address of `fd`.
    static func localEndpoint(_ fd: Int32) -> IPv4Endpoint? {
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let result = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return result == 0 ? endpoint(address) : nil
    }

    /// Sends `bytes` (all or part); the count sent, or `-errno`.
    static func send(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Int {
        let sent = Glibc.send(fd, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL) | Int32(MSG_DONTWAIT))
        return sent >= 0 ? sent : -Int(errno)
    }

    /// Sends a datagram to `endpoint`; the count sent, or `-errno`.
    static func send(_ fd: Int32, _ bytes: [UInt8], to endpoint: IPv4Endpoint) -> Int {
        var address = socketAddress(endpoint)
        let sent = bytes.withUnsafeBytes { buffer in
            withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(
                        fd, buffer.baseAddress, buffer.count, Int32(MSG_NOSIGNAL) | Int32(MSG_DONTWAIT), $0,
                        socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
        return sent >= 0 ? sent : -Int(errno)
    }

    /// Receives into `buffer`; the count, or `-errno`. Also returns the sender.
    static func receive(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) -> (Int, IPv4Endpoint?) {
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let count = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                recvfrom(fd, buffer.baseAddress, buffer.count, Int32(MSG_DONTWAIT), $0, &length)
            }
        }
        guard count >= 0 else { return (-Int(errno), nil) }
        return (count, length >= socklen_t(MemoryLayout<sockaddr_in>.size) ? endpoint(address) : nil)
    }

    /// The pending error of `fd` (`SO_ERROR`), cleared by reading.
    static func pendingError(_ fd: Int32) -> Int32 {
        var value: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_ERROR, &value, &length) == 0 else { return errno }
        return value
    }

    static func setOption(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: Int32) {
        var value = value
        _ = setsockopt(fd, level, name, &value, socklen_t(MemoryLayout<Int32>.size))
    }

    static func option(_ fd: Int32, _ level: Int32, _ name: Int32) -> Int32 {
        var value: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, level, name, &value, &length) == 0 else { return 0 }
        return value
    }

    /// Bytes queued in the send buffer, not yet acknowledged by the peer (`SIOCOUTQ`).
    static func unsentBytes(_ fd: Int32) -> Int {
        max(0, Int(cnet_outq(fd)))
    }

    /// Free space in a socket's send buffer as the kernel accounts it (`SO_MEMINFO`: send buffer size minus the
    /// memory queued), so a send of about this many bytes is accepted.
    static func sendSpace(_ fd: Int32) -> Int {
        var info = [UInt32](repeating: 0, count: 9)
        var length = socklen_t(4 * info.count)
        // SO_MEMINFO (55) fills SK_MEMINFO_*: index 3 is the send buffer, 5 the memory queued for sending.
        let result = info.withUnsafeMutableBytes { getsockopt(fd, SOL_SOCKET, 55, $0.baseAddress, &length) }
        guard result == 0, length >= 24 else {
            return max(0, Int(option(fd, SOL_SOCKET, SO_SNDBUF)) - unsentBytes(fd))
        }
        return max(0, Int(info[3]) - Int(info[5]))
    }

    /// Closes `fd` so the peer sees a reset rather than an orderly close.
    static func abort(_ fd: Int32) {
        var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
    }
}
