import NICCore

/// An IPv6 address: the first 8 bytes in ``high``, the last 8 in ``low``, each read big-endian.
public struct IPv6Address: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// Bytes 0 to 7 as a big-endian number: `fd17:625c:f037:2::` has `0xFD17_625C_F037_0002`.
    public var high: UInt64
    /// Bytes 8 to 15 as a big-endian number.
    public var low: UInt64

    /// `::`.
    public static let any = IPv6Address(high: 0, low: 0)
    /// `::1`.
    public static let loopback = IPv6Address(high: 0, low: 1)
    /// `ff02::1`, every node on the link.
    public static let allNodes = IPv6Address(high: 0xFF02 << 48, low: 1)
    /// `ff02::2`, every router on the link.
    public static let allRouters = IPv6Address(high: 0xFF02 << 48, low: 2)
    /// `ff02::1:2`, every DHCPv6 relay agent and server on the link.
    public static let allDHCPServers = IPv6Address(high: 0xFF02 << 48, low: 0x1_0002)

    /// Wraps the two halves.
    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// Reads sixteen bytes at `offset`; `nil` when they are not all there.
    init?(in bytes: [UInt8], at offset: Int) {
        guard offset >= 0, offset <= bytes.count - 16 else { return nil }
        self.init(high: bytes.bigEndian64(at: offset), low: bytes.bigEndian64(at: offset + 8))
    }

    /// Reads the first sixteen bytes of `bytes` (zero where they are missing).
    init(_ bytes: UnsafeRawBufferPointer) {
        self.init(
            high: bytes.load(bigEndian: UInt64.self, at: 0) ?? 0, low: bytes.load(bigEndian: UInt64.self, at: 8) ?? 0)
    }

    /// Parses the text forms of RFC 4291 (`fd17:625c:f037:2::15`, `::1`, `::ffff:10.0.2.15`); `nil` for anything
    /// else, a zone (`%eth0`) included. Surrounding brackets (`[::1]`) are accepted.
    public init?(_ text: some StringProtocol) {
        var body = Substring(text)
        if body.hasPrefix("["), body.hasSuffix("]") { body = body.dropFirst().dropLast() }
        guard body.utf8.count >= 2, body.utf8.count <= 45 else { return nil }
        /// The groups of a run without "::"; a dotted quad may end the address's last run.
        func parse(_ run: Substring, last: Bool) -> [UInt16]? {
            guard !run.isEmpty else { return [] }
            let parts = run.split(separator: ":", omittingEmptySubsequences: false)
            var groups: [UInt16] = []
            for (index, part) in parts.enumerated() {
                if last, index == parts.count - 1, part.contains(".") {
                    guard let v4 = IPv4Address(part) else { return nil }
                    groups += [UInt16(truncatingIfNeeded: v4.rawValue >> 16), UInt16(truncatingIfNeeded: v4.rawValue)]
                    continue
                }
                guard (1...4).contains(part.utf8.count), part.allSatisfy({ $0.isASCII && $0.isHexDigit }),
                    let value = UInt16(part, radix: 16)
                else { return nil }
                groups.append(value)
            }
            return groups
        }
        var groups: [UInt16]
        // The first "::", found without the string-processing library (libVNIC.a links only the core runtime).
        let colons = body.indices.first {
            $0 < body.endIndex && body[$0] == ":" && body[body.index(after: $0)...].first == ":"
        }
        if let gap = colons {
            let tail = body[body.index(gap, offsetBy: 2)...]
            let doubled = tail.indices.contains { tail[$0] == ":" && tail[tail.index(after: $0)...].first == ":" }
            guard !doubled, let head = parse(body[..<gap], last: false),
                let rest = parse(tail, last: true), head.count + rest.count <= 7
            else { return nil }
            groups = head + [UInt16](repeating: 0, count: 8 - head.count - rest.count) + rest
        } else {
            guard let all = parse(body, last: true) else { return nil }
            groups = all
        }
        guard groups.count == 8 else { return nil }
        var high: UInt64 = 0
        var low: UInt64 = 0
        for group in groups[0..<4] { high = high << 16 | UInt64(group) }
        for group in groups[4..<8] { low = low << 16 | UInt64(group) }
        self.init(high: high, low: low)
    }

    /// The sixteen bytes in network order.
    public var bytes: [UInt8] {
        var result: [UInt8] = []
        result.reserveCapacity(16)
        for shift in stride(from: 56, through: 0, by: -8) { result.append(UInt8(truncatingIfNeeded: high >> shift)) }
        for shift in stride(from: 56, through: 0, by: -8) { result.append(UInt8(truncatingIfNeeded: low >> shift)) }
        return result
    }

    /// The eight 16-bit groups.
    var groups: [UInt16] {
        (0..<8).map { index in
            let half = index < 4 ? high : low
            return UInt16(truncatingIfNeeded: half >> UInt64(48 - 16 * (index % 4)))
        }
    }

    /// Whether the address is `::`.
    public var isUnspecified: Bool { high == 0 && low == 0 }
    /// Whether the address is `::1`.
    public var isLoopback: Bool { high == 0 && low == 1 }
    /// Whether the address is in `ff00::/8`.
    public var isMulticast: Bool { high >> 56 == 0xFF }
    /// Whether the address is in `fe80::/10`.
    public var isLinkLocal: Bool { high >> 54 == 0x3FA }
    /// Whether the address is an IPv4-mapped one (`::ffff:a.b.c.d`) or an IPv4-compatible one (`::a.b.c.d`), which a
    /// host socket would turn into IPv4 traffic.
    public var isIPv4Embedded: Bool { high == 0 && (low >> 32 == 0xFFFF || low >> 32 == 0) }
    /// The solicited-node multicast address (`ff02::1:ffXX:XXXX`, RFC 4291 2.7.1) of this address.
    public var solicitedNode: IPv6Address {
        IPv6Address(high: 0xFF02 << 48, low: 0x1_FF00_0000 | (low & 0xFF_FFFF))
    }

    /// The Ethernet multicast address frames to this multicast address go to (`33:33` and the low 32 bits).
    var multicastMAC: MACAddress { MACAddress(rawValue: 0x3333_0000_0000 | (low & 0xFFFF_FFFF)) }

    /// The link-local address with the modified EUI-64 interface identifier of `mac` (RFC 4291 appendix A).
    public static func linkLocal(for mac: MACAddress) -> IPv6Address {
        IPv6Address(high: 0xFE80 << 48, low: interfaceIdentifier(for: mac))
    }

    /// The modified EUI-64 interface identifier of `mac`: `ff:fe` in the middle and the universal/local bit flipped.
    static func interfaceIdentifier(for mac: MACAddress) -> UInt64 {
        let raw = mac.rawValue
        let upper = (raw >> 24) ^ 0x02_0000
        return upper << 40 | 0xFF_FE00_0000 | (raw & 0xFF_FFFF)
    }

    public static func < (lhs: IPv6Address, rhs: IPv6Address) -> Bool {
        lhs.high != rhs.high ? lhs.high < rhs.high : lhs.low < rhs.low
    }

    /// The RFC 5952 form: lower case, no leading zeros, the longest run of two or more zero groups as `::`.
    public var description: String {
        let groups = self.groups
        var bestStart = -1
        var bestLength = 1
        var index = 0
        while index < 8 {
            guard groups[index] == 0 else {
                index += 1
                continue
            }
            var end = index
            while end < 8, groups[end] == 0 { end += 1 }
            if end - index > bestLength {
                bestStart = index
                bestLength = end - index
            }
            index = end
        }
        func hex(_ range: Range<Int>) -> String {
            groups[range].map { String($0, radix: 16) }.joined(separator: ":")
        }
        guard bestStart >= 0 else { return hex(0..<8) }
        return hex(0..<bestStart) + "::" + hex((bestStart + bestLength)..<8)
    }
}

