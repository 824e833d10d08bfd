import Foundation
import Glibc
import NICCore
import NICTestSupport
import Testing

@testable import NetBackend

@Suite("NAT TCP segmentation offload")
struct NATSegmentationTests {
    @Test("a guest's TCP segment above the MTU with a segmentation request is taken whole; its checksum is not summed")
    func segmentedFromGuest() throws {
        // A routed destination (not the gateway), so the MTU applies: 127.0.0.1 itself, allowed.
        var configuration = loopbackNATConfiguration()
        configuration.allowedDestinations = [IPv4Network("127.0.0.1/32")!]
        let listener = LoopbackTCPListener()
        let bench = try NATBench(configuration)
        let guest = GuestConnection(bench, to: IPv4Endpoint(.loopback, listener.port))
        _ = try #require(guest.open())
        let server = listener.accept()
        try #require(server >= 0)
        defer { close(server) }
        let blob = (0..<20_000).map { UInt8(truncatingIfNeeded: $0 &* 11) }
        var segment = TransportSegment.tcp(
            from: IPv4Endpoint(natGuestIP, guest.sourcePort), to: guest.remote, sequence: guest.sequence,
            acknowledgment: guest.acknowledgment, flags: [.ack, .psh], window: 65_535, payload: blob)
        segment.storeBigEndian16(0x1234, at: 16)  // what a stack leaves for the offload: not a valid checksum
        let packet = guestPacket(to: .loopback, proto: IPProtocolNumber.tcp, payload: segment, dontFragment: true)
        let metadata = FrameMetadata(
            checksum: ChecksumRequest(start: 34, offset: 16),
            segmentation: SegmentationRequest(kind: .tcpIPv4, segmentSize: 1460, headerLength: 54))
        bench.sendIP(packet, metadata: metadata)
        #expect(receiveBytes(server, count: blob.count) == blob)
        let acknowledged = guest.segments(until: { $0.acknowledgment == guest.sequence &+ UInt32(blob.count) })
        #expect(acknowledged.contains { $0.acknowledgment == guest.sequence &+ UInt32(blob.count) })
        #expect(bench.counter("drop_ip_too_big") == 0)
        #expect(bench.counter("drop_tcp_checksum") == 0)
        // The same segment without the request is too big for the MTU (with DF) and refused.
        bench.sendIP(packet)
        #expect(bench.receivePackets(where: { $0.proto == IPProtocolNumber.icmp }).count == 1)
        #expect(bench.counter("drop_ip_too_big") == 1)
    }

    @Test("with guest offloads on, a download arrives in large frames whose metadata finishes them correctly")
    func segmentedToGuest() throws {
        let listener = LoopbackTCPListener()
        let bench = try NATBench()
        bench.nat.runtime.setGuestOffloads(true)
        let guest = GuestConnection(bench, to: IPv4Endpoint(natGateway, listener.port))
        _ = try #require(guest.open())
        let server = listener.accept()
        try #require(server >= 0)
        defer { close(server) }
        let blob = (0..<400_000).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ $0 >> 11) }
        let writer = Thread {
            _ = blob.withUnsafeBytes { Glibc.send(server, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        }
        writer.start()
        var received: [UInt8] = []
        var large = 0
        let deadline = Date().addingTimeInterval(10)
        while received.count < blob.count, Date() < deadline {
            bench.port.acknowledgeWork()
            var progressed = false
            for _ in 0..<10_000 {
                guard let frame = bench.port.nextInbound() else { break }
                var bytes = frame.bytes
                if let segmentation = frame.metadata.segmentation {
                    #expect(segmentation.kind == .tcpIPv4 && segmentation.segmentSize == 1460)
                    #expect(segmentation.headerLength == 54)
                    large += 1
                }
                if let checksum = frame.metadata.checksum {
                    // Finish the checksum as the receiving stack would.
                    #expect(checksum.start == 34 && checksum.offset == 16)
                    var sum = InternetChecksum()
                    sum.add(Array(bytes[checksum.start...]))
                    bytes.storeBigEndian16(sum.value, at: checksum.start + checksum.offset)
                }
                guard let packet = try? IPv4Packet(parsing: bytes, at: 14), packet.proto == IPProtocolNumber.tcp,
                    let segment = TCPSegment(packet.payload)
                else { continue }
                #expect(
                    transportChecksum(
                        source: packet.source, destination: packet.destination, proto: 6, segment: packet.payload)
                        == 0)
                #expect(packet.header.count + packet.payload.count <= 65_535)
                if segment.sequence == guest.acknowledgment, !segment.payload.isEmpty {
                    received += segment.payload
                    guest.acknowledgment &+= UInt32(segment.payload.count)
                    progressed = true
                }
            }
            if progressed { guest.send(flags: .ack) } else { usleep(2000) }
        }
        #expect(received == blob)
        #expect(large > 0)
    }

    @Test("the TAP's virtio-net header round-trips the offload metadata; unknown segmentation types are refused")
    func tapHeader() {
        let metadata = FrameMetadata(
            checksum: ChecksumRequest(start: 54, offset: 16),
            segmentation: SegmentationRequest(kind: .tcpIPv6, segmentSize: 1440, headerLength: 74, ecn: true))
        let bytes = VirtioNetHeader(metadata, form: .udpL4).bytes()
        #expect(bytes == [1, 0x84, 74, 0, 0xA0, 5, 54, 0, 16, 0])
        #expect(bytes.withUnsafeBytes { VirtioNetHeader($0)?.metadata(form: .udpL4) } == metadata)
        #expect(VirtioNetHeader(FrameMetadata.none, form: .udpL4).bytes() == [UInt8](repeating: 0, count: 10))
        let unknown: [UInt8] = [0, 9, 0, 0, 0, 0, 0, 0, 0, 0]
        #expect(unknown.withUnsafeBytes { VirtioNetHeader($0)?.metadata(form: .udpL4) } == nil)
        let short: [UInt8] = [0, 0, 0]
        #expect(short.withUnsafeBytes { VirtioNetHeader($0) } == nil)
    }
}
