import NICCore

extension NATEngine {
    /// Answers ARP requests for the gateway and the DNS proxy; learns nothing else.
    func handleARP(_ bytes: [UInt8], from source: MACAddress) {
        // htype 1 (Ethernet), ptype IPv4, hlen 6, plen 4.
        guard bytes.count >= 14 + 28, bytes.u16(14) == 1, bytes.u16(16) == EtherType.ipv4, bytes.u8(18) == 6,
            bytes.u8(19) == 4
        else { return counts.bump(.dropARPMalformed) }
        let operation = bytes.u16(20)
        let senderMAC = MACAddress(rawValue: UInt64(bytes.u16(22)) << 32 | UInt64(bytes.u32(24)))
        let senderIP = IPv4Address(rawValue: bytes.u32(28))
        let targetIP = IPv4Address(rawValue: bytes.u32(38))
        guard operation == 1 else { return }  // replies and gratuitous announcements need no answer
        guard senderMAC == source else { return counts.bump(.dropARPMalformed) }
        guestMAC = source
        if config.network.contains(senderIP), senderIP != config.gateway, senderIP != config.dnsAddress {
            guestAddress = senderIP
        }
        guard targetIP == config.gateway || targetIP == config.dnsAddress else { return counts.bump(.dropNotForUs) }
        var reply: [UInt8] = []
        reply.reserveCapacity(28)
        reply.append16(1)
        reply.append16(EtherType.ipv4)
        reply.append(6)
        reply.append(4)
        reply.append16(2)
        reply += config.gatewayMAC.bytes
        reply += targetIP.bytes
        reply += senderMAC.bytes
        reply += senderIP.bytes
        queue(ethernetFrame(to: source, from: config.gatewayMAC, type: EtherType.arp, payload: reply))
        counts.bump(.arpReplies)
    }
}
