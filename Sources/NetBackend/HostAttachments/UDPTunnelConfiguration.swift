/// Where a ``UDPTunnelAttachment`` sends its frames and which it takes: VirtualBox's UDP tunnel properties, with
/// VirtualBox's names and defaults.
///
/// The text form is `sport=4444,dport=4445,dest=127.0.0.1` (`;` separates properties too, which QEMU's `-device`
/// option syntax needs no escaping for), every property optional:
///
/// | property | meaning | default |
/// |---|---|---|
/// | `sport=N` | the local UDP port frames arrive on (0: one the kernel chooses) | 4444 |
/// | `dport=N` | the peer's UDP port frames go to | 4445 |
/// | `dest=IP` | the peer's address, IPv4 or IPv6 | 127.0.0.1 |
/// | `local=IP` | the local address to bind, of `dest`'s family | any address of that family |
/// | `accept=any\|dest` | take datagrams from any sender (VirtualBox) or only from `dest:dport` | `any` |
public struct UDPTunnelConfiguration: Sendable, Hashable, CustomStringConvertible {
    /// The local port (VirtualBox's `sport`).
    public var sourcePort: UInt16 = 4444
    /// The peer's port (`dport`).
    public var destinationPort: UInt16 = 4445
    /// The peer's address (`dest`).
    public var destination: IPAddress = .loopback
    /// The local address to bind (`local`); `nil` binds every address of the destination's family.
    public var localAddress: IPAddress?
    /// Whether datagrams from anyone but `destination:destinationPort` are dropped and counted (`accept=dest`).
    public var acceptsOnlyDestination = false

    /// VirtualBox's defaults: port 4444 to 127.0.0.1:4445, datagrams accepted from anyone.
    public init() {}

    /// The peer frames are sent to.
    public var destinationEndpoint: IPEndpoint { IPEndpoint(destination, destinationPort) }

    /// Parses the text form (see the type's description); the error names the property and what is wrong with it.
    public init(parsing text: String) throws(HostLinkError) {
        try AttachmentProperty.apply(text, to: &self, kind: "udptunnel", properties: Self.properties)
        try validate()
    }

    /// Throws when `local` is of another family than `dest`.
    public func validate() throws(HostLinkError) {
        if let localAddress, localAddress.isIPv6 != destination.isIPv6 {
            throw .invalid("udptunnel: local=\(localAddress) and dest=\(destination) are of different families")
        }
    }

    /// The text form, every property spelled out.
    public var description: String {
        var text = "sport=\(sourcePort),dport=\(destinationPort),dest=\(destination)"
        if let localAddress { text += ",local=\(localAddress)" }
        if acceptsOnlyDestination { text += ",accept=dest" }
        return text
    }

    /// The properties, VirtualBox's names first.
    static let properties: [AttachmentProperty<UDPTunnelConfiguration>] = [
        .port("sport", allowingZero: true, \.sourcePort),
        .port("dport", \.destinationPort),
        .address("dest", \.destination),
        .address("local", \.localAddress),
        AttachmentProperty(name: "accept") { configuration, text in
            guard text == "any" || text == "dest" else { return "expected 'any' or 'dest'" }
            configuration.acceptsOnlyDestination = text == "dest"
            return nil
        },
    ]
}
