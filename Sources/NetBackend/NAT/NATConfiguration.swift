import Glibc
import NICCore

/// How a ``NATAttachment`` addresses its guest and what it lets the guest reach.
///
/// The defaults are VirtualBox's: card slot `n` (from 0) gets `10.0.(n+2).0/24`, the gateway is `.2`, the DNS proxy
/// `.3`, and DHCP leases start at `.15`. Host loopback is reachable through the gateway address only when
/// ``localhostReachable`` is set.
///
/// IPv6 (on unless ``ipv6`` is cleared) follows VirtualBox 7 and libslirp: slot `n` gets the unique local prefix
/// `fd17:625c:f037:(n+2)::/64` (``prefix6``; the group is hexadecimal, so slot 8 is `…:a::/64`), the gateway is `::2`
/// (also the address that reaches host `::1` with ``localhostReachable``), the DNS proxy `::3`. The router advertises
/// the prefix for SLAAC from its link-local address (`fe80::` with the gateway MAC's EUI-64), with the DNS proxy as
/// RDNSS, and answers stateless DHCPv6.
public struct NATConfiguration: Sendable {
    /// The guest's network.
    public var network: IPv4Network
    /// The largest IP packet either side sends, 576 to 65520 (the guest's MTU; DHCP tells the guest).
    public var mtu: Int = 1500
    /// Where queries to the DNS proxy go, first one first, over either family (a query to the IPv4 proxy may go to
    /// an IPv6 resolver and the other way round). Defaults to the nameservers of `/etc/resolv.conf`.
    public var dnsServers: [IPEndpoint]
    /// The domain name DHCP hands out (option 15).
    public var domainName: String?
    /// The DHCP lease time.
    public var leaseTime: UInt32 = 86_400
    /// The TFTP server DHCP names (`siaddr`, option 66); the gateway when ``tftpRoot`` is set, none otherwise.
    public var tftpServer: IPv4Address?
    /// A folder the built-in TFTP server (at the gateway, port 69) serves read-only; off when `nil`. Requests for
    /// paths outside it (`..`, absolute paths, symbolic links leading out) are refused.
    public var tftpRoot: String?
    /// The boot file DHCP names (`file`, option 67).
    public var bootFile: String?
    /// Whether the gateway address reaches host loopback (127.0.0.1). Off by default, as in VirtualBox 7.
    public var localhostReachable = false
    /// Whether the guest may reach only ``allowedDestinations`` (plus the gateway's own services and port forwards).
    public var restrict = false
    /// Where the guest's UDP broadcasts (to 255.255.255.255 or its network's directed broadcast) go on the host, sent
    /// with `SO_BROADCAST`: `nil` (the default) drops them (`drop_ip_destination`), so a guest's broadcasts never
    /// leave the host unless the host asks; `.broadcast` sends them as limited broadcasts, as VirtualBox's NAT does.
    /// A loopback address (127.255.255.255) needs ``localhostReachable`` or an allowed prefix listing it; in
    /// `restrict` mode an allowed prefix must list it.
    public var hostBroadcast: IPv4Address? = nil
    /// Destinations the guest may always reach, in `restrict` mode too. Listing a loopback prefix here is the one
    /// way to let the guest address host loopback directly.
    public var allowedDestinations: [IPv4Network] = []
    /// Port forwarding rules applied when the attachment starts.
    public var portForwards: [PortForwardRule] = []
    /// Bounds on what one guest can make the NAT hold.
    public var limits = NATLimits()
    /// Timeouts.
    public var timeouts = NATTimeouts()
    /// The MAC address the gateway (and every address it answers ARP for) uses.
    public var gatewayMAC: MACAddress
    /// Whether the NAT speaks IPv6 as well: NDP, router advertisements, stateless DHCPv6, ICMPv6 echo, TCP and UDP.
    public var ipv6 = true
    /// The guest's IPv6 prefix, a /64 (SLAAC needs one).
    public var prefix6: IPv6Network
    /// IPv6 destinations the guest may always reach, in `restrict` mode too (``allowedDestinations`` for IPv6).
    public var allowedDestinations6: [IPv6Network] = []

    /// VirtualBox's network for card slot `slot` (from 0): `10.0.(slot+2).0/24`. Slots past 253 wrap.
    public init(slot: Int = 0) {
        let third = UInt8(truncatingIfNeeded: 2 + (slot % 254 + 254) % 254)
        self.init(network: IPv4Network(address: IPv4Address(10, 0, third, 0), prefixLength: 24)!)
        prefix6 = Self.defaultPrefix6(slot: slot)
    }

