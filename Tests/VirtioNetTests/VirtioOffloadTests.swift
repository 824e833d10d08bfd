import NICCore
import NICHarness
import Synchronization
import Testing

@testable import VirtioNet

// MARK: Frame builders (the test's own, independent of the card)

let guestIPv4: [UInt8] = [10, 0, 2, 15]
let peerIPv4: [UInt8] = [10, 0, 2, 2]
let guestIPv6: [UInt8] = [0xFD, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x15]
let peerIPv6: [UInt8] = [0xFD, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02]

func payloadBytes(_ count: Int, seed: Int = 0) -> [UInt8] {
    (0..<count).map { UInt8(truncatingIfNeeded: $0 * 13 + seed) }
}

func tcpHeader(sequence: UInt32, flags: UInt8) -> [UInt8] {
    [0x9C, 0x40, 0x00, 0x50] + (0..<4).map { UInt8(truncatingIfNeeded: sequence >> (24 - 8 * UInt32($0))) }
        + [0, 0, 0, 1, 0x50, flags, 0xFF, 0xFF, 0, 0, 0, 0]
}

func ipv4Header(payloadLength: Int, protocolNumber: UInt8, id: UInt16) -> [UInt8] {
    let total = 20 + payloadLength
    return [
        0x45, 0, UInt8(total >> 8), UInt8(total & 0xFF), UInt8(id >> 8), UInt8(id & 0xFF), 0x40, 0, 64, protocolNumber,
        0, 0,
    ]
        + guestIPv4 + peerIPv4
}

func ipv6Header(payloadLength: Int, nextHeader: UInt8) -> [UInt8] {
    [0x60, 0, 0, 0, UInt8(payloadLength >> 8), UInt8(payloadLength & 0xFF), nextHeader, 64] + guestIPv6 + peerIPv6
}

func ethernet(_ type: UInt16) -> [UInt8] {
    peerMAC.bytes + MACAddress("52:54:00:12:34:56")!.bytes + [UInt8(type >> 8), UInt8(type & 0xFF)]
}

func tcpIPv4Frame(payload: [UInt8], sequence: UInt32 = 1000, flags: UInt8 = 0x18, id: UInt16 = 0x100) -> [UInt8] {
    ethernet(0x0800) + ipv4Header(payloadLength: 20 + payload.count, protocolNumber: 6, id: id)
        + tcpHeader(sequence: sequence, flags: flags) + payload
}

func tcpIPv6Frame(payload: [UInt8], sequence: UInt32 = 5000, flags: UInt8 = 0x19) -> [UInt8] {
    ethernet(0x86DD) + ipv6Header(payloadLength: 20 + payload.count, nextHeader: 6)
        + tcpHeader(sequence: sequence, flags: flags) + payload
}

func udpIPv4Frame(payload: [UInt8]) -> [UInt8] {
    let length = 8 + payload.count
    return ethernet(0x0800) + ipv4Header(payloadLength: length, protocolNumber: 17, id: 0x200)
        + [0x13, 0x88, 0x00, 0x35, UInt8(length >> 8), UInt8(length & 0xFF), 0, 0] + payload
}

/// The pseudo-header of a TCP/UDP segment in `frame` (IPv4 or IPv6), for `length` transport bytes.
func pseudoHeader(_ frame: [UInt8], protocolNumber: UInt8, length: Int) -> [UInt8] {
    if be16(frame, 12) == 0x86DD {
        return Array(frame[22..<54]) + [0, 0, UInt8(length >> 8), UInt8(length & 0xFF), 0, 0, 0, protocolNumber]
    }
    return Array(frame[26..<34]) + [0, protocolNumber, UInt8(length >> 8), UInt8(length & 0xFF)]
}

/// Whether the transport checksum of the segment starting at `transport` verifies.
func transportChecksumVerifies(_ frame: [UInt8], transport: Int, protocolNumber: UInt8) -> Bool {
    referenceChecksum(
        pseudoHeader(frame, protocolNumber: protocolNumber, length: frame.count - transport)
            + Array(frame[transport...]))
        == 0
}

/// An attachment that takes offload metadata and keeps what it gets.
final class OffloadRecorder: NetworkAttachment, @unchecked Sendable {
    let frames = Mutex<[([UInt8], FrameMetadata)]>([])
    var acceptsOffloadMetadata: Bool { true }
    func transmit(_ frame: UnsafeRawBufferPointer, metadata: FrameMetadata, from port: FramePort) {
        frames.withLock { $0.append((Array(frame), metadata)) }
    }
    func didAttach(_ port: FramePort) { port.setCarrier(true) }
}

