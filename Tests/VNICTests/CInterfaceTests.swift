import CVNIC
import Foundation
import NICCore
import NICHarness
import NICTrace
import Testing

private func code(_ status: vnic_status) -> Int32 { Int32(status.rawValue) }

@Suite("C interface")
struct CInterfaceTests {
    @Test func versionAndModels() {
        #expect(vnic_abi_version() == UInt32(VNIC_ABI_VERSION))
        #expect(vnic_model_supported("Am79C970A") == 1)
        #expect(vnic_model_supported("am79c973") == 1)
        #expect(vnic_model_supported("Am79C960") == 0)
        #expect(vnic_model_supported(nil) == 0)
        #expect(String(cString: vnic_status_string(code(VNIC_ERR_NO_SUCH_BAR))) == "no such BAR")
        #expect(String(cString: vnic_status_string(9999)) == "unknown status")
    }

    @Test(arguments: [("Am79C970A", 0x2000_1022 as UInt32), ("Am79C973", 0x2000_1022)])
    func createsByVirtualBoxTypeName(model: String, id: UInt32) throws {
        let host = try TestHost()
        expectOK(host.create(model))
        var value: UInt32 = 0
        expectOK(vnic_card_config_read(host.card, 0, 4, &value))
        #expect(value == id)
        var kind = VNIC_BAR_NONE
        var size: UInt64 = 0
        expectOK(vnic_card_bar_info(host.card, 0, &kind, &size))
        #expect(kind == VNIC_BAR_IO && size == 32)
        expectOK(vnic_card_bar_info(host.card, 5, &kind, &size))
        #expect(kind == VNIC_BAR_NONE && size == 0)
        var snapshot = [UInt8](repeating: 0, count: 256)
        expectOK(vnic_card_config_snapshot(host.card, &snapshot, 256))
        #expect(snapshot[0] == 0x22 && snapshot[1] == 0x10 && snapshot[0x3D] == 1)
    }

