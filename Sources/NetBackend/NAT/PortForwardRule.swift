import NICCore

/// A port forwarding rule in VirtualBox's syntax: `name,tcp|udp,[hostip],hostport,[guestip],guestport`
/// (`guestssh,tcp,,2222,,22`).
///
/// An empty host address listens on every host address; an empty guest address means the guest's address (its
/// DHCP lease, or the address it last used). IPv6 addresses may be written bare or in brackets, as VirtualBox's NAT
/// Network rules write them (`web6,tcp,[::1],8080,,80` and `web6,tcp,::1,8080,,80` are the same rule); a rule with
/// an IPv6 address listens on IPv6 and forwards to the guest's IPv6 address (the one it last used), and `[::]` as the
/// host address makes an IPv6 rule listening on every host IPv6 address.
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
    public var hostAddress: IPAddress?
    /// The host port to listen on.
    public var hostPort: UInt16
    /// The guest address to forward to; `nil` for the guest's own address.
    public var guestAddress: IPAddress?
    /// The guest port to forward to.
    public var guestPort: UInt16

    /// Creates a rule from its parts.
    public init(
        name: String, transport: Transport, hostAddress: IPAddress? = nil, hostPort: UInt16,
        guestAddress: IPAddress? = nil, guestPort: UInt16
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
        func address(_ field: String, _ what: String) throws(NATError) -> IPAddress? {
            guard !field.isEmpty else { return nil }
            let bare = field.hasPrefix("[") && field.hasSuffix("]") ? String(field.dropFirst().dropLast()) : field
            if bare.isEmpty { return nil }
            guard let parsed = IPAddress(bare) else {
                throw .malformedRule(text, reason: "\(what) '\(field)' is not an IPv4 or IPv6 address")
            }
            return parsed
        }
        func port(_ field: String, _ what: String) throws(NATError) -> UInt16 {
            guard let parsed = UInt16(field), parsed != 0 else {
                throw .malformedRule(text, reason: "\(what) '\(field)' is not a port number 1...65535")
            }
            return parsed
        }
        let host = try address(fields[2], "host address")
        let guest = try address(fields[4], "guest address")
        if let host, let guest, host.isIPv6 != guest.isIPv6 {
            throw .malformedRule(text, reason: "host address \(host) and guest address \(guest) differ in IP version")
        }
        self.init(
            name: name, transport: transport, hostAddress: host, hostPort: try port(fields[3], "host port"),
            guestAddress: guest, guestPort: try port(fields[5], "guest port"))
    }

    /// Whether the rule forwards IPv6: its host or guest address is an IPv6 one.
    public var isIPv6: Bool { hostAddress?.isIPv6 ?? guestAddress?.isIPv6 ?? false }

    /// The rule in VirtualBox's syntax, IPv6 addresses in brackets.
    public var description: String {
        func text(_ address: IPAddress?) -> String {
            guard let address else { return "" }
            return address.isIPv6 ? "[\(address)]" : address.description
        }
        return "\(name),\(transport.rawValue),\(text(hostAddress)),\(hostPort),\(text(guestAddress)),\(guestPort)"
    }
}
