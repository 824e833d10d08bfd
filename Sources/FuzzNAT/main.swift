// The libFuzzer entry point for the NAT attachment: every input is a list of frames a hostile guest sends to a fresh
// NAT instance. Build it with Scripts/fuzz.sh (FUZZ_TARGET=FuzzNAT); a plain `swift build` links an empty program.
//
// An input is either a pcap file (its Ethernet frames are sent in order: the project's captures and
// ../shared/fixtures/pcaps seed the corpus) or a list of records, each a little-endian UInt16 length and that many
// bytes. IPv4 and IPv6 frames both reach the engine. The NAT runs in `restrict` mode with the gateway mapped to host loopback and a loopback DNS server, so
// nothing the fuzzer sends can leave the machine.
import NICCore
import NetBackend

/// The most frames one input sends, so a run stays short.
let maximumFrames = 256

/// The frames an input encodes.
func frames(of input: [UInt8]) -> [[UInt8]] {
    if let capture = try? PcapReader(data: input), capture.linkType == 1 {
        return capture.records.prefix(maximumFrames).map(\.bytes)
    }
    var frames: [[UInt8]] = []
    var offset = 0
    while offset + 2 <= input.count, frames.count < maximumFrames {
        let length = Int(input.load(littleEndian: UInt16.self, at: offset) ?? 0)
        offset += 2
        let end = min(input.count, offset + length)
        frames.append(Array(input[offset..<end]))
        offset = end
    }
    return frames
}

/// Sends the input's frames into a fresh NAT, draining what it answers, then closes it.
func runOne(_ input: [UInt8]) {
    var configuration = NATConfiguration(slot: 0)
    configuration.restrict = true
    configuration.localhostReachable = true
    configuration.dnsServers = [IPEndpoint(.loopback, 9)]  // discard: nothing listens, nothing leaves
    // libslirp's IPv6 prefix, so the IPv6 seeds captured from it (IN_udp6, IN_tcp6, IcmpV6_*) reach the IPv6 paths
    // (NDP, ICMPv6, DHCPv6, TCP and UDP) rather than stopping at the source check.
    configuration.prefix6 = IPv6Network("fec0::/64")!
    configuration.limits.tcpFlows = 16
    configuration.limits.udpFlows = 16
    guard let nat = try? NATAttachment(configuration: configuration) else { return }
    let port = FramePort(queueCapacity: 64)
    port.attach(nat)
    for frame in frames(of: input) {
        frame.withUnsafeBytes { port.transmit($0) }
        while port.nextInbound() != nil {}
    }
    port.detach()
    nat.close()
}

// swift-format-ignore: AlwaysUseLowerCamelCase
@c(LLVMFuzzerTestOneInput)
public func LLVMFuzzerTestOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    runOne(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