    @Test func badArgumentsAreStatusCodes() throws {
        let host = try TestHost()
        #expect(host.create("Am79C961") == code(VNIC_ERR_UNKNOWN_MODEL))
        #expect(host.card == nil)
        #expect(host.create("Am79C973", mac: "52:54:00:12:34") == code(VNIC_ERR_BAD_MAC))
        #expect(host.create("Am79C973", mac: "ff:ff:ff:ff:ff:ff") == code(VNIC_ERR_BAD_MAC))
        var ops = host.ops
        ops.dma_read = nil
        var card: OpaquePointer?
        #expect(vnic_card_create("Am79C973", nil, &ops, &card) == code(VNIC_ERR_BAD_HOST_OPS))
        ops = host.ops
        ops.size = 16
        #expect(vnic_card_create("Am79C973", nil, &ops, &card) == code(VNIC_ERR_BAD_HOST_OPS))
        #expect(vnic_card_create(nil, nil, &ops, &card) == code(VNIC_ERR_NULL_ARGUMENT))
        #expect(vnic_card_create("Am79C973", nil, nil, &card) == code(VNIC_ERR_NULL_ARGUMENT))

        expectOK(host.create("Am79C973"))
        var value32: UInt32 = 0
        var value: UInt64 = 0
        #expect(vnic_card_config_read(host.card, 0, 3, &value32) == code(VNIC_ERR_OUT_OF_RANGE))
        #expect(vnic_card_config_read(host.card, 254, 4, &value32) == code(VNIC_ERR_OUT_OF_RANGE))
        #expect(vnic_card_config_read(host.card, 0, 4, nil) == code(VNIC_ERR_NULL_ARGUMENT))
        #expect(vnic_card_bar_read(host.card, 2, 0, 4, &value) == code(VNIC_ERR_NO_SUCH_BAR))
        #expect(String(cString: vnic_card_last_error(host.card)) == "am79c973 has no BAR 2")
        #expect(vnic_card_bar_read(host.card, 9, 0, 4, &value) == code(VNIC_ERR_NO_SUCH_BAR))
        #expect(vnic_card_bar_read(host.card, 0, 30, 4, &value) == code(VNIC_ERR_OUT_OF_RANGE))
        #expect(vnic_card_bar_write(host.card, 0, 0, 3, 0) == code(VNIC_ERR_OUT_OF_RANGE))
        #expect(vnic_card_bar_read(host.card, 0, UInt64.max, 4, &value) == code(VNIC_ERR_OUT_OF_RANGE))
        #expect(vnic_card_bar_read(nil, 0, 0, 4, &value) == code(VNIC_ERR_NULL_ARGUMENT))
        #expect(vnic_card_receive(host.card, [UInt8](repeating: 0, count: 8), 8) == code(VNIC_ERR_BAD_FRAME))
        #expect(vnic_card_receive(host.card, nil, 60) == code(VNIC_ERR_NULL_ARGUMENT))
        #expect(vnic_card_attach(host.card, "pigeon:coop") == code(VNIC_ERR_BAD_SETTINGS))
        #expect(String(cString: vnic_card_last_error(host.card)).contains("unknown attachment 'pigeon'"))
        #expect(vnic_card_counter(host.card, "no_such_counter", &value) == code(VNIC_ERR_NO_SUCH_COUNTER))
        var needed = 0
        #expect(vnic_card_counters(host.card, nil, 0, &needed) == code(VNIC_ERR_BUFFER_TOO_SMALL))
        #expect(needed > 100)
        #expect(vnic_card_capture(host.card, "/nonexistent-directory/x.pcap") == code(VNIC_ERR_IO))
        expectOK(vnic_card_config_read(host.card, 0, 4, &value32))
        let path = NSTemporaryDirectory() + "vnic-never-\(UUID().uuidString).trace"
        #expect(vnic_card_record(host.card, path) == code(VNIC_ERR_BAD_STATE), "refused after the first access")
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    @Test func transmitsToFrameOutAndReceivesFromTheHost() throws {
        let host = try TestHost()
        expectOK(host.create("Am79C970A"))
        let (rxDescriptor, rxBuffer) = try host.startPCnet()
        let frame: [UInt8] =
            [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x52, 0x54, 0, 0x12, 0x34, 0x56, 0x08, 0x06]
            + [UInt8](repeating: 0xA5, count: 46)
        try host.queueTransmit(frame)
        host.csr(0, 0x48)
        #expect(host.sent == [frame])
        #expect(host.irqLevel, "TINT raises INTx")
        let incoming: [UInt8] =
            [0x52, 0x54, 0, 0x12, 0x34, 0x56, 2, 0, 0, 0, 0, 9, 0x08, 0x00] + [UInt8](repeating: 7, count: 50)
        #expect(vnic_card_can_receive(host.card) == 1)
        expectOK(vnic_card_receive(host.card, incoming, incoming.count))
        #expect(try host.ram.load(at: rxBuffer, count: incoming.count) == incoming)
        #expect(try host.ram.load(at: rxDescriptor + 7, count: 1)[0] & 0x80 == 0, "descriptor returned to the host")
        var value: UInt64 = 0
        expectOK(vnic_card_counter(host.card, "rx_frames", &value))
        #expect(value == 1)
    }

    @Test func callbacksMayHandFramesInButNotTouchRegisters() throws {
        let host = try TestHost()
        expectOK(host.create("Am79C970A"))
        let rxBuffer = try host.startPCnet().rxBuffer
        let reply: [UInt8] =
            [0x52, 0x54, 0, 0x12, 0x34, 0x56, 2, 0, 0, 0, 0, 9, 0x08, 0x00] + [UInt8](repeating: 3, count: 50)
        var inside: (receive: Int32, read: Int32, link: Int32)?
        host.onFrameOut = { host in
            // As QEMU's user network does: answer the frame before frame_out returns.
            var value: UInt64 = 0
            inside = (
                vnic_card_receive(host.card, reply, reply.count), vnic_card_bar_read(host.card, 0, 0x10, 4, &value),
                vnic_card_set_link(host.card, 0)
            )
        }
        let frame =
            [UInt8](repeating: 0xFF, count: 6) + [0x52, 0x54, 0, 0x12, 0x34, 0x56, 0x08, 0x06]
            + [UInt8](repeating: 0, count: 46)
        try host.queueTransmit(frame)
        host.csr(0, 0x48)
        #expect(inside?.receive == code(VNIC_OK), "the frame was queued")
        #expect(inside?.read == code(VNIC_ERR_BAD_STATE))
        #expect(inside?.link == code(VNIC_ERR_BAD_STATE))
        #expect(try host.ram.load(at: rxBuffer, count: reply.count) == reply, "received after the transmit finished")
        var up: Int32 = 0
        expectOK(vnic_card_link_up(host.card, &up))
        #expect(up == 1)
    }

    @Test func timersFollowTheHostClock() throws {
        let host = try TestHost()
        expectOK(host.create("Am79C970A"))
        try host.startPCnet()
        // The running chip polls the transmit ring about every 2 ms: the card asks the host for a timer.
        #expect(host.deadline != noDeadline)
        #expect(host.deadline > host.now && host.deadline <= host.now + 3_000_000)
        host.now = host.deadline
        expectOK(vnic_card_run_timers(host.card))
        #expect(host.deadline > host.now, "the poll timer re-armed")
        host.csr(0, 0x04)  // STOP
        #expect(host.deadline == noDeadline, "a stopped chip needs no timer")
    }

    @Test func internalNetworkAttachmentConnectsTwoCards() throws {
        let first = try TestHost()
        let second = try TestHost()
        expectOK(first.create("Am79C970A", mac: "52:54:00:00:00:01"))
        expectOK(second.create("Am79C973", mac: "52:54:00:00:00:02"))
        let name = "cinterface-\(UUID().uuidString.prefix(8))"
        expectOK(vnic_card_attach(first.card, "intnet:" + name))
        expectOK(vnic_card_attach(second.card, "intnet:" + name))
        try first.startPCnet()
        let rxBuffer = try second.startPCnet().rxBuffer
        let frame =
            [UInt8](repeating: 0xFF, count: 6) + [0x52, 0x54, 0, 0, 0, 1, 0x08, 0x06]
            + [UInt8](repeating: 0x5A, count: 46)
        try first.queueTransmit(frame)
        first.csr(0, 0x48)
        #expect(first.sent.isEmpty, "frames go to the internal network, not frame_out")
        #expect(second.notified > 0, "notify told the host to service the second card")
        expectOK(vnic_card_service(second.card))
        #expect(try second.ram.load(at: rxBuffer, count: frame.count) == frame)
        expectOK(vnic_card_attach(first.card, "host"))
        expectOK(vnic_card_attach(second.card, "null"))
    }

    @Test func aRecordedSessionReplays() throws {
        let host = try TestHost()
        expectOK(host.create("Am79C973"))
        let path = NSTemporaryDirectory() + "vnic-cinterface-\(UUID().uuidString).trace"
        defer { try? FileManager.default.removeItem(atPath: path) }
        expectOK(vnic_card_record(host.card, path))
        #expect(vnic_card_record(host.card, path) == code(VNIC_ERR_BAD_STATE), "already recording")
        try host.startPCnet()
        let frame =
            [UInt8](repeating: 0xFF, count: 6) + [0x52, 0x54, 0, 0x12, 0x34, 0x56, 0x08, 0x06]
            + [UInt8](repeating: 0x11, count: 46)
        try host.queueTransmit(frame)
        host.now += 5_000_000
        host.csr(0, 0x48)
        let incoming: [UInt8] =
            [0x52, 0x54, 0, 0x12, 0x34, 0x56, 2, 0, 0, 0, 0, 9, 0x08, 0x00] + [UInt8](repeating: 7, count: 50)
        expectOK(vnic_card_receive(host.card, incoming, incoming.count))
        expectOK(vnic_card_set_link(host.card, 0))
        expectOK(vnic_card_record_stop(host.card))
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text.hasPrefix("vnic-trace 1\ndevice am79c973 mac=52:54:00:12:34:56\nram 1M\n"))
        #expect(text.contains("tx-expect " + Hex.encode(frame)))
        #expect(text.contains("rx " + Hex.encode(incoming)))
        #expect(text.contains("clock 5ms"))
        #expect(text.contains("irq = 1"))
        #expect(text.contains("link down"))
        let summary = try TraceReplayer.run(text)
        #expect(summary.transmitted == 1)
        #expect(summary.assertions >= 5)
    }

