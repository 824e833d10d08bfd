import NICCore

/// An IPv4 address, host byte order in ``rawValue``.
public struct IPv4Address: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The address as a number: `10.0.2.15` is `0x0A00_020F`.
    public var rawValue: UInt32

    /// 0.0.0.0.
    public static let any = IPv4Address(rawValue: 0)
    /// 255.255.255.255, the limited broadcast address.
    public static let broadcast = IPv4Address(rawValue: 0xFFFF_FFFF)
    /// 127.0.0.1.
    public static let loopback = IPv4Address(127, 0, 0, 1)

    /// Wraps a number.
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// Creates `a.b.c.d`.
    public init(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) {
        rawValue = UInt32(a) << 24 | UInt32(b) << 16 | UInt32(c) << 8 | UInt32(d)
    }

    /// Parses a dotted quad (`10.0.2.15`); `nil` for anything else.
    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var value: UInt32 = 0
        for part in parts {
            guard (1...3).contains(part.count), part.allSatisfy(\.isASCII), part.allSatisfy(\.isNumber),
                let octet = UInt8(part)
            else { return nil }
            value = value << 8 | UInt32(octet)
        }
        rawValue = value
    }

    /// Reads four bytes at `offset`; `nil` when they are not all there.
    init?(in bytes: [UInt8], at offset: Int) {
        guard let value = bytes.load(bigEndian: UInt32.self, at: offset) else { return nil }
        rawValue = value
    }

    /// The four octets in network order.
    public var bytes: [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(4)
        bytes.appendBigEndian32(rawValue)
        return bytes
    }

    /// Whether the address is in 127.0.0.0/8.
    public var isLoopback: Bool { rawValue >> 24 == 127 }
    /// Whether the address is in 224.0.0.0/4.
    public var isMulticast: Bool { rawValue >> 28 == 0xE }
    /// Whether the address is in 0.0.0.0/8 ("this network").
    public var isThisNetwork: Bool { rawValue >> 24 == 0 }
    /// Whether the address is in 240.0.0.0/4 (reserved, including the limited broadcast address).
    public var isReserved: Bool { rawValue >> 28 == 0xF }

    public static func < (lhs: IPv4Address, rhs: IPv4Address) -> Bool { lhs.rawValue < rhs.rawValue }

    public var description: String { bytes.map(String.init).joined(separator: ".") }
}

/// An address a network prefix is made of: ``IPv4Address`` or ``IPv6Address``.
public protocol NetworkAddress: Hashable, Sendable, CustomStringConvertible {
    /// How many bits the address has: the longest prefix.
    static var bitWidth: Int { get }
    /// The address with every bit after the first `prefixLength` cleared.
    func masked(_ prefixLength: Int) -> Self
    /// Parses the address of `address/length` (`hasLength`) or of a bare address.
    init?(networkText: Substring, hasLength: Bool)
}

/// A network prefix such as `10.0.2.0/24` or `fd17:625c:f037:2::/64`: ``IPv4Network`` or ``IPv6Network``.
public struct IPNetwork<Address: NetworkAddress>: Hashable, Sendable, CustomStringConvertible {
    /// The network address (host bits zero).
    public let address: Address
    /// The prefix length, 0 to the address's bit width.
    public let prefixLength: Int

    /// Creates the network of `address` with `prefixLength` bits; host bits of `address` are cleared. `nil` when the
    /// length is outside 0 to the address's bit width.
    public init?(address: Address, prefixLength: Int) {
        guard (0...Address.bitWidth).contains(prefixLength) else { return nil }
        self.prefixLength = prefixLength
        self.address = address.masked(prefixLength)
    }

    /// Parses `address/length`; a bare address is a network of one. IPv4 also takes VirtualBox's short form with
    /// missing trailing octets (`192.168/16`, `10/8`), IPv6 brackets around the address.
    public init?(_ text: some StringProtocol) {
        let halves = text.split(separator: "/", omittingEmptySubsequences: false)
        guard (1...2).contains(halves.count) else { return nil }
        var length = Address.bitWidth
        if halves.count == 2 {
            let digits = halves[1]
            guard (1...String(Address.bitWidth).count).contains(digits.count),
                digits.allSatisfy({ $0.isASCII && $0.isNumber }), let parsed = Int(digits)
            else { return nil }
            length = parsed
        }
        guard let address = Address(networkText: Substring(halves[0]), hasLength: halves.count == 2) else {
            return nil
        }
        self.init(address: address, prefixLength: length)
    }

