/// Which host interface a ``BridgedAttachment`` puts the card on.
///
/// The text form is the interface's name, `eth0` or `veth1` (1 to 15 bytes, as Linux allows, without `/`, spaces
/// or NULs).
public struct BridgedConfiguration: Sendable, Hashable, CustomStringConvertible {
    /// The host interface.
    public var interface: String

    /// The longest interface name Linux takes (IFNAMSIZ less its NUL).
    public static let maximumNameLength = 15

    /// The interface called `interface`.
    public init(interface: String) { self.interface = interface }

    /// Parses an interface name; the error says what is wrong with it.
    public init(parsing text: String) throws(HostLinkError) {
        self.init(interface: text)
        try validate()
    }

    /// Throws when the name cannot be an interface's.
    public func validate() throws(HostLinkError) {
        let bytes = Array(interface.utf8)
        guard (1...Self.maximumNameLength).contains(bytes.count), interface != ".", interface != "..",
            bytes.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "/") && $0 != UInt8(ascii: ":") })
        else {
            throw .invalid(
                "bridged: '\(interface)' is not an interface name (1 to \(Self.maximumNameLength) printable bytes, "
                    + "no '/', ':' or spaces)")
        }
    }

    public var description: String { interface }
}
