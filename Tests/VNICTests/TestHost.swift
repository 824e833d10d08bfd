import CVNIC
import Foundation
import NICCore
import NICHarness
import Testing

/// A host written against vnic.h, as a C hypervisor would be: guest RAM, a clock it moves by hand, an INTx level,
/// the frames the card sent, and optional hooks that call back into the card from inside a callback.
final class TestHost {
    let ram: GuestRAM
    var now: UInt64 = 1_000_000
    var deadline = noDeadline
    var irqLevel = false
    var sent: [[UInt8]] = []
    var notified = 0
    var card: OpaquePointer?
    /// Runs inside frame_out (re-entrancy tests).
    var onFrameOut: ((TestHost) -> Void)?

    init(ramSize: Int = 1 << 20) throws { ram = try GuestRAM(size: ramSize) }

    /// The callbacks, with this host as `opaque`. The host must outlive the card.
    var ops: vnic_host_ops {
        var ops = vnic_host_ops()
        ops.size = UInt32(MemoryLayout<vnic_host_ops>.size)
        ops.opaque = Unmanaged.passUnretained(self).toOpaque()
        ops.dma_read = { opaque, address, buffer, length in
            let host = TestHost.from(opaque)
            do {
                try host.ram.read(
                    at: GuestAddress(address), into: UnsafeMutableRawBufferPointer(start: buffer, count: length))
            } catch { return 1 }
            return 0
        }
        ops.dma_write = { opaque, address, buffer, length in
            let host = TestHost.from(opaque)
            do {
                try host.ram.write(
                    at: GuestAddress(address), from: UnsafeRawBufferPointer(start: buffer, count: length))
            } catch { return 1 }
            return 0
        }
        ops.set_irq = { opaque, level in TestHost.from(opaque).irqLevel = level != 0 }
        ops.clock_ns = { opaque in TestHost.from(opaque).now }
        ops.timer_set = { opaque, deadline in TestHost.from(opaque).deadline = deadline }
        ops.frame_out = { opaque, frame, length in
            let host = TestHost.from(opaque)
            host.sent.append(Array(UnsafeRawBufferPointer(start: frame, count: length)))
            host.onFrameOut?(host)
        }
        ops.notify = { opaque in TestHost.from(opaque).notified += 1 }
        return ops
    }

    static func from(_ opaque: UnsafeMutableRawPointer?) -> TestHost {
        Unmanaged<TestHost>.fromOpaque(opaque!).takeUnretainedValue()
    }

    /// Creates a card of `model` on this host.
    func create(_ model: String, mac: String? = "52:54:00:12:34:56", options: String? = nil) -> Int32 {
        var ops = self.ops
        return withUnsafePointer(to: &ops) { vnic_card_create_with(model, mac, options, $0, &card) }
    }

    deinit { vnic_card_destroy(card) }

    // Register helpers for the PCnet's I/O BAR in 32-bit I/O mode.
    func io(_ offset: UInt64, write value: UInt64) { expectOK(vnic_card_bar_write(card, 0, offset, 4, value)) }
    func io(_ offset: UInt64) -> UInt64 {
        var value: UInt64 = 0
        expectOK(vnic_card_bar_read(card, 0, offset, 4, &value))
        return value
    }
    func csr(_ index: UInt64, _ value: UInt64) {
        io(0x14, write: index)
        io(0x10, write: value)
    }
    func csr(_ index: UInt64) -> UInt64 {
        io(0x14, write: index)
        return io(0x10)
    }

    /// Probes and starts a PCnet as pcnet32 does (32-bit structures, one descriptor each way: receive at 0x2000 with
    /// its buffer at 0x4000, transmit at 0x3000 with its buffer at 0x5000), returning the receive addresses.
    @discardableResult
    func startPCnet() throws -> (rxDescriptor: UInt64, rxBuffer: UInt64) {
        expectOK(vnic_card_config_write(card, 0x10, 4, 0xC001))
        expectOK(vnic_card_config_write(card, 0x04, 2, 0x0005))
        _ = io(0x18)
        io(0x10, write: 0)
        io(0x14, write: 20)
        io(0x1C, write: 2)
        var block = [UInt8](repeating: 0, count: 28)
        block.replaceSubrange(4..<10, with: [0x52, 0x54, 0x00, 0x12, 0x34, 0x56])
        block.replaceSubrange(20..<24, with: le32(0x2000))
        block.replaceSubrange(24..<28, with: le32(0x3000))
        try ram.store(block, at: 0x1000)
        try ram.store(le32(0x4000) + le32(0x8000_F000 | (0x1000 - 1536)), at: 0x2000)
        csr(1, 0x1000)
        csr(2, 0)
        csr(0, 0x41)
        csr(0, 0x142)
        return (0x2000, 0x4000)
    }

    /// Puts `frame` in the transmit buffer and hands the transmit descriptor to the card (OWN, STP, ENP); the caller
    /// writes TDMD.
    func queueTransmit(_ frame: [UInt8]) throws {
        try ram.store(frame, at: 0x5000)
        try ram.store(le32(0x5000) + le32(0x8300_F000 | UInt32(0x1000 - frame.count)), at: 0x3000)
    }

    func le32(_ value: UInt32) -> [UInt8] { withUnsafeBytes(of: value.littleEndian, Array.init) }
}

let noDeadline = UInt64.max

/// Expects a vnic call to return VNIC_OK.
func expectOK(_ status: Int32, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(
        status == Int32(VNIC_OK.rawValue), "status \(status): \(String(cString: vnic_status_string(status)))",
        sourceLocation: sourceLocation)
}
