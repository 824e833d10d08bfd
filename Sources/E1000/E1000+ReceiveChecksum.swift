import NICCore

/// Receive checksum offload (RXCSUM): the IPv4 header checksum (IPCS, IPE) and the TCP or UDP checksum over the
/// pseudo-header (TCPCS, TCPE; the 8254x reports UDP through TCPCS too). IXSM when both offloads are off.
extension E1000Card {
    /// IPv4 header and TCP/UDP checksum status (RXCSUM.IPOFL/TUOFL); IXSM when neither is enabled.
    func receiveChecksumStatus(_ frame: UnsafeRawBufferPointer, networkOffset l3: Int) -> (UInt8, UInt8) {
        let rxcsum = regs[Reg.rxcsum]
        let ipOffload = rxcsum & RXCSUM.ipOffload.mask != 0
        let tcpOffload = rxcsum & RXCSUM.tcpUDPOffload.mask != 0
        guard ipOffload || tcpOffload else { return (ReceiveStatus.ignoreChecksum.mask, 0) }
        guard l3 >= 2, l3 <= frame.count, frame.load(bigEndian: UInt16.self, at: l3 - 2) == EtherType.ipv4,
            let ip = IPv4Header(UnsafeRawBufferPointer(rebasing: frame[l3...]))
        else { return (0, 0) }
        let headerLength = ip.headerLength
        var status: UInt8 = 0
        var errors: UInt8 = 0
        if ipOffload {
            status |= ReceiveStatus.ipChecksum.mask
            if !ip.hasValidChecksum { errors |= ReceiveErrors.ipError.mask }
        }
        let totalLength = ip.totalLength
        let proto = ip.protocolNumber
        guard tcpOffload, !ip.isFragment, proto == IPProtocolNumber.tcp || proto == IPProtocolNumber.udp,
            totalLength >= headerLength, totalLength <= ip.bytes.count
        else { return (status, errors) }
        let segment = UnsafeRawBufferPointer(rebasing: ip.bytes[headerLength..<totalLength])
        guard segment.count >= (proto == IPProtocolNumber.tcp ? TCPHeader.minimumSize : UDPHeader.size) else {
            return (status, errors)
        }
        status |= ReceiveStatus.tcpChecksum.mask
        if proto == IPProtocolNumber.udp, UDPHeader(segment)?.checksum == 0 { return (status, errors) }
        var sum = InternetChecksum.pseudoHeader(
            addresses: ip.addressBytes, protocolNumber: proto, length: segment.count)
        sum.add(segment)
        if sum.value != 0 { errors |= ReceiveErrors.tcpError.mask }
        return (status, errors)
    }
}
