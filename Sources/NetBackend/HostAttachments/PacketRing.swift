import CNetShims
import Glibc
import NICCore

/// An AF_PACKET socket's TPACKET_V3 receive ring: blocks of packets the kernel fills and hands over, read in place
/// (no copy per packet until a frame is delivered) and given back a block at a time. Every offset the kernel writes
/// is checked against its block before use.
struct PacketRing {
    /// Bytes per block and blocks in the ring: 8 MiB, room for thousands of standard frames or hundreds of jumbo ones.
    static let blockSize = 1 << 20
    static let blockCount = 8
    /// How long a partly filled block waits before the kernel hands it over.
    static let retireMilliseconds: UInt32 = 2

    /// The bytes of a packet's header and address, which must lie in the block.
    private static let packetHeader = cnet_ring_packet_header_size()

    private let base: UnsafeMutableRawPointer
    private var next = 0
    /// Whether a virtio-net header precedes every frame (PACKET_VNET_HDR was set before the ring).
    let vnetHeaders: Bool

    /// A packet as the ring holds it: its frame (valid until the block is released) and what the kernel says of it.
    struct Packet {
        var frame: UnsafeRawBufferPointer
        /// The virtio-net header before the frame (offloads the sender left to finish), when the ring has them.
        var vnetHeader: UnsafeRawBufferPointer?
        var status: UInt32
        var vlanTCI: UInt16
        var vlanTPID: UInt16
        var type: UInt8
    }

    /// Sets the ring up on `fd` and maps it, with a virtio-net header before each frame when `vnetHeaders` (set on the
    /// socket already); throws the `errno`.
    init(fd: Int32, vnetHeaders: Bool) throws(HostLinkError) {
        self.vnetHeaders = vnetHeaders
        var mapped: UnsafeMutableRawPointer?
        let result = cnet_packet_ring_setup(
            fd, UInt32(Self.blockSize), UInt32(Self.blockCount), Self.retireMilliseconds, &mapped)
        guard result == 0, let mapped else { throw .system("bridged: the TPACKET_V3 receive ring", errno: -result) }
        base = mapped
    }

    /// Unmaps the ring.
    func unmap() { munmap(base, Self.blockSize * Self.blockCount) }

    /// Reads the ready blocks, at most `limit` of them, calling `body` with each packet; answers how many blocks were
    /// read. Packets whose offsets fall outside their block are skipped and counted in `malformed`.
    mutating func read(limit: Int, malformed: inout Int, _ body: (Packet) -> Void) -> Int {
        var blocks = 0
        while blocks < limit {
            let block = base + next * Self.blockSize
            var count: UInt32 = 0
            var first: UInt32 = 0
            guard cnet_ring_block(block, &count, &first) != 0 else { break }
            var offset = Int(first)
            for _ in 0..<min(Int(count), Self.blockSize / 16) {
                guard offset >= 0, offset + Self.packetHeader <= Self.blockSize else {
                    malformed += 1
                    break
                }
                let packet = cnet_ring_packet_at(block + offset)
                let start = offset + Int(packet.mac)
                let length = Int(packet.length)
                let header = vnetHeaders ? VirtioNetHeader.size : 0
                if start - header >= offset + Self.packetHeader, length >= 0, start + length <= Self.blockSize {
                    body(
                        Packet(
                            frame: UnsafeRawBufferPointer(start: block + start, count: length),
                            vnetHeader: vnetHeaders
                                ? UnsafeRawBufferPointer(start: block + start - header, count: header) : nil,
                            status: packet.status, vlanTCI: packet.vlan_tci, vlanTPID: packet.vlan_tpid,
                            type: packet.pkttype))
                } else {
                    malformed += 1
                }
                guard packet.next != 0 else { break }
                offset += Int(packet.next)
            }
            cnet_ring_release(block)
            next = (next + 1) % Self.blockCount
            blocks += 1
        }
        return blocks
    }
}