    /// Whether `candidate` lies in the network.
    public func contains(_ candidate: Address) -> Bool { candidate.masked(prefixLength) == address }

    /// `10.0.2.0/24`.
    public var description: String { "\(address)/\(prefixLength)" }
}

extension IPv4Address: NetworkAddress {
    /// 32.
    public static var bitWidth: Int { 32 }

    /// The address with its host bits (after the first `prefixLength`) cleared.
    public func masked(_ prefixLength: Int) -> IPv4Address { IPv4Address(rawValue: rawValue & Self.mask(prefixLength)) }

    /// Parses an address, or with a length VirtualBox's short form (`192.168`: missing octets are 0).
    public init?(networkText: Substring, hasLength: Bool) {
        var octets = networkText.split(separator: Character("."), omittingEmptySubsequences: false).map { String($0) }
        guard (1...4).contains(octets.count) else { return nil }
        if hasLength { while octets.count < 4 { octets.append("0") } }
        self.init(octets.joined(separator: "."))
    }

    /// The netmask of a prefix `length` bits long.
    static func mask(_ length: Int) -> UInt32 {
        length <= 0 ? 0 : length >= 32 ? 0xFFFF_FFFF : ~(UInt32(0xFFFF_FFFF) >> UInt32(length))
    }
}

/// An IPv4 prefix such as `10.0.2.0/24`.
public typealias IPv4Network = IPNetwork<IPv4Address>

extension IPNetwork where Address == IPv4Address {
    /// The netmask as a number.
    public var mask: UInt32 { IPv4Address.mask(prefixLength) }
    /// The netmask as an address (`255.255.255.0`).
    public var netmask: IPv4Address { IPv4Address(rawValue: mask) }
    /// The directed broadcast address.
    public var broadcast: IPv4Address { IPv4Address(rawValue: address.rawValue | ~mask) }
    /// The number of addresses in the network.
    public var size: UInt64 { UInt64(1) << UInt64(32 - prefixLength) }

    /// The address `offset` from the network address (`host(2)` of 10.0.2.0/24 is 10.0.2.2); `nil` if it falls
    /// outside the network.
    public func host(_ offset: UInt32) -> IPv4Address? {
        guard UInt64(offset) < size else { return nil }
        return IPv4Address(rawValue: address.rawValue | offset)
    }
}

/// An address that stands in an ``Endpoint``: ``IPv4Address`` or ``IPAddress``.
public protocol EndpointAddress: Hashable, Sendable, CustomStringConvertible {
    /// Whether the address is IPv6 (bracketed in `[address]:port`).
    var isIPv6: Bool { get }
}

extension IPv4Address: EndpointAddress {
    /// Never: an IPv4 address.
    public var isIPv6: Bool { false }
}

/// An address and a port: ``IPv4Endpoint`` or, of either family, ``IPEndpoint``.
public struct Endpoint<Address: EndpointAddress>: Hashable, Sendable, CustomStringConvertible {
    /// The address.
    public var address: Address
    /// The port.
    public var port: UInt16

    /// Creates `address:port`.
    public init(_ address: Address, _ port: UInt16) {
        self.address = address
        self.port = port
    }

    /// `1.2.3.4:53` or `[::1]:53`.
    public var description: String { address.isIPv6 ? "[\(address)]:\(port)" : "\(address):\(port)" }
}

/// An IPv4 address and a port.
public typealias IPv4Endpoint = Endpoint<IPv4Address>

extension Endpoint where Address == IPv4Address {
    /// Parses `1.2.3.4` (with `defaultPort`) or `1.2.3.4:5353`.
    public init?(_ text: some StringProtocol, defaultPort: UInt16) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), let address = IPv4Address(parts[0]) else { return nil }
        var port = defaultPort
        if parts.count == 2 {
            guard let parsed = UInt16(parts[1]), parsed != 0 else { return nil }
            port = parsed
        }
        self.init(address, port)
    }
}