    @Test func queuePairsAreACardOption() throws {
        for bad in ["queues=0", "queues=17", "queues=two", "pairs=2", "queues", "mtu=65536", "queues=2,mtu=1"] {
            let host = try TestHost()
            #expect(host.create("virtio", options: bad) == code(VNIC_ERR_BAD_SETTINGS), "\(bad)")
            #expect(host.card == nil)
        }
        let single = try TestHost()
        #expect(single.create("82540EM", options: "queues=2") == code(VNIC_ERR_BAD_SETTINGS), "one queue on e1000")
        expectOK(single.create("82540EM", options: ""))

        // The card offers what was asked: max_virtqueue_pairs in the legacy device config (offset 20 + 8, MSI-X off),
        // and a recording names the pairs so the replay builds the same card.
        let host = try TestHost()
        expectOK(host.create("virtio", options: "queues=4,mtu=9000"))
        let path = NSTemporaryDirectory() + "vnic-cinterface-\(UUID().uuidString).trace"
        defer { try? FileManager.default.removeItem(atPath: path) }
        expectOK(vnic_card_record(host.card, path))
        expectOK(vnic_card_config_write(host.card, 4, 2, 1))
        var pairs: UInt64 = 0
        expectOK(vnic_card_bar_read(host.card, 0, 0x1C, 2, &pairs))
        #expect(pairs == 4)
        var mtu: UInt64 = 0
        expectOK(vnic_card_bar_read(host.card, 0, 0x1E, 2, &mtu))
        #expect(mtu == 9000)
        expectOK(vnic_card_record_stop(host.card))
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text.hasPrefix("vnic-trace 1\ndevice virtio mac=52:54:00:12:34:56 queues=4 mtu=9000\n"))
        #expect(try TraceReplayer.run(text).assertions >= 1)
    }
}