@Suite("The software frame finisher, segment by segment")
struct FrameFinisherTests {
    func finish(_ frame: [UInt8], _ metadata: FrameMetadata) throws -> [[UInt8]] {
        var finisher = FrameFinisher()
        var out: [[UInt8]] = []
        _ = try frame.withUnsafeBytes { bytes in
            try finisher.finish(bytes, metadata: metadata) { out.append(Array($0)) }
        }
        return out
    }

    @Test func completesAPartialChecksum() throws {
        var frame = tcpIPv4Frame(payload: payloadBytes(301))
        // The guest leaves the pseudo-header sum (not complemented) in the field, as Linux does.
        let pseudo = ~referenceChecksum(pseudoHeader(frame, protocolNumber: 6, length: 321))
        frame[50] = UInt8(pseudo >> 8)
        frame[51] = UInt8(pseudo & 0xFF)
        let out = try finish(frame, FrameMetadata(checksum: ChecksumRequest(start: 34, offset: 16)))
        #expect(out.count == 1)
        #expect(transportChecksumVerifies(out[0], transport: 34, protocolNumber: 6))
        #expect(Array(out[0][0..<50]) == Array(frame[0..<50]))
    }

    @Test func segmentsTCPv4() throws {
        let payload = payloadBytes(3000)
        let frame = tcpIPv4Frame(payload: payload, sequence: 0xFFFF_FF00, flags: 0x80 | 0x18 | 0x01, id: 0xFFFE)
        let out = try finish(
            frame,
            FrameMetadata(
                checksum: ChecksumRequest(start: 34, offset: 16),
                segmentation: SegmentationRequest(kind: .tcpIPv4, segmentSize: 1000, headerLength: 54)))
        #expect(out.count == 3)
        for (i, segment) in out.enumerated() {
            #expect(segment.count == 54 + 1000)
            #expect(be16(segment, 16) == 20 + 20 + 1000, "IP total length")
            #expect(be16(segment, 18) == (0xFFFE + i) & 0xFFFF, "IP id")
            #expect(referenceChecksum(Array(segment[14..<34])) == 0, "IP header checksum")
            #expect(be32(segment, 38) == 0xFFFF_FF00 &+ UInt32(1000 * i), "sequence")
            let flags = segment[47]
            #expect((flags & 0x80 != 0) == (i == 0), "CWR only on the first")
            #expect((flags & 0x09 != 0) == (i == 2), "FIN and PSH only on the last")
            #expect(flags & 0x10 != 0, "ACK everywhere")
            #expect(transportChecksumVerifies(segment, transport: 34, protocolNumber: 6))
            #expect(Array(segment[54...]) == Array(payload[(1000 * i)..<(1000 * i + 1000)]))
        }
    }

    @Test func segmentsTCPv6WithAShortLastSegment() throws {
        let payload = payloadBytes(2500, seed: 3)
        let frame = tcpIPv6Frame(payload: payload)
        let out = try finish(
            frame, FrameMetadata(segmentation: SegmentationRequest(kind: .tcpIPv6, segmentSize: 1200, headerLength: 74))
        )
        #expect(out.map(\.count) == [74 + 1200, 74 + 1200, 74 + 100])
        for (i, segment) in out.enumerated() {
            #expect(be16(segment, 18) == segment.count - 54, "IPv6 payload length")
            #expect(be32(segment, 58) == 5000 + UInt32(1200 * i))
            #expect(transportChecksumVerifies(segment, transport: 54, protocolNumber: 6))
            #expect(Array(segment[74...]) == Array(payload[(1200 * i)..<min(2500, 1200 * i + 1200)]))
        }
    }

    @Test func fragmentsUDPv4() throws {
        let payload = payloadBytes(3000, seed: 5)
        let frame = udpIPv4Frame(payload: payload)
        let out = try finish(
            frame, FrameMetadata(segmentation: SegmentationRequest(kind: .udp, segmentSize: 1480, headerLength: 42)))
        #expect(out.count == 3)
        var reassembled: [UInt8] = []
        for (i, fragment) in out.enumerated() {
            #expect(referenceChecksum(Array(fragment[14..<34])) == 0)
            #expect(be16(fragment, 18) == 0x200, "one id for every fragment")
            let field = be16(fragment, 20)
            #expect((field & 0x1FFF) * 8 == reassembled.count, "fragment offset")
            #expect((field & 0x2000 != 0) == (i < 2), "more fragments")
            #expect(be16(fragment, 16) == fragment.count - 14)
            reassembled += fragment[34...]
        }
        #expect(reassembled.count == 3008)
        #expect(Array(reassembled[8...]) == payload)
        let datagram = ethernet(0x0800) + Array(frame[14..<34]) + reassembled
        #expect(transportChecksumVerifies(datagram, transport: 34, protocolNumber: 17))
    }