extension IPv6Address: NetworkAddress {
    /// 128.
    public static var bitWidth: Int { 128 }

    /// The address with its host bits (after the first `prefixLength`) cleared.
    public func masked(_ prefixLength: Int) -> IPv6Address {
        func mask(_ bits: Int) -> UInt64 { bits <= 0 ? 0 : bits >= 64 ? .max : ~(UInt64.max >> UInt64(bits)) }
        return IPv6Address(high: high & mask(prefixLength), low: low & mask(prefixLength - 64))
    }

    /// Parses an address, brackets allowed.
    public init?(networkText: Substring, hasLength: Bool) { self.init(networkText) }
}

/// An IPv6 prefix such as `fd17:625c:f037:2::/64`.
public typealias IPv6Network = IPNetwork<IPv6Address>

extension IPNetwork where Address == IPv6Address {
    /// The address with interface identifier `identifier` (the low 64 bits) in a /64 or shorter prefix.
    public func host(_ identifier: UInt64) -> IPv6Address { IPv6Address(high: address.high, low: identifier) }
}

/// An IPv4 or an IPv6 address: what the NAT's flows are keyed on.
public enum IPAddress: Hashable, Sendable, CustomStringConvertible {
    case v4(IPv4Address)
    case v6(IPv6Address)

    /// 127.0.0.1.
    public static let loopback = IPAddress.v4(.loopback)

