import NICCore

extension NATEngine {
    /// Answers ARP requests for the gateway and the DNS proxy; learns nothing else.
    func handleARP(_ bytes: [UInt8], from source: MACAddress) {
        let parsed: (ARPOperation?, MACAddress, UInt32, UInt32)? = bytes.withUnsafeBytes { raw in
            guard raw.count >= EthernetHeader.size, let arp = ARPHeader(UnsafeRawBufferPointer(rebasing: raw[14...]))
            else { return nil }
            return (arp.operation, arp.senderHardwareAddress, arp.senderProtocolAddress, arp.targetProtocolAddress)
        }
        guard let (operation, senderMAC, sender, target) = parsed else { return counts.bump(.dropARPMalformed) }
        let senderIP = IPv4Address(rawValue: sender)
        let targetIP = IPv4Address(rawValue: target)
        guard operation == .request else { return }  // replies and gratuitous announcements need no answer
        guard senderMAC == source else { return counts.bump(.dropARPMalformed) }
        guestMAC = source
        if config.network.contains(senderIP), senderIP != config.gateway, senderIP != config.dnsAddress {
            guestAddress = senderIP
        }
        guard targetIP == config.gateway || targetIP == config.dnsAddress else { return counts.bump(.dropNotForUs) }
        var reply: [UInt8] = []
        reply.reserveCapacity(28)
        reply.appendBigEndian16(1)  // Ethernet
        reply.appendBigEndian16(EtherType.ipv4)
        reply.append(6)
        reply.append(4)
        reply.appendBigEndian16(ARPOperation.reply.rawValue)
        reply += config.gatewayMAC.bytes
        reply += targetIP.bytes
        reply += senderMAC.bytes
        reply += senderIP.bytes
        queue(ethernetFrame(to: source, from: config.gatewayMAC, type: EtherType.arp, payload: reply))
        counts.bump(.arpReplies)
    }
}
