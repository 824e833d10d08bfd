/// Why a frame could not be finished.
public enum FrameFinisherError: Error, Hashable, Sendable {
    /// Lengths or offsets point outside the frame, or the headers are not what the request says.
    case malformed
    /// Headers this finisher does not segment (IPv6 extension headers, a protocol that does not match).
    case unsupported
}

/// Does in software what ``FrameMetadata`` left for someone else: inserts the VLAN tag, completes a partial checksum
/// (the virtio-net `NEEDS_CSUM` convention), segments TCP over IPv4 or IPv6 into `segmentSize` payloads (IP ids,
/// lengths, sequence numbers, FIN/PSH on the last segment only, CWR on the first only, every checksum recomputed) and
/// fragments UDP (UFO: the whole datagram's checksum, then IP fragments of `segmentSize` bytes).
///
/// Frames are hostile input: every offset is checked before use. One finisher owns reusable scratch buffers, so
/// finishing allocates nothing once they have grown; use one per thread.
public struct FrameFinisher {
    private var scratch: [UInt8] = []
    private var tagged: [UInt8] = []
    private var fragmentIdentification: UInt32 = 0x5EED

    public init() {}

    /// Finishes `frame` as `metadata` asks and hands every resulting frame to `emit` (valid only during the call).
    /// Returns the number of frames emitted.
    @discardableResult
    public mutating func finish(
        _ frame: UnsafeRawBufferPointer, metadata: FrameMetadata, emit: (UnsafeRawBufferPointer) -> Void
    ) throws(FrameFinisherError) -> Int {
        var metadata = metadata
        if let tag = metadata.vlanTag {
            guard frame.count >= 14 else { throw .malformed }
            metadata.vlanTag = nil
            metadata.checksum = metadata.checksum.map { ChecksumRequest(start: $0.start + 4, offset: $0.offset) }
            metadata.segmentation = metadata.segmentation.map {
                SegmentationRequest(
                    kind: $0.kind, segmentSize: $0.segmentSize, headerLength: $0.headerLength + 4, ecn: $0.ecn)
            }
            var copy = tagged
            tagged = []
            defer { tagged = copy }
            copy.removeAll(keepingCapacity: true)
            copy.append(contentsOf: frame[0..<12])
            copy.appendBigEndian16(EtherType.vlan)
            copy.appendBigEndian16(tag)
            copy.append(contentsOf: frame[12...])
            var result: Result<Int, FrameFinisherError> = .success(0)
            copy.withUnsafeBytes { bytes in
                do throws(FrameFinisherError) {
                    result = .success(try finish(bytes, metadata: metadata, emit: emit))
                } catch { result = .failure(error) }
            }
            return try result.get()
        }
        if let segmentation = metadata.segmentation {
            return try segment(frame, segmentation, emit: emit)
        }
        if let checksum = metadata.checksum {
            let start = checksum.start
            let offset = checksum.offset
            guard start >= 0, offset >= 0, start < frame.count, offset <= frame.count - start - 2 else {
                throw .malformed
            }
            load(frame)
            var sum = InternetChecksum()
            scratch.withUnsafeBytes { sum.add(UnsafeRawBufferPointer(rebasing: $0[start..<frame.count])) }
            let value = sum.value
            scratch.storeBigEndian16(value == 0 ? 0xFFFF : value, at: start + offset)
            scratch.withUnsafeBytes { emit(UnsafeRawBufferPointer(rebasing: $0[0..<frame.count])) }
            return 1
        }
        emit(frame)
        return 1
    }

    // MARK: Segmentation

    private func layout(_ frame: UnsafeRawBufferPointer, _ protocolNumber: UInt8, ipv6: Bool?)
        throws(FrameFinisherError) -> TransportLayout
    {
        do throws(TransportLayout.ParseError) {
            return try TransportLayout(frame, protocolNumber: protocolNumber, ipv6: ipv6)
        } catch {
            switch error {
            case .malformed: throw .malformed
            case .unsupported: throw .unsupported
            }
        }
    }