    /// Parses a dotted quad or an IPv6 address (in brackets or not).
    public init?(_ text: some StringProtocol) {
        if let v4 = IPv4Address(text) {
            self = .v4(v4)
        } else if let v6 = IPv6Address(text) {
            self = .v6(v6)
        } else {
            return nil
        }
    }

    /// Whether this is an IPv6 address.
    public var isIPv6: Bool {
        if case .v6 = self { return true }
        return false
    }

    /// Whether the address is host loopback (127.0.0.0/8 or `::1`).
    public var isLoopback: Bool {
        switch self {
        case .v4(let address): return address.isLoopback
        case .v6(let address): return address.isLoopback
        }
    }

    /// The address's bytes in network order (4 or 16).
    public var bytes: [UInt8] {
        switch self {
        case .v4(let address): return address.bytes
        case .v6(let address): return address.bytes
        }
    }

    public var description: String {
        switch self {
        case .v4(let address): return address.description
        case .v6(let address): return address.description
        }
    }
}

/// An address of either family and a port.
public typealias IPEndpoint = Endpoint<IPAddress>

extension IPAddress: EndpointAddress {}

extension Endpoint where Address == IPAddress {
    /// The same endpoint in the family-neutral form.
    public init(_ endpoint: IPv4Endpoint) { self.init(.v4(endpoint.address), endpoint.port) }

    /// Parses `1.2.3.4`, `1.2.3.4:5353`, `::1`, `[::1]` (those with `defaultPort`) or `[::1]:5353`.
    public init?(_ text: some StringProtocol, defaultPort: UInt16) {
        if let endpoint = IPv4Endpoint(text, defaultPort: defaultPort) {
            self.init(endpoint)
            return
        }
        if text.first == "[", let close = text.lastIndex(of: "]"), text.index(after: close) != text.endIndex {
            let rest = text[text.index(after: close)...]
            guard rest.first == ":", let port = UInt16(rest.dropFirst()), port != 0,
                let address = IPv6Address(text[...close])
            else { return nil }
            self.init(.v6(address), port)
            return
        }
        guard let address = IPv6Address(text) else { return nil }
        self.init(.v6(address), defaultPort)
    }

    /// The IPv4 endpoint, when this is one.
    var v4: IPv4Endpoint? {
        if case .v4(let address) = address { return IPv4Endpoint(address, port) }
        return nil
    }
}
