import NICCore

/// A port forwarding rule in VirtualBox's syntax: `name,tcp|udp,[hostip],hostport,[guestip],guestport`
/// (`guestssh,tcp,,2222,,22`).
///
/// An empty host address listens on every host address; an empty guest address means the guest's address (its
/// DHCP lease, or the address it last used).
public struct PortForwardRule: Hashable, Sendable, CustomStringConvertible {
    /// The transport a rule forwards.
    public enum Transport: String, Hashable, Sendable {
        case tcp, udp
    }

    /// The rule's name, unique per NAT.
    public var name: String
    /// TCP or UDP.
    public var transport: Transport
    /// The host address to listen on; `nil` for all.
    public var hostAddress: IPv4Address?
    /// The host port to listen on.
    public var hostPort: UInt16
    /// The guest address to forward to; `nil` for the guest's own address.
    public var guestAddress: IPv4Address?
    /// The guest port to forward to.
    public var guestPort: UInt16

    /// Creates a rule from its parts.
    public init(
        name: String, transport: Transport, hostAddress: IPv4Address? = nil, hostPort: UInt16,
        guestAddress: IPv4Address? = nil, guestPort: UInt16
    ) {
        self.name = name
        self.transport = transport
        self.hostAddress = hostAddress
        self.hostPort = hostPort
        self.guestAddress = guestAddress
        self.guestPort = guestPort
    }

    /// Parses `name,tcp|udp,[hostip],hostport,[guestip],guestport`; the error says which field is wrong.
    public init(parsing text: String) throws(NATError) {
        let fields = text.split(separator: ",", omittingEmptySubsequences: false).map {
            String($0.trimmingASCIIWhitespace)
        }
        guard fields.count == 6 else {
            throw .malformedRule(text, reason: "expected 6 comma-separated fields, found \(fields.count)")
        }
        let name = fields[0]
        guard !name.isEmpty, name.utf8.count <= 64, name.allSatisfy({ $0.isASCII && !$0.isWhitespace }) else {
            throw .malformedRule(text, reason: "the name must be 1 to 64 printable ASCII characters")
        }
        guard let transport = Transport(rawValue: fields[1].lowercased()) else {
            throw .malformedRule(text, reason: "protocol '\(fields[1])' is neither tcp nor udp")
        }
        func address(_ field: String, _ what: String) throws(NATError) -> IPv4Address? {
            guard !field.isEmpty else { return nil }
            let bare = field.hasPrefix("[") && field.hasSuffix("]") ? String(field.dropFirst().dropLast()) : field
            if bare.isEmpty { return nil }
            guard let parsed = IPv4Address(bare) else {
                throw .malformedRule(text, reason: "\(what) '\(field)' is not an IPv4 address")
            }
            return parsed
        }
        func port(_ field: String, _ what: String) throws(NATError) -> UInt16 {
            guard let parsed = UInt16(field), parsed != 0 else {
                throw .malformedRule(text, reason: "\(what) '\(field)' is not a port number 1...65535")
            }
            return parsed
        }
        self.init(
            name: name, transport: transport, hostAddress: try address(fields[2], "host address"),
            hostPort: try port(fields[3], "host port"), guestAddress: try address(fields[4], "guest address"),
            guestPort: try port(fields[5], "guest port"))
    }

    /// The rule in VirtualBox's syntax.
    public var description: String {
        "\(name),\(transport.rawValue),\(hostAddress.map(\.description) ?? ""),\(hostPort),"
            + "\(guestAddress.map(\.description) ?? ""),\(guestPort)"
    }
}