    /// VirtualBox's IPv6 prefix for card slot `slot`: `fd17:625c:f037:(slot+2)::/64`, slots past 253 wrapping as
    /// the IPv4 networks do.
    public static func defaultPrefix6(slot: Int) -> IPv6Network {
        let group = UInt64(2 + (slot % 254 + 254) % 254)
        return IPv6Network(address: IPv6Address(high: 0xFD17_625C_F037_0000 | group, low: 0), prefixLength: 64)!
    }

    /// A configuration for `network` (at least 8 addresses: a /29 or larger).
    public init(network: IPv4Network) {
        self.network = network
        dnsServers = Self.systemNameservers()
        prefix6 = Self.defaultPrefix6(slot: 0)
        let gateway = network.host(2)?.rawValue ?? 0
        gatewayMAC = MACAddress(rawValue: 0x5255_0000_0000 | UInt64(gateway))
    }

    /// The gateway's address, `.2`.
    public var gateway: IPv4Address { network.host(2) ?? network.address }
    /// The DNS proxy's address, `.3`.
    public var dnsAddress: IPv4Address { network.host(3) ?? network.address }
    /// The gateway's IPv6 address, `::2` in ``prefix6``.
    public var gateway6: IPv6Address { prefix6.host(2) }
    /// The DNS proxy's IPv6 address, `::3` in ``prefix6``.
    public var dnsAddress6: IPv6Address { prefix6.host(3) }
    /// The router's link-local address, the source of its router advertisements: `fe80::` and the EUI-64 of
    /// ``gatewayMAC``.
    public var gatewayLinkLocal: IPv6Address { .linkLocal(for: gatewayMAC) }

    /// The first DHCP lease, `.15` (or the first address after `.3` in a small network).
    public var dhcpStart: IPv4Address {
        network.host(15) ?? network.host(4) ?? network.address
    }

    /// The TFTP server DHCP announces, if any.
    var announcedTFTPServer: IPv4Address? { tftpServer ?? (tftpRoot != nil ? gateway : nil) }

    /// Checks the configuration; the error names the bad field.
    public func validate() throws(NATError) {
        guard network.prefixLength <= 29 else {
            throw .configuration("network \(network) is too small: need a /29 or larger")
        }
        guard (576...65_520).contains(mtu) else { throw .configuration("mtu \(mtu) is outside 576...65520") }
        if let domainName, domainName.utf8.count > 255 || domainName.isEmpty {
            throw .configuration("domain name '\(domainName)' must be 1 to 255 bytes")
        }
        guard prefix6.prefixLength == 64, !prefix6.address.isMulticast, !prefix6.address.isLinkLocal,
            !prefix6.address.isIPv4Embedded
        else {
            throw .configuration("IPv6 prefix \(prefix6) must be a /64 outside multicast, link-local and ::/64")
        }
        for rule in portForwards where rule.isIPv6 && !ipv6 {
            throw .configuration("port forwarding rule '\(rule.name)' forwards IPv6, and IPv6 is off")
        }
        if let bootFile, bootFile.utf8.count > 127 {
            throw .configuration("boot file name is \(bootFile.utf8.count) bytes; at most 127 fit")
        }
    }

    /// The nameservers in `/etc/resolv.conf`, IPv4 and IPv6, in order (loopback ones such as 127.0.0.53 and `::1`
    /// included).
    public static func systemNameservers(path: String = "/etc/resolv.conf") -> [IPEndpoint] {
        guard let text = readTextFile(path) else { return [] }
        return parseNameservers(text)
    }

    /// The `nameserver` lines of a resolv.conf text, in order. Skipped: an IPv6 address with a zone
    /// (`fe80::1%eth0`; host sockets here carry no scope), a link-local one without, and one with an IPv4 address
    /// inside (an IPv6 host socket is IPv6-only).
    static func parseNameservers(_ text: String) -> [IPEndpoint] {
        var servers: [IPEndpoint] = []
        for line in text.split(whereSeparator: \.isNewline) {
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard words.count >= 2, words[0] == "nameserver" else { continue }
            if let address = IPv4Address(words[1]) {
                servers.append(IPEndpoint(.v4(address), WellKnownPort.dns.rawValue))
            } else if !words[1].contains("%"), let address = IPv6Address(words[1]), !address.isLinkLocal,
                !address.isIPv4Embedded || address.isLoopback, !address.isUnspecified, !address.isMulticast
            {
                servers.append(IPEndpoint(.v6(address), WellKnownPort.dns.rawValue))
            }
        }
        return servers
    }
}

