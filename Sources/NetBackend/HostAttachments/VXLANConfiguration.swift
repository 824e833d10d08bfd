/// Which VXLAN segment a ``VXLANAttachment`` joins and where its tunnel endpoint is (RFC 7348).
///
/// The text form is `vni=N,remote=IP[,port=4789][,local=IP][,mtu=1500]` (`;` separates properties too):
///
/// | property | meaning | default |
/// |---|---|---|
/// | `vni=N` | the segment's VXLAN network identifier, 0 to 16777215 | required |
/// | `remote=IP` | the far tunnel endpoint (a Linux `vxlan` device, a switch), IPv4 or IPv6 | required |
/// | `port=N` | the UDP port both ends use | 4789 (IANA) |
/// | `local=IP` | the local address to bind, of `remote`'s family | any address of that family |
/// | `mtu=N` | the MTU of the path between the endpoints; frames must fit in it encapsulated | 1500 |
public struct VXLANConfiguration: Sendable, Hashable, CustomStringConvertible {
    /// The VXLAN network identifier.
    public var vni: UInt32 = 0
    /// The far tunnel endpoint.
    public var remote: IPAddress = .loopback
    /// The UDP port, local and remote.
    public var port: UInt16 = 4789
    /// The local address to bind; `nil` binds every address of the remote's family.
    public var localAddress: IPAddress?
    /// The path MTU between the endpoints.
    public var underlayMTU = 1500

    /// The largest VNI: 24 bits.
    public static let maximumVNI: UInt32 = 0xFF_FFFF
    /// The VXLAN header's length.
    public static let headerLength = 8

    /// Segment `vni` towards `remote`.
    public init(vni: UInt32, remote: IPAddress) {
        self.vni = vni
        self.remote = remote
    }

    /// Parses the text form; the error names the property and what is wrong with it.
    public init(parsing text: String) throws(HostLinkError) {
        var sawVNI = false
        var sawRemote = false
        for item in text.split(whereSeparator: { $0 == "," || $0 == ";" }) {
            if item.hasPrefix("vni=") { sawVNI = true }
            if item.hasPrefix("remote=") { sawRemote = true }
        }
        guard sawVNI, sawRemote else { throw .invalid("vxlan: vni=N and remote=IP are required (got '\(text)')") }
        try AttachmentProperty.apply(text, to: &self, kind: "vxlan", properties: Self.properties)
        try validate()
    }

    /// Throws when the VNI is out of range, `local` is of another family than `remote`, or the MTU leaves no room
    /// for a frame.
    public func validate() throws(HostLinkError) {
        guard vni <= Self.maximumVNI else { throw .invalid("vxlan: vni=\(vni): the VNI is 24 bits, 0 to 16777215") }
        if let localAddress, localAddress.isIPv6 != remote.isIPv6 {
            throw .invalid("vxlan: local=\(localAddress) and remote=\(remote) are of different families")
        }
        guard innerMTU >= 576 else { throw .invalid("vxlan: mtu=\(underlayMTU) leaves an inner MTU below 576") }
    }

    /// The outer IP, UDP and VXLAN headers and the inner Ethernet header every frame pays.
    public var overhead: Int { (remote.isIPv6 ? 40 : 20) + 8 + Self.headerLength + 14 }

    /// The MTU the card's guest should use: what fits in the path MTU once encapsulated (1450 over IPv4 at 1500).
    public var innerMTU: Int { underlayMTU - overhead }

    /// The text form, every property spelled out.
    public var description: String {
        var text = "vni=\(vni),remote=\(remote),port=\(port)"
        if let localAddress { text += ",local=\(localAddress)" }
        if underlayMTU != 1500 { text += ",mtu=\(underlayMTU)" }
        return text
    }

    static let properties: [AttachmentProperty<VXLANConfiguration>] = [
        AttachmentProperty(name: "vni") { configuration, text in
            guard let vni = UInt32(text), vni <= maximumVNI else { return "expected a VNI, 0 to 16777215" }
            configuration.vni = vni
            return nil
        },
        .address("remote", \.remote),
        .port("port", \.port),
        .address("local", \.localAddress),
        AttachmentProperty(name: "mtu") { configuration, text in
            guard let mtu = Int(text), (600...65_535).contains(mtu) else { return "expected an MTU, 600 to 65535" }
            configuration.underlayMTU = mtu
            return nil
        },
    ]
}
