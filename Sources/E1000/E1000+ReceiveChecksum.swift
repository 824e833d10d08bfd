import NICCore

/// Receive checksum offload (RXCSUM): the IPv4 header checksum (IPCS, IPE) and the TCP or UDP checksum over the
/// pseudo-header (TCPCS, TCPE; the 8254x reports UDP through TCPCS too). IXSM when both offloads are off.
extension E1000Card {
    /// IPv4 header and TCP/UDP checksum status (RXCSUM.IPOFL/TUOFL); IXSM when neither is enabled.
    func receiveChecksumStatus(_ frame: UnsafeRawBufferPointer, networkOffset l3: Int) -> (UInt8, UInt8) {
        let rxcsum = regs[Reg.rxcsum]
        let ipOffload = rxcsum & RXCSUM.ipOffload != 0
        let tcpOffload = rxcsum & RXCSUM.tcpUDPOffload != 0
        guard ipOffload || tcpOffload else { return (ReceiveStatus.ignoreChecksum, 0) }
        let count = frame.count
        guard count >= l3 + 20, frame[l3 - 2] == 0x08, frame[l3 - 1] == 0x00, frame[l3] >> 4 == 4 else { return (0, 0) }
        let headerLength = Int(frame[l3] & 0x0F) * 4
        guard headerLength >= 20, l3 + headerLength <= count else { return (0, 0) }
        var status: UInt8 = 0
        var errors: UInt8 = 0
        if ipOffload {
            status |= ReceiveStatus.ipChecksum
            var sum = InternetChecksum()
            sum.add(UnsafeRawBufferPointer(rebasing: frame[l3..<(l3 + headerLength)]))
            if sum.value != 0 { errors |= ReceiveStatus.ipError }
        }
        let totalLength = Int(frame[l3 + 2]) << 8 | Int(frame[l3 + 3])
        let fragmented = (Int(frame[l3 + 6]) << 8 | Int(frame[l3 + 7])) & 0x3FFF != 0
        let proto = frame[l3 + 9]
        guard tcpOffload, !fragmented, proto == 6 || proto == 17, totalLength >= headerLength,
            l3 + totalLength <= count
        else { return (status, errors) }
        let l4 = l3 + headerLength
        let l4Length = totalLength - headerLength
        guard l4Length >= (proto == 6 ? 20 : 8) else { return (status, errors) }
        status |= ReceiveStatus.tcpChecksum
        if proto == 17, frame[l4 + 6] == 0, frame[l4 + 7] == 0 { return (status, errors) }
        var sum = InternetChecksum()
        sum.add(UnsafeRawBufferPointer(rebasing: frame[(l3 + 12)..<(l3 + 20)]))
        sum.add(word: UInt16(proto))
        sum.add(word: UInt16(l4Length))
        sum.add(UnsafeRawBufferPointer(rebasing: frame[l4..<(l4 + l4Length)]))
        if sum.value != 0 { errors |= ReceiveStatus.tcpError }
        return (status, errors)
    }
}
