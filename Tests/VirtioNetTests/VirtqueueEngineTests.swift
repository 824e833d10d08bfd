import NICCore
import NICHarness
import Testing

@testable import VirtioNet

/// The virtqueue engine on its own: no card, just a bus master over guest RAM.
@Suite("Virtqueue engine")
struct VirtqueueEngineTests {
    let ram: GuestRAM
    let queue: Virtqueue
    let descriptors: UInt64 = 0x1000
    let avail: UInt64 = 0x2000
    let used: UInt64 = 0x3000

    init() throws {
        ram = try GuestRAM(size: 1 << 20)
        let config = try PCIConfigSpace(
            identity: PCIIdentity(vendorID: 1, deviceID: 2, revisionID: 0, subsystemVendorID: 1, subsystemID: 2),
            bars: [:])
        config.write(offset: 0x04, width: 2, value: 0x4)
        queue = Virtqueue(index: 0, maximumSize: 8, memory: BusMaster(memory: ram, config: config))
        queue.descriptorArea = descriptors
        queue.driverArea = avail
        queue.deviceArea = used
        queue.enabled = true
        try queue.configure(packed: false, eventIndex: false, indirect: false)
    }

    func put(_ index: Int, address: UInt64, length: UInt32, flags: UInt16 = 0, next: UInt16 = 0) throws {
        let at = descriptors + 16 * UInt64(index)
        try ram.storeLittleEndian(address, at: at)
        try ram.storeLittleEndian(length, at: at + 8)
        try ram.storeLittleEndian(flags, at: at + 12)
        try ram.storeLittleEndian(next, at: at + 14)
    }

    func publish(_ heads: [UInt16], from start: UInt16) throws {
        var index = start
        for head in heads {
            try ram.storeLittleEndian(head, at: avail + 4 + 2 * UInt64(index % 8))
            index &+= 1
        }
        try ram.storeLittleEndian(index, at: avail + 2)
    }

    @Test func popPushFlushAcrossTheRingEnd() throws {
        let chain = DescriptorChain()
        for i in 0..<8 { try put(i, address: 0x8000 + 0x100 * UInt64(i), length: 0x40 + UInt32(i)) }
        var consumed: UInt16 = 0
        for round in 0..<3 {
            let heads: [UInt16] = (0..<6).map { UInt16((Int(consumed) + $0) % 8) }
            try publish(heads, from: consumed)
            for head in heads {
                #expect(try queue.pop(into: chain))
                #expect(chain.id == head)
                #expect(chain.readableBytes == 0x40 + Int(head))
                try queue.push(chain, length: Int(head))
            }
            #expect(try !queue.pop(into: chain))
            #expect(try queue.flush())
            consumed &+= 6
            #expect(try ram.loadLittleEndian(UInt16.self, at: used + 2) == consumed, "round \(round)")
            for (i, head) in heads.enumerated() {
                let slot = (Int(consumed) - 6 + i) % 8
                #expect(try ram.loadLittleEndian(UInt32.self, at: used + 4 + 8 * UInt64(slot)) == UInt32(head))
            }
        }
    }

    @Test func rewindGivesChainsBack() throws {
        let chain = DescriptorChain()
        try put(0, address: 0x8000, length: 16, flags: 2)
        try put(1, address: 0x9000, length: 16, flags: 2)
        try publish([0, 1], from: 0)
        let mark = queue.mark
        #expect(try queue.pop(into: chain))
        #expect(try queue.pop(into: chain))
        queue.rewind(to: mark)
        #expect(try queue.pop(into: chain))
        #expect(chain.id == 0 && chain.writableBytes == 16 && chain.firstWritable == 0)
    }

    @Test func scatterAndGatherCrossSegments() throws {
        let chain = DescriptorChain()
        try put(0, address: 0x8000, length: 3, flags: 1, next: 1)
        try put(1, address: 0x9000, length: 5, flags: 1 | 2, next: 2)
        try put(2, address: 0xA000, length: 4, flags: 2)
        try publish([0], from: 0)
        try ram.store([1, 2, 3], at: 0x8000)
        #expect(try queue.pop(into: chain))
        var bytes = [UInt8](repeating: 0, count: 3)
        let read = try bytes.withMutableBytes { (buffer) throws(VirtqueueError) in
            try chain.gather(from: queue.memory, into: buffer)
        }
        #expect(read == 3 && bytes == [1, 2, 3])
        let written = try [UInt8](10..<19).withBytes { (buffer) throws(VirtqueueError) in
            try chain.scatter(buffer, to: queue.memory, at: 0)
        }
        #expect(written == 9)
        #expect(try ram.load(at: 0x9000, count: 5) == [10, 11, 12, 13, 14])
        #expect(try ram.load(at: 0xA000, count: 4) == [15, 16, 17, 18])
    }
}
