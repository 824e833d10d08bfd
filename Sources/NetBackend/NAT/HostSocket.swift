import CNetShims
import Glibc

/// Thin, non-throwing wrappers over the socket calls the NAT makes. Results carry `errno` instead of throwing so the
/// hot paths stay cheap.
enum HostSocket {
    static let stream = Int32(SOCK_STREAM.rawValue)
    static let datagram = Int32(SOCK_DGRAM.rawValue)

    /// A non-blocking, close-on-exec socket (IPv4 unless `ipv6`); the descriptor, or `-errno`. An IPv6 socket is
    /// IPv6-only: an IPv4-mapped address never reaches IPv4 through it.
    static func open(type: Int32, proto: Int32 = 0, ipv6: Bool = false) -> Int32 {
        let family = ipv6 ? AF_INET6 : AF_INET
        let fd = socket(family, type | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), proto)
        guard fd >= 0 else { return -errno }
        if ipv6 { setOption(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, 1) }
        return fd
    }

    /// Calls `body` with `endpoint` as a socket address of its family.
    static func withSocketAddress<R>(_ endpoint: IPEndpoint, _ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        switch endpoint.address {
        case .v4(let address):
            var raw = socketAddress(IPv4Endpoint(address, endpoint.port))
            return withUnsafePointer(to: &raw) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    body($0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        case .v6(let address):
            var raw = sockaddr_in6()
            raw.sin6_family = sa_family_t(AF_INET6)
            raw.sin6_port = endpoint.port.bigEndian
            let bytes = address.bytes
            withUnsafeMutableBytes(of: &raw.sin6_addr) { target in
                for index in 0..<16 { target[index] = bytes[index] }
            }
            return withUnsafePointer(to: &raw) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    body($0, socklen_t(MemoryLayout<sockaddr_in6>.size))
                }
            }
        }
    }

    /// The endpoint in a socket address of either family; `nil` for another family or a short address.
    static func endpoint(_ storage: sockaddr_storage, length: socklen_t) -> IPEndpoint? {
        var storage = storage
        return withUnsafeBytes(of: &storage) { raw -> IPEndpoint? in
            let family = Int32(raw.load(fromByteOffset: 0, as: sa_family_t.self))
            if family == AF_INET, length >= socklen_t(MemoryLayout<sockaddr_in>.size) {
                return IPEndpoint(endpoint(raw.load(as: sockaddr_in.self)))
            }
            guard family == AF_INET6, length >= socklen_t(MemoryLayout<sockaddr_in6>.size) else { return nil }
            let address = raw.load(as: sockaddr_in6.self)
            let port = UInt16(bigEndian: address.sin6_port)
            var bytes = [UInt8](repeating: 0, count: 16)
            withUnsafeBytes(of: address.sin6_addr) { for index in 0..<16 { bytes[index] = $0[index] } }
            guard let parsed = IPv6Address(in: bytes, at: 0) else { return nil }
            return IPEndpoint(.v6(parsed), port)
        }
    }

    /// Starts a connect to an endpoint of either family; 0, or the errno.
    static func connect(_ fd: Int32, to endpoint: IPEndpoint) -> Int32 {
        let result = withSocketAddress(endpoint) { Glibc.connect(fd, $0, $1) }
        return result == 0 ? 0 : errno
    }

    /// Binds to an endpoint of either family; 0 or the errno.
    static func bind(_ fd: Int32, to endpoint: IPEndpoint) -> Int32 {
        let result = withSocketAddress(endpoint) { Glibc.bind(fd, $0, $1) }
        return result == 0 ? 0 : errno
    }

    /// Sends a datagram to an endpoint of either family; the count sent, or `-errno`.
    static func send(_ fd: Int32, _ bytes: [UInt8], to endpoint: IPEndpoint) -> Int {
        let sent = bytes.withUnsafeBytes { buffer in
            withSocketAddress(endpoint) {
                sendto(fd, buffer.baseAddress, buffer.count, Int32(MSG_NOSIGNAL) | Int32(MSG_DONTWAIT), $0, $1)
            }
        }
        return sent >= 0 ? sent : -Int(errno)
    }

    /// Receives into `buffer` from a socket of either family; the count, or `-errno`, and the sender.
    static func receiveFrom(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) -> (Int, IPEndpoint?) {
        let (count, sender) = withAddressFilled {
            recvfrom(fd, buffer.baseAddress, buffer.count, Int32(MSG_DONTWAIT), $0, $1)
        }
        return count >= 0 ? (count, sender) : (-Int(errno), nil)
    }

    /// The peer of a connected socket of either family.
    static func peerEndpoint(_ fd: Int32) -> IPEndpoint? {
        let (result, peer) = withAddressFilled { Int(getpeername(fd, $0, $1)) }
        return result == 0 ? peer : nil
    }

    /// The local address of a socket of either family.
    static func localAddress(_ fd: Int32) -> IPEndpoint? {
        let (result, local) = withAddressFilled { Int(getsockname(fd, $0, $1)) }
        return result == 0 ? local : nil
    }

    /// Calls `call` with room for a socket address of either family and its length; its result and, unless that is
    /// negative (`errno` untouched since), the endpoint it filled in.
    private static func withAddressFilled(
        _ call: (UnsafeMutablePointer<sockaddr>, UnsafeMutablePointer<socklen_t>) -> Int
    ) -> (Int, IPEndpoint?) {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { call($0, &length) }
        }
        return result >= 0 ? (result, endpoint(storage, length: length)) : (result, nil)
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
    static func connect(_ fd: Int32, to endpoint: IPv4Endpoint) -> Int32 { connect(fd, to: IPEndpoint(endpoint)) }

    /// Binds; 0 or the errno.
    static func bind(_ fd: Int32, to endpoint: IPv4Endpoint) -> Int32 { bind(fd, to: IPEndpoint(endpoint)) }

    /// Accepts a connection as a non-blocking, close-on-exec socket; the descriptor or `-errno`.
    static func accept(_ listener: Int32) -> Int32 {
        let fd = Glibc.accept(listener, nil, nil)
        guard fd >= 0 else { return -errno }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        return fd
    }

    /// The local address of an IPv4 socket.
    static func localEndpoint(_ fd: Int32) -> IPv4Endpoint? { localAddress(fd)?.v4 }

    /// Sends `bytes` (all or part); the count sent, or `-errno`.
    static func send(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Int {
        let sent = Glibc.send(fd, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL) | Int32(MSG_DONTWAIT))
        return sent >= 0 ? sent : -Int(errno)
    }

    /// Sends a datagram to `endpoint`; the count sent, or `-errno`.
    static func send(_ fd: Int32, _ bytes: [UInt8], to endpoint: IPv4Endpoint) -> Int {
        send(fd, bytes, to: IPEndpoint(endpoint))
    }

    /// Receives into `buffer` from an IPv4 socket; the count, or `-errno`. Also returns the sender.
    static func receive(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) -> (Int, IPv4Endpoint?) {
        let (count, sender) = receiveFrom(fd, into: buffer)
        return (count, sender?.v4)
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