    private mutating func segment(
        _ frame: UnsafeRawBufferPointer, _ request: SegmentationRequest, emit: (UnsafeRawBufferPointer) -> Void
    ) throws(FrameFinisherError) -> Int {
        guard request.segmentSize > 0 else { throw .malformed }
        switch request.kind {
        case .tcpIPv4: return try segmentTCP(frame, try layout(frame, IPProtocolNumber.tcp, ipv6: false), request, emit)
        case .tcpIPv6: return try segmentTCP(frame, try layout(frame, IPProtocolNumber.tcp, ipv6: true), request, emit)
        case .udp: return try fragmentUDP(frame, try layout(frame, IPProtocolNumber.udp, ipv6: nil), request, emit)
        }
    }

    private mutating func segmentTCP(
        _ frame: UnsafeRawBufferPointer, _ headers: TransportLayout, _ request: SegmentationRequest,
        _ emit: (UnsafeRawBufferPointer) -> Void
    ) throws(FrameFinisherError) -> Int {
        let headerEnd = headers.headerEnd
        let payload = frame.count - headerEnd
        let mss = request.segmentSize
        let tcp = headers.transport
        let sequence = frame.load(bigEndian: UInt32.self, at: tcp + 4) ?? 0
        let flags = frame[tcp + 13]
        let identification = headers.isIPv6 ? 0 : frame.load(bigEndian: UInt16.self, at: headers.network + 4) ?? 0
        var offset = 0
        var emitted = 0
        repeat {
            let length = min(mss, payload - offset)
            let last = offset + length >= payload
            let total = headerEnd + length
            load(UnsafeRawBufferPointer(rebasing: frame[0..<headerEnd]), extra: length)
            scratch.withUnsafeMutableBytes { buffer in
                guard length > 0, let base = buffer.baseAddress, let source = frame.baseAddress else { return }
                (base + headerEnd).copyMemory(from: source + headerEnd + offset, byteCount: length)
            }
            var segmentFlags = flags
            if !last { segmentFlags &= ~0x09 }  // FIN, PSH
            if emitted > 0 { segmentFlags &= ~0x80 }  // CWR
            scratch[tcp + 13] = segmentFlags
            scratch.storeBigEndian32(sequence &+ UInt32(truncatingIfNeeded: offset), at: tcp + 4)
            let transportLength = total - tcp
            if headers.isIPv6 {
                scratch.storeBigEndian16(
                    UInt16(truncatingIfNeeded: total - headers.network - 40), at: headers.network + 4)
            } else {
                scratch.storeBigEndian16(UInt16(truncatingIfNeeded: total - headers.network), at: headers.network + 2)
                scratch.storeBigEndian16(identification &+ UInt16(truncatingIfNeeded: emitted), at: headers.network + 4)
                finishIPv4HeaderChecksum(headers.network, length: headers.transport - headers.network)
            }
            scratch.storeBigEndian16(0, at: tcp + 16)
            scratch.storeBigEndian16(
                transportChecksum(headers, protocolNumber: 6, length: transportLength, end: total), at: tcp + 16)
            scratch.withUnsafeBytes { emit(UnsafeRawBufferPointer(rebasing: $0[0..<total])) }
            emitted += 1
            offset += length
        } while offset < payload
        return emitted
    }