    @Test func insertsAVLANTag() throws {
        let frame = makeFrame(to: .broadcast, length: 60)
        let out = try finish(frame, FrameMetadata(vlanTag: 0x2005))
        #expect(out == [Array(frame[0..<12]) + [0x81, 0x00, 0x20, 0x05] + Array(frame[12...])])
    }

    @Test func refusesMalformedRequests() throws {
        let frame = tcpIPv4Frame(payload: payloadBytes(100))
        #expect(throws: FrameFinisherError.self) {
            try finish(frame, FrameMetadata(checksum: ChecksumRequest(start: 150, offset: 16)))
        }
        #expect(throws: FrameFinisherError.self) {
            try finish(
                frame,
                FrameMetadata(segmentation: SegmentationRequest(kind: .tcpIPv6, segmentSize: 100, headerLength: 54)))
        }
        #expect(throws: FrameFinisherError.self) {
            try finish(
                Array(frame[0..<40]),
                FrameMetadata(segmentation: SegmentationRequest(kind: .tcpIPv4, segmentSize: 100, headerLength: 54)))
        }
        #expect(throws: FrameFinisherError.self) {
            try finish(
                frame,
                FrameMetadata(segmentation: SegmentationRequest(kind: .tcpIPv4, segmentSize: 0, headerLength: 54)))
        }
    }
}

@Suite("virtio-net offloads through the card")
struct VirtioOffloadTests {
    func sendTSO(
        _ bench: VirtioBench, _ rings: (rx: VirtioDriverQueue, tx: VirtioDriverQueue, control: VirtioDriverQueue?)
    )
        -> [UInt8]
    {
        let frame = tcpIPv4Frame(payload: payloadBytes(4000))
        let header = netHeader(
            flags: 1, gsoType: 1, headerLength: 54, gsoSize: 1448, checksumStart: 34, checksumOffset: 16)
        let buffer = bench.allocate(header.count + frame.count)
        bench.store(header + frame, at: buffer)
        rings.tx.add([(buffer, UInt32(header.count), false), (buffer + 12, UInt32(frame.count), false)])
        bench.notifyModern(1)
        return frame
    }

    @Test func tsoIsSegmentedInSoftwareForAPlainAttachment() throws {
        let bench = try VirtioBench()
        let rings = bench.startModern([.mac, .checksum, .hostTSO4])
        _ = sendTSO(bench, rings)
        let sent = bench.sentFrames()
        #expect(sent.map(\.count) == [54 + 1448, 54 + 1448, 54 + 1104])
        for segment in sent { #expect(transportChecksumVerifies(segment, transport: 34, protocolNumber: 6)) }
        #expect(bench.counter("tx_frames") == 3)
        #expect(bench.counter("tx_software_finished") == 1)
    }

    @Test func tsoPassesAsMetadataToAnAttachmentThatTakesIt() throws {
        let bench = try VirtioBench(attach: false)
        let recorder = OffloadRecorder()
        bench.card.port.attach(recorder)
        bench.card.service()
        let rings = bench.startModern([.mac, .checksum, .hostTSO4])
        let frame = sendTSO(bench, rings)
        let got = recorder.frames.withLock { $0 }
        #expect(got.count == 1)
        #expect(got.first?.0 == frame)
        #expect(got.first?.1.checksum == ChecksumRequest(start: 34, offset: 16))
        #expect(got.first?.1.segmentation == SegmentationRequest(kind: .tcpIPv4, segmentSize: 1448, headerLength: 54))
    }

    @Test func gsoThatWasNotNegotiatedIsDropped() throws {
        let bench = try VirtioBench()
        let rings = bench.startModern([.mac, .checksum])
        _ = sendTSO(bench, rings)
        #expect(bench.sentFrames().isEmpty)
        #expect(bench.counter("tx_dropped_bad_gso") == 1)
        #expect(rings.tx.used().count == 1)
    }

    @Test func checksumRequestOutsideTheFrameIsDropped() throws {
        let bench = try VirtioBench()
        let rings = bench.startModern([.mac, .checksum])
        let frame = makeFrame(to: .broadcast, length: 60)
        let buffer = bench.allocate(72)
        bench.store(netHeader(flags: 1, checksumStart: 50, checksumOffset: 16) + frame, at: buffer)
        rings.tx.add([(buffer, 72, false)])
        bench.notifyModern(1)
        #expect(bench.counter("tx_dropped_bad_checksum_request") == 1)
    }

    @Test func receiveHandsGSOAndPartialChecksumToAGuestThatTakesThem() throws {
        let bench = try VirtioBench()
        let rings = bench.startModern([.mac, .guestChecksum, .guestTSO4, .mergeableReceiveBuffers])
        for _ in 0..<4 { rings.rx.add([(bench.allocate(4096), 4096, true)]) }
        let frame = tcpIPv4Frame(payload: payloadBytes(6000))
        bench.receive(
            frame,
            metadata: FrameMetadata(
                checksum: ChecksumRequest(start: 34, offset: 16),
                segmentation: SegmentationRequest(kind: .tcpIPv4, segmentSize: 1448, headerLength: 54)))
        let used = rings.rx.used()
        #expect(used.map(\.length).reduce(0, +) == 12 + frame.count)
        let first = try #require(used.first)
        let buffer = rings.rx.descriptorAddress(first.id)
        #expect(
            bench.load(buffer, 12)
                == netHeader(
                    flags: 1, gsoType: 1, headerLength: 54, gsoSize: 1448, checksumStart: 34, checksumOffset: 16,
                    buffers: 2))
        #expect(bench.counter("rx_gso_to_guest") == 1)
    }

