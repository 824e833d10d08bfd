import Glibc

/// Where a ``StreamLink`` listens: a unix socket path or a TCP address.
public enum StreamAddress: Sendable, Equatable, CustomStringConvertible {
    /// A unix stream socket at a path (QEMU: `addr.type=unix,addr.path=PATH`).
    case unix(String)
    /// A TCP address (QEMU: `addr.type=inet,addr.host=HOST,addr.port=PORT`); port 0 picks a free one.
    case tcp(IPv4Endpoint)

    /// Parses `unix:PATH` or `tcp:HOST:PORT` (HOST a dotted quad); `nil` for anything else.
    public init?(_ text: String) {
        if text.hasPrefix("unix:") {
            let path = String(text.dropFirst(5))
            guard !path.isEmpty else { return nil }
            self = .unix(path)
        } else if text.hasPrefix("tcp:") {
            let rest = text.dropFirst(4)
            guard rest.contains(":"), let endpoint = IPv4Endpoint(rest, defaultPort: 0) else { return nil }
            self = .tcp(endpoint)
        } else {
            return nil
        }
    }

    public var description: String {
        switch self {
        case .unix(let path): return "unix:\(path)"
        case .tcp(let endpoint): return "tcp:\(endpoint)"
        }
    }

    /// A non-blocking listening socket bound to the address. A stale unix socket file is replaced; any other file at
    /// the path is an error.
    func listen() throws(HostLinkError) -> Int32 {
        switch self {
        case .unix(let path): return try Self.listenUnix(path)
        case .tcp(let endpoint): return try Self.listenTCP(endpoint)
        }
    }

    private static func listenTCP(_ endpoint: IPv4Endpoint) throws(HostLinkError) -> Int32 {
        let fd = HostSocket.open(type: HostSocket.stream)
        guard fd >= 0 else { throw .system("stream tcp:\(endpoint): socket", errno: -fd) }
        HostSocket.setOption(fd, SOL_SOCKET, SO_REUSEADDR, 1)
        let bound = HostSocket.bind(fd, to: endpoint)
        guard bound == 0 else {
            close(fd)
            throw .system("stream tcp:\(endpoint): bind", errno: bound)
        }
        guard Glibc.listen(fd, 4) == 0 else {
            let code = errno
            close(fd)
            throw .system("stream tcp:\(endpoint): listen", errno: code)
        }
        return fd
    }

    private static func listenUnix(_ path: String) throws(HostLinkError) -> Int32 {
        guard let address = UnixSocketAddress.make(path) else {
            throw .invalid("stream unix:\(path): the path must be 1 to \(UnixSocketAddress.maximumPathLength) bytes")
        }
        var status = stat()
        if lstat(path, &status) == 0 {
            guard status.st_mode & S_IFMT == S_IFSOCK else {
                throw .invalid("stream unix:\(path): a file that is not a socket is in the way")
            }
            unlink(path)
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue | SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .system("stream unix:\(path): socket", errno: errno) }
        let bound = UnixSocketAddress.with(address) { bind(fd, $0, $1) }
        guard bound == 0, Glibc.listen(fd, 4) == 0 else {
            let code = errno
            close(fd)
            throw .system("stream unix:\(path): bind", errno: code)
        }
        return fd
    }
}
