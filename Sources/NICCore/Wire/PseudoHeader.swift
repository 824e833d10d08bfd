/// The pseudo-headers TCP, UDP and ICMPv6 checksums cover (RFC 9293 3.1, RFC 768, RFC 8200 8.1).
extension InternetChecksum {
    /// A sum started with a pseudo-header over the address fields as they stand in an IP header (`addresses`: IPv4
    /// bytes 12..<20 or IPv6 bytes 8..<40), the protocol and the upper-layer length (as 32 bits).
    @inlinable
    public static func pseudoHeader(addresses: UnsafeRawBufferPointer, protocolNumber: UInt8, length: Int)
        -> InternetChecksum
    {
        var sum = InternetChecksum()
        sum.add(addresses)
        sum.add(word: UInt16(protocolNumber))
        sum.add(word: UInt16(truncatingIfNeeded: length >> 16))
        sum.add(word: UInt16(truncatingIfNeeded: length))
        return sum
    }

    /// A sum started with the IPv4 pseudo-header: addresses (first octet most significant), protocol and the
    /// 16-bit upper-layer length.
    @inlinable
    public static func pseudoHeader(source: UInt32, destination: UInt32, protocolNumber: UInt8, length: Int)
        -> InternetChecksum
    {
        var sum = InternetChecksum()
        sum.add(word: UInt16(truncatingIfNeeded: source >> 16))
        sum.add(word: UInt16(truncatingIfNeeded: source))
        sum.add(word: UInt16(truncatingIfNeeded: destination >> 16))
        sum.add(word: UInt16(truncatingIfNeeded: destination))
        sum.add(word: UInt16(protocolNumber))
        sum.add(word: UInt16(truncatingIfNeeded: length))
        return sum
    }

    /// A sum started with the IPv6 pseudo-header: the two 16-byte addresses, the 32-bit upper-layer length and the
    /// next header.
    @inlinable
    public static func pseudoHeader(
        source: UnsafeRawBufferPointer, destination: UnsafeRawBufferPointer, protocolNumber: UInt8, length: Int
    ) -> InternetChecksum {
        var sum = InternetChecksum()
        sum.add(source)
        sum.add(destination)
        sum.add(word: UInt16(truncatingIfNeeded: length >> 16))
        sum.add(word: UInt16(truncatingIfNeeded: length))
        sum.add(word: UInt16(protocolNumber))
        return sum
    }
}