    @Test func receiveSegmentsForAGuestWithoutGSO() throws {
        let bench = try VirtioBench()
        let rings = bench.startModern([.mac, .guestChecksum])
        var buffers: [UInt64] = []
        for _ in 0..<8 {
            let buffer = bench.allocate(2048)
            buffers.append(buffer)
            rings.rx.add([(buffer, 2048, true)])
        }
        bench.receive(
            tcpIPv4Frame(payload: payloadBytes(3000)),
            metadata: FrameMetadata(
                checksum: ChecksumRequest(start: 34, offset: 16),
                segmentation: SegmentationRequest(kind: .tcpIPv4, segmentSize: 1000, headerLength: 54)))
        let used = rings.rx.used()
        #expect(used.map(\.length) == [12 + 1054, 12 + 1054, 12 + 1054])
        for (i, entry) in used.enumerated() {
            let buffer = buffers[entry.id]
            #expect(bench.load(buffer, 12) == netHeader(flags: 2, buffers: 1), "DATA_VALID: the device computed it")
            let segment = bench.load(buffer + 12, 1054)
            #expect(be32(segment, 38) == 1000 + UInt32(1000 * i))
            #expect(transportChecksumVerifies(segment, transport: 34, protocolNumber: 6))
        }
    }

    @Test func receiveFlagsPartialAndVerifiedChecksums() throws {
        let bench = try VirtioBench()
        let rings = bench.startModern([.mac, .guestChecksum])
        let a = bench.allocate(2048)
        let b = bench.allocate(2048)
        rings.rx.add([(a, 2048, true)])
        rings.rx.add([(b, 2048, true)])
        let frame = tcpIPv4Frame(payload: payloadBytes(100))
        bench.receive(frame, metadata: FrameMetadata(checksum: ChecksumRequest(start: 34, offset: 16)))
        bench.receive(frame, metadata: FrameMetadata(checksumValid: true))
        #expect(bench.load(a, 12) == netHeader(flags: 1, checksumStart: 34, checksumOffset: 16, buffers: 1))
        #expect(bench.load(b, 12) == netHeader(flags: 2, buffers: 1))
    }

    @Test func guestOffloadsOffMeansFinishedFrames() throws {
        let bench = try VirtioBench()
        let rings = bench.startModern([.mac])
        let buffer = bench.allocate(2048)
        rings.rx.add([(buffer, 2048, true)])
        var frame = tcpIPv4Frame(payload: payloadBytes(100))
        let pseudo = ~referenceChecksum(pseudoHeader(frame, protocolNumber: 6, length: 120))
        frame[50] = UInt8(pseudo >> 8)
        frame[51] = UInt8(pseudo & 0xFF)
        bench.receive(frame, metadata: FrameMetadata(checksum: ChecksumRequest(start: 34, offset: 16)))
        #expect(bench.load(buffer, 12) == netHeader(buffers: 1))
        #expect(transportChecksumVerifies(bench.load(buffer + 12, frame.count), transport: 34, protocolNumber: 6))
    }
}

extension VirtioDriverQueue {
    /// The buffer address of descriptor `index`.
    func descriptorAddress(_ index: Int) -> UInt64 {
        let bytes = (try? memory.load(at: descriptorArea + 16 * UInt64(index), count: 8, comment: nil)) ?? []
        return bytes.load(littleEndian: UInt64.self, at: 0) ?? 0
    }
}

