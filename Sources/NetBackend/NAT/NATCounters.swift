import NICCore

/// Everything a NAT counts: each drop and error has its own counter.
enum NATCounter: Int, CaseIterable {
    case framesIn, framesOut
    case dropShortFrame, dropFrameTooLong, dropNotForUs, dropUnknownEtherType, dropVLAN
    case dropARPMalformed, arpReplies
    case dropIPMalformed, dropIPChecksum, dropIPOptions, dropIPSourceSpoofed, dropTTLExceeded, dropIPProtocol
    case dropIPDestination, dropIPTooBig
    case fragmentsIn, reassembled, dropFragmentOverlap, dropFragmentTooMany, dropFragmentTooLarge
    case dropFragmentTableFull, dropFragmentTimeout
    case dropICMPMalformed, dropICMPChecksum, dropICMPType, icmpEchoLocal, icmpEchoForwarded, icmpEchoReplies
    case dropICMPSocket, dropICMPFlowLimit, icmpErrorsSent, icmpErrorsRateLimited
    case dropUDPMalformed, dropUDPChecksum, dropUDPFlowLimit, dropUDPSocket, dropUDPSend, udpFlowsExpired
    case udpBroadcastsDelivered, udpBroadcastAnswers, udpBroadcastPortsExpired, dropUDPUnsolicited
    case dropUDPBroadcastIdle, dropUDPBroadcastSocket, dropUDPBroadcastLimit
    case dropDHCPMalformed, dropDHCPNoLease, dhcpOffers, dhcpAcks, dhcpNaks
    case dnsNoServer, dnsFailovers, dnsResolverTimeouts
    case dropTFTPMalformed, tftpRefused, tftpTransfers, tftpTimeouts, dropTFTPSessionLimit
    case dropTCPMalformed, dropTCPChecksum, dropTCPFlowLimit, dropTCPNoFlow, dropTCPOutOfOrder, dropTCPSocket
    case tcpConnects, tcpRefused, tcpUnreachable, tcpResetsSent, tcpRetransmits, tcpFlowsTimedOut, tcpSendPartial
    case tcpBufferLimited
    case dropPolicyDenied, dropPolicyLoopback
    case dropPortClosed, dropNoGuestAddress
    case forwardAccepted, forwardErrors
    case dropIpv6Disabled, dropIpv6Malformed, dropIpv6Fragment, dropIpv6ExtensionHeader, dropIpv6Source
    case dropNdpMalformed, ndpAdvertisements, ndpRouterAdvertisements, ndpDefended
    case dropIcmpv6Malformed, dropIcmpv6Checksum, dropIcmpv6Type
    case dropDhcpv6Malformed, dhcpv6Replies, dhcpv6Advertises, dhcpv6Ignored

    /// The counter's name in ``NATAttachment/counters``.
    var name: String {
        let raw = Array(String(describing: self))
        var name = ""
        for (index, character) in raw.enumerated() {
            if character.isUppercase, index > 0 {
                let previousLower = raw[index - 1].isLowercase
                let nextLower = index + 1 < raw.count && raw[index + 1].isLowercase
                if previousLower || nextLower { name.append("_") }
            }
            name.append(contentsOf: character.lowercased())
        }
        return name
    }
}

/// The counter values, indexed by ``NATCounter``.
struct NATCounts {
    private var values = [UInt64](repeating: 0, count: NATCounter.allCases.count)

    subscript(_ counter: NATCounter) -> UInt64 {
        get { values[counter.rawValue] }
        set { values[counter.rawValue] = newValue }
    }

    /// Adds one to `counter`.
    mutating func bump(_ counter: NATCounter, by amount: UInt64 = 1) { values[counter.rawValue] &+= amount }

    var counters: [Counter] { NATCounter.allCases.map { Counter($0.name, values[$0.rawValue]) } }
}