/// Bounds on the resources one NAT instance may hold, whatever its guest does.
public struct NATLimits: Sendable {
    /// TCP connections (guest-initiated and forwarded) at once.
    public var tcpFlows = 1024
    /// UDP flows at once.
    public var udpFlows = 512
    /// ICMP echo flows (ping sockets) at once.
    public var icmpFlows = 64
    /// Bytes read from host sockets and not yet acknowledged by the guest, per TCP connection.
    public var tcpBufferPerFlow = 4 << 20
    /// Bytes from the guest acknowledged before the host socket took them, per TCP connection: the slack that keeps
    /// the guest's window open while the kernel grows the socket's send buffer.
    public var tcpGuestSlackPerFlow = 256 << 10
    /// Bytes held for TCP connections (both directions), all connections together.
    public var tcpBufferTotal = 64 << 20
    /// Segments sent to the guest and not yet acknowledged, per TCP connection (a card's receive queue holds 256
    /// frames by default; more in flight only overflows it).
    public var tcpSegmentsInFlight = 128
    /// TFTP transfers at once.
    public var tftpSessions = 8
    /// IPv4 datagrams being reassembled at once.
    public var reassemblies = 16
    /// Fragments held per datagram being reassembled.
    public var fragmentsPerDatagram = 64
    /// ICMP and ICMPv6 errors sent to the guest per second, on average (a token bucket); 0 turns the limit off.
    /// Errors over the limit are counted (`icmp_errors_rate_limited`) and not sent.
    public var icmpErrorsPerSecond = 100
    /// The bucket's size: errors sent back to back before the rate applies (at least 1).
    public var icmpErrorBurst = 50

    /// The defaults.
    public init() {}
}

/// How long idle or unfinished state lives, in seconds.
public struct NATTimeouts: Sendable {
    /// A UDP flow with no traffic either way (passt: 180 s).
    public var udpIdle: Double = 180
    /// A UDP flow to the DNS proxy with no traffic (libslirp: 10 s).
    public var dnsIdle: Double = 10
    /// A DNS query unanswered this long moves the flow to the next configured resolver and is sent there again
    /// (once per resolver, in order: bounded by the list); the guest's own retry then goes there too.
    public var dnsRetry: Double = 2
    /// An ICMP echo flow with no traffic.
    public var icmpIdle: Double = 60
    /// A TCP connect to the host that has not completed.
    public var tcpConnect: Double = 30
    /// A TCP connection with no traffic either way (passt: 7200 s).
    public var tcpIdle: Double = 7200
    /// A TCP connection where one side has closed and the other has not (passt: 60 s).
    public var tcpFinWait: Double = 60
    /// Retransmission timeout for data and control segments to the guest.
    public var tcpRetransmit: Double = 1
    /// An unfinished IPv4 reassembly (RFC 791 suggests 15 s).
    public var reassembly: Double = 15
    /// Between unsolicited router advertisements, once the first three (4 s apart) are out. They start with the
    /// guest's first IPv6 packet. The router lifetime advertised is three times this, at least 1800 s.
    public var routerAdvertisement: Double = 200

    /// The defaults.
    public init() {}
}

/// Errors a NAT reports; each names what went wrong and with what.
public enum NATError: Error, Equatable, CustomStringConvertible {
    /// A configuration field is invalid.
    case configuration(String)
    /// A port forwarding rule could not be parsed.
    case malformedRule(String, reason: String)
    /// A port forwarding rule's name is already taken, or no rule has the name.
    case ruleName(String, reason: String)
    /// A host system call failed.
    case system(String, errno: Int32)

    public var description: String {
        switch self {
        case .configuration(let text): return "invalid NAT configuration: \(text)"
        case .malformedRule(let rule, let reason): return "malformed port forwarding rule '\(rule)': \(reason)"
        case .ruleName(let name, let reason): return "port forwarding rule '\(name)': \(reason)"
        case .system(let what, let code): return "\(what): \(String(cString: strerror(code))) (errno \(code))"
        }
    }
}