@Suite("The software frame finisher, less common shapes")
struct FrameFinisherShapeTests {
    func finish(_ frame: [UInt8], _ metadata: FrameMetadata) throws -> [[UInt8]] {
        var finisher = FrameFinisher()
        var out: [[UInt8]] = []
        _ = try frame.withUnsafeBytes { bytes in
            try finisher.finish(bytes, metadata: metadata) { out.append(Array($0)) }
        }
        return out
    }

    @Test func fragmentsUDPv6WithAFragmentHeader() throws {
        let payload = payloadBytes(2000, seed: 7)
        let length = 8 + payload.count
        let frame =
            ethernet(0x86DD) + ipv6Header(payloadLength: length, nextHeader: 17)
            + [0x13, 0x88, 0x00, 0x35, UInt8(length >> 8), UInt8(length & 0xFF), 0, 0] + payload
        let out = try finish(
            frame, FrameMetadata(segmentation: SegmentationRequest(kind: .udp, segmentSize: 1232, headerLength: 62)))
        #expect(out.count == 2)
        var reassembled: [UInt8] = []
        var identifications = Set<UInt32>()
        for (i, fragment) in out.enumerated() {
            #expect(fragment[20] == 44, "next header: fragment")
            #expect(fragment[54] == 17, "fragment header's next header: UDP")
            let field = be16(fragment, 56)
            #expect(field & ~7 == reassembled.count, "offset")
            #expect((field & 1 == 1) == (i == 0), "more fragments")
            identifications.insert(be32(fragment, 58))
            #expect(be16(fragment, 18) == fragment.count - 54, "payload length covers the fragment header")
            reassembled += fragment[62...]
        }
        #expect(identifications.count == 1)
        #expect(Array(reassembled[8...]) == payload)
        let datagram = ethernet(0x86DD) + Array(frame[14..<54]) + reassembled
        #expect(transportChecksumVerifies(datagram, transport: 54, protocolNumber: 17))
    }

    @Test func segmentsAVLANTaggedTCPFrame() throws {
        let untagged = tcpIPv4Frame(payload: payloadBytes(2000))
        let tagged = Array(untagged[0..<12]) + [0x81, 0x00, 0x00, 0x07] + Array(untagged[12...])
        let out = try finish(
            tagged,
            FrameMetadata(segmentation: SegmentationRequest(kind: .tcpIPv4, segmentSize: 1000, headerLength: 58)))
        #expect(out.count == 2)
        for segment in out {
            #expect(Array(segment[12..<16]) == [0x81, 0x00, 0x00, 0x07])
            #expect(referenceChecksum(Array(segment[18..<38])) == 0)
            #expect(
                transportChecksumVerifies(
                    Array(segment[0..<12]) + Array(segment[16...]), transport: 34, protocolNumber: 6))
        }
    }

    @Test func insertsTheTagThenSegments() throws {
        let frame = tcpIPv4Frame(payload: payloadBytes(1500))
        let out = try finish(
            frame,
            FrameMetadata(
                segmentation: SegmentationRequest(kind: .tcpIPv4, segmentSize: 1000, headerLength: 54), vlanTag: 0x0123)
        )
        #expect(out.map(\.count) == [58 + 1000, 58 + 500])
        #expect(out.allSatisfy { Array($0[12..<16]) == [0x81, 0x00, 0x01, 0x23] })
    }
}

@Suite("virtio-net receive of tagged frames")
struct VirtioVLANReceiveTests {
    @Test func aVLANTagInTheMetadataIsInsertedForTheGuest() throws {
        let bench = try VirtioBench()
        let rings = bench.startModern([.mac])
        let buffer = bench.allocate(2048)
        rings.rx.add([(buffer, 2048, true)])
        let frame = makeFrame(to: bench.mac, length: 100)
        bench.receive(frame, metadata: FrameMetadata(vlanTag: 42))
        #expect(rings.rx.used().first?.length == 12 + 104)
        #expect(bench.load(buffer + 12, 104) == Array(frame[0..<12]) + [0x81, 0x00, 0x00, 42] + Array(frame[12...]))
    }
}

@Suite("virtio-net DATA_VALID only for checked checksums")
struct VirtioDataValidTests {
    @Test func aTagAloneDoesNotMakeTheChecksumValid() throws {
        let bench = try VirtioBench()
        let rings = bench.startModern([.mac, .guestChecksum])
        let buffer = bench.allocate(2048)
        rings.rx.add([(buffer, 2048, true)])
        bench.receive(tcpIPv4Frame(payload: payloadBytes(10)), metadata: FrameMetadata(vlanTag: 5))
        #expect(bench.load(buffer, 1) == [0])
    }
}
