import Glibc

/// Unix socket addresses (`sockaddr_un`) from paths and back, checked: a path must fit with its terminating NUL.
package enum UnixSocketAddress {
    /// The size of a `sockaddr_un` (110 bytes on Linux).
    static let size = MemoryLayout<sockaddr_un>.size
    /// The longest path that fits, without its NUL.
    static let maximumPathLength = MemoryLayout.size(ofValue: sockaddr_un().sun_path) - 1

    /// `path` as a socket address; `nil` when it is empty, too long, or holds a NUL.
    static func make(_ path: String) -> sockaddr_un? {
        let bytes = Array(path.utf8)
        guard !bytes.isEmpty, bytes.count <= maximumPathLength, !bytes.contains(0) else { return nil }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in bytes.enumerated() { raw[index] = byte }
        }
        return address
    }

    /// Calls `body` with `address` as a `sockaddr` and its full length.
    static func with<R>(_ address: sockaddr_un, _ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        var address = address
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(size)) }
        }
    }

    /// The path in `bytes`, a `sockaddr_un` as a peer sent it: `nil` unless it is exactly ``size`` bytes, of family
    /// `AF_UNIX`, with a non-empty path that ends in a NUL.
    package static func path(in bytes: [UInt8]) -> String? {
        guard bytes.count == size else { return nil }
        let family = bytes.withUnsafeBytes { $0.loadUnaligned(as: sa_family_t.self) }
        let pathStart = MemoryLayout<sa_family_t>.size
        guard family == sa_family_t(AF_UNIX), let end = bytes[pathStart...].firstIndex(of: 0), end > pathStart else {
            return nil
        }
        return String(decoding: bytes[pathStart..<end], as: UTF8.self)
    }
}
