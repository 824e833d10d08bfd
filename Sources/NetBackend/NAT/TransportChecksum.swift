import NICCore

/// An address family whose pseudo-header (NICCore's) the NAT's TCP, UDP and ICMPv6 checksums cover.
protocol PseudoHeaderAddress {
    /// The sum over the pseudo-header of a `length`-byte upper-layer message from `source` to `destination`.
    static func pseudoHeaderSum(source: Self, destination: Self, proto: UInt8, length: Int) -> InternetChecksum
}

extension IPv4Address: PseudoHeaderAddress {
    static func pseudoHeaderSum(source: Self, destination: Self, proto: UInt8, length: Int) -> InternetChecksum {
        .pseudoHeader(source: source.rawValue, destination: destination.rawValue, protocolNumber: proto, length: length)
    }
}

extension IPv6Address: PseudoHeaderAddress {
    static func pseudoHeaderSum(source: Self, destination: Self, proto: UInt8, length: Int) -> InternetChecksum {
        source.bytes.withUnsafeBytes { from in
            destination.bytes.withUnsafeBytes { to in
                .pseudoHeader(source: from, destination: to, protocolNumber: proto, length: length)
            }
        }
    }
}

/// The sum over the pseudo-header of a `length`-byte upper-layer message.
func pseudoHeaderSum<Address: PseudoHeaderAddress>(
    source: Address, destination: Address, proto: UInt8, length: Int
) -> InternetChecksum {
    Address.pseudoHeaderSum(source: source, destination: destination, proto: proto, length: length)
}

/// The TCP/UDP (or ICMPv6) checksum over the pseudo-header and `segment`.
func transportChecksum<Address: PseudoHeaderAddress>(
    source: Address, destination: Address, proto: UInt8, segment: [UInt8]
) -> UInt16 {
    var checksum = Address.pseudoHeaderSum(
        source: source, destination: destination, proto: proto, length: segment.count)
    checksum.add(segment)
    return checksum.value
}

/// The pseudo-header sum of either family; `nil` when the two addresses' families differ.
func pseudoHeaderSum(source: IPAddress, destination: IPAddress, proto: UInt8, length: Int) -> InternetChecksum? {
    switch (source, destination) {
    case (.v4(let from), .v4(let to)): pseudoHeaderSum(source: from, destination: to, proto: proto, length: length)
    case (.v6(let from), .v6(let to)): pseudoHeaderSum(source: from, destination: to, proto: proto, length: length)
    default: nil
    }
}

/// The TCP/UDP checksum over the pseudo-header of either family; `nil` when the two addresses' families differ.
func transportChecksum(source: IPAddress, destination: IPAddress, proto: UInt8, segment: [UInt8]) -> UInt16? {
    guard var checksum = pseudoHeaderSum(source: source, destination: destination, proto: proto, length: segment.count)
    else { return nil }
    checksum.add(segment)
    return checksum.value
}