    private mutating func fragmentUDP(
        _ frame: UnsafeRawBufferPointer, _ headers: TransportLayout, _ request: SegmentationRequest,
        _ emit: (UnsafeRawBufferPointer) -> Void
    ) throws(FrameFinisherError) -> Int {
        let udp = headers.transport
        // The whole datagram's checksum first, with its length fields made consistent.
        load(frame)
        let datagramLength = frame.count - udp
        guard datagramLength <= 0xFFFF else { throw .malformed }
        scratch.storeBigEndian16(UInt16(datagramLength), at: udp + 4)
        scratch.storeBigEndian16(0, at: udp + 6)
        let sum = transportChecksum(headers, protocolNumber: 17, length: datagramLength, end: frame.count)
        scratch.storeBigEndian16(sum == 0 ? 0xFFFF : sum, at: udp + 6)
        let datagram = scratch
        let fragmentSize = max(8, request.segmentSize & ~7)
        if datagramLength <= fragmentSize {
            if !headers.isIPv6 {
                scratch.storeBigEndian16(
                    UInt16(truncatingIfNeeded: frame.count - headers.network), at: headers.network + 2)
                finishIPv4HeaderChecksum(headers.network, length: udp - headers.network)
            } else {
                scratch.storeBigEndian16(UInt16(truncatingIfNeeded: datagramLength), at: headers.network + 4)
            }
            scratch.withUnsafeBytes { emit(UnsafeRawBufferPointer(rebasing: $0[0..<frame.count])) }
            return 1
        }
        // IPv4 fragments keep the datagram's IP id; IPv6 ones get a fragment header with a fresh identification.
        fragmentIdentification &+= 1
        let identification = fragmentIdentification
        var offset = 0
        var emitted = 0
        while offset < datagramLength {
            let length = min(fragmentSize, datagramLength - offset)
            let more = offset + length < datagramLength
            scratch.removeAll(keepingCapacity: true)
            scratch.append(contentsOf: datagram[0..<udp])
            if headers.isIPv6 {
                // IPv6 header, then a fragment header carrying the original next header (UDP).
                scratch[headers.network + 6] = IPProtocolNumber.fragment
                scratch.storeBigEndian16(UInt16(truncatingIfNeeded: 8 + length), at: headers.network + 4)
                let fragmentOffset = UInt16(truncatingIfNeeded: offset) | (more ? 1 : 0)
                scratch.append(IPProtocolNumber.udp)
                scratch.append(0)
                scratch.appendBigEndian16(fragmentOffset)
                scratch.appendBigEndian32(identification)
            } else {
                scratch.storeBigEndian16(
                    UInt16(truncatingIfNeeded: udp - headers.network + length), at: headers.network + 2)
                scratch.storeBigEndian16(
                    UInt16(truncatingIfNeeded: offset / 8) | (more ? 0x2000 : 0), at: headers.network + 6)
                finishIPv4HeaderChecksum(headers.network, length: udp - headers.network)
            }
            scratch.append(contentsOf: datagram[(udp + offset)..<(udp + offset + length)])
            scratch.withUnsafeBytes { emit($0) }
            emitted += 1
            offset += length
        }
        return emitted
    }

    // MARK: Helpers

    /// Copies `bytes` into the scratch buffer, with room for `extra` more bytes.
    private mutating func load(_ bytes: UnsafeRawBufferPointer, extra: Int = 0) {
        scratch.removeAll(keepingCapacity: true)
        scratch.append(contentsOf: bytes)
        if extra > 0 { scratch.append(contentsOf: repeatElement(0, count: extra)) }
    }

    private mutating func finishIPv4HeaderChecksum(_ offset: Int, length: Int) {
        scratch.storeBigEndian16(0, at: offset + 10)
        var sum = InternetChecksum()
        scratch.withUnsafeBytes { sum.add(UnsafeRawBufferPointer(rebasing: $0[offset..<offset + length])) }
        scratch.storeBigEndian16(sum.value, at: offset + 10)
    }

    /// The TCP/UDP checksum over the pseudo-header and `scratch[transport..<end]` (checksum field already zero).
    private func transportChecksum(_ headers: TransportLayout, protocolNumber: UInt8, length: Int, end: Int) -> UInt16 {
        scratch.withUnsafeBytes { buffer in
            var sum = InternetChecksum.pseudoHeader(
                addresses: UnsafeRawBufferPointer(rebasing: buffer[headers.addressRange]),
                protocolNumber: protocolNumber,
                length: length)
            sum.add(UnsafeRawBufferPointer(rebasing: buffer[headers.transport..<end]))
            return sum.value
        }
    }
}
