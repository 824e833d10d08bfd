import Glibc

/// Which VDE switch a ``VDEAttachment`` plugs into, and at which port.
///
/// The text form is `DIR` or `DIR,port=N` (`;` works as the separator too): DIR is the switch's control folder,
/// the one given to `vde_switch -s DIR` (its control socket is `DIR/ctl`); an empty DIR means libvdeplug's default,
/// `/var/run/vde.ctl` for root and `/tmp/vde.ctl` for anyone else. Without `port=`, the switch picks a free port.
public struct VDEConfiguration: Sendable, Hashable, CustomStringConvertible {
    /// The switch's control folder.
    public var directory: String
    /// The switch port to ask for; `nil` lets the switch choose.
    public var port: Int?

    /// The highest port number that can be asked for (the request carries it in 24 bits).
    public static let maximumPort = 0xFF_FFFF

    /// libvdeplug's default folder: `/var/run/vde.ctl` for root, `/tmp/vde.ctl` otherwise.
    public static var defaultDirectory: String { geteuid() == 0 ? "/var/run/vde.ctl" : "/tmp/vde.ctl" }

    /// The switch at `directory` (the default folder when empty), port chosen by the switch unless `port` is given.
    public init(directory: String = "", port: Int? = nil) {
        self.directory = directory.isEmpty ? Self.defaultDirectory : directory
        self.port = port
    }

    /// Parses `DIR[,port=N]`; the error names what is wrong.
    public init(parsing text: String) throws(HostLinkError) {
        var items = text.split(whereSeparator: { $0 == "," || $0 == ";" }).map(String.init)
        let directory = items.first.map { $0.contains("=") ? "" : $0 } ?? ""
        if !directory.isEmpty { items.removeFirst() }
        self.init(directory: directory)
        for item in items {
            guard item.hasPrefix("port=") else {
                throw .invalid("vde: unknown property '\(item)' (expected DIR[,port=N])")
            }
            guard let port = Int(item.dropFirst(5)), (1...Self.maximumPort).contains(port) else {
                throw .invalid("vde: \(item): expected a port number, 1 to \(Self.maximumPort)")
            }
            self.port = port
        }
        try validate()
    }

    /// Throws when the control socket's path cannot be a unix socket address.
    public func validate() throws(HostLinkError) {
        guard UnixSocketAddress.make(controlPath) != nil else {
            throw .invalid(
                "vde \(directory): the control socket path must be at most \(UnixSocketAddress.maximumPathLength) bytes"
            )
        }
    }

    /// The switch's control socket.
    public var controlPath: String { directory + "/ctl" }

    public var description: String { directory + (port.map { ",port=\($0)" } ?? "") }
}
