import NICCore
import NICHarness
import Testing

@testable import VirtioNet

/// Sends one frame through the transmit ring and rings the doorbell.
private func transmitOne(_ bench: VirtioBench, _ ring: VirtioDriverQueue, notify: () -> Void) {
    let buffer = bench.allocate(76, alignment: 16)
    bench.store(netHeader() + makeFrame(to: .broadcast), at: buffer)
    ring.add([(buffer, 76, false)])
    notify()
}

@Suite("virtio-net interrupts: INTx, ISR, MSI-X")
struct VirtioInterruptTests {
    @Test func intxAndISRReadToClear() throws {
        let bench = try VirtioBench()
        let rings = bench.startModern([.mac, .status])
        transmitOne(bench, rings.tx) { bench.notifyModern(1) }
        #expect(bench.line.level)
        #expect(bench.modernRead(0x1000, 1) == 1, "queue bit")
        #expect(!bench.line.level, "read-to-clear deasserts")
        #expect(bench.modernRead(0x1000, 1) == 0)
        bench.card.cableConnected = false
        #expect(bench.line.level)
        #expect(bench.modernRead(0x1000, 1) == 2, "config bit")
        #expect(bench.modernRead(0x2006, 2) & 1 == 0, "link down in status")
    }

    @Test func legacyISRAndConfigInterruptOnLinkChange() throws {
        let bench = try VirtioBench()
        let rings = bench.startLegacy(UInt32(VirtioFeatures([.mac, .status]).rawValue))
        transmitOne(bench, rings.tx) { bench.legacyWrite(0x10, 2, 1) }
        #expect(bench.line.level)
        #expect(bench.legacyRead(0x13, 1) == 1)
        #expect(!bench.line.level)
        bench.card.port.setCarrier(false)
        bench.card.service()
        #expect(bench.legacyRead(0x13, 1) == 2)
        #expect(bench.legacyRead(20 + 6, 2) & 1 == 0)
        bench.card.port.setCarrier(true)
        bench.card.service()
        #expect(bench.legacyRead(0x13, 1) == 2)
        #expect(bench.legacyRead(20 + 6, 2) & 1 == 1)
        #expect(bench.counter("config_interrupts") == 2)
    }

    @Test func msixPerQueueAndConfigVectors() throws {
        let bench = try VirtioBench()
        bench.enableMSIX()
        #expect(bench.negotiateModern([.version1, .mac, .status]))
        bench.modernWrite(0x10, 2, 3)
        #expect(bench.modernRead(0x10, 2) == 3)
        _ = bench.setupModernQueue(0, size: 64, vector: 0)
        let tx = bench.setupModernQueue(1, size: 64, vector: 1)
        bench.driverOK()
        transmitOne(bench, tx) { bench.notifyModern(1) }
        #expect(bench.msix.take(vector: 1) == 1)
        #expect(!bench.line.level, "no INTx while MSI-X is on")
        bench.card.cableConnected = false
        #expect(bench.msix.take(vector: 3) == 1)
    }

    @Test func vectorsOutsideTheTableReadBackAsNoVector() throws {
        let bench = try VirtioBench()
        bench.enableMSIX()
        bench.modernWrite(0x10, 2, 4)
        #expect(bench.modernRead(0x10, 2) == 0xFFFF)
        bench.modernWrite(0x16, 2, 1)
        bench.modernWrite(0x1A, 2, 200)
        #expect(bench.modernRead(0x1A, 2) == 0xFFFF)
        // Legacy registers at 0x14/0x16 once MSI-X is enabled.
        bench.legacyWrite(0x14, 2, 2)
        #expect(bench.legacyRead(0x14, 2) == 2)
        bench.legacyWrite(0x0E, 2, 0)
        bench.legacyWrite(0x16, 2, 9)
        #expect(bench.legacyRead(0x16, 2) == 0xFFFF)
    }

    @Test func noVectorMeansNoInterrupt() throws {
        let bench = try VirtioBench()
        bench.enableMSIX()
        #expect(bench.negotiateModern([.version1, .mac]))
        let tx = bench.setupModernQueue(1, size: 64)
        bench.driverOK()
        transmitOne(bench, tx) { bench.notifyModern(1) }
        #expect(bench.msix.total.isEmpty)
        #expect(bench.counter("interrupts_no_vector") == 1)
    }

    @Test func maskedVectorSetsThePendingBitAndFiresOnUnmask() throws {
        let bench = try VirtioBench()
        bench.enableMSIX()
        bench.card.barWrite(1, offset: 16 + 12, width: 4, value: 1)  // mask vector 1
        #expect(bench.negotiateModern([.version1, .mac]))
        let tx = bench.setupModernQueue(1, size: 64, vector: 1)
        bench.driverOK()
        transmitOne(bench, tx) { bench.notifyModern(1) }
        #expect(bench.msix.take(vector: 1) == 0)
        #expect(bench.card.barRead(1, offset: 0x800, width: 4) == 0b10)
        bench.card.barWrite(1, offset: 16 + 12, width: 4, value: 0)
        #expect(bench.msix.take(vector: 1) == 1)
        #expect(bench.card.barRead(1, offset: 0x800, width: 4) == 0)
    }

    @Test func functionMaskHoldsMessages() throws {
        let bench = try VirtioBench()
        bench.enableMSIX()
        let cap = try #require(bench.msixCapability())
        bench.card.configWrite(offset: cap + 2, width: 2, value: 0xC000)
        #expect(bench.negotiateModern([.version1, .mac]))
        let tx = bench.setupModernQueue(1, size: 64, vector: 1)
        bench.driverOK()
        transmitOne(bench, tx) { bench.notifyModern(1) }
        #expect(bench.msix.take(vector: 1) == 0)
        bench.card.configWrite(offset: cap + 2, width: 2, value: 0x8000)
        #expect(bench.msix.take(vector: 1) == 1)
    }
}

@Suite("virtio-net notification suppression")
struct VirtioEventIndexTests {
    /// vring_need_event from the driver's side, written out independently.
    static func driverNeedsKick(event: UInt16, new: UInt16, old: UInt16) -> Bool {
        UInt16(truncatingIfNeeded: Int(new) - Int(event) - 1) < UInt16(truncatingIfNeeded: Int(new) - Int(old))
    }

    @Test func splitUsedEventSuppressesInterruptsExactly() throws {
        let bench = try VirtioBench()
        let rings = bench.startModern([.mac, .eventIndex])
        let tx = rings.tx
        try tx.setUsedEvent(0)
        for _ in 0..<5 { transmitOne(bench, tx) { bench.notifyModern(1) } }
        #expect(bench.counter("used_interrupts_wanted") == 1)
        #expect(bench.counter("used_interrupts_suppressed") == 4)
        #expect(bench.line.assertions == 1)
        _ = bench.modernRead(0x1000, 1)
        try tx.setUsedEvent(6)
        transmitOne(bench, tx) { bench.notifyModern(1) }  // used 5 -> 6: not yet
        #expect(bench.counter("used_interrupts_wanted") == 1)
        transmitOne(bench, tx) { bench.notifyModern(1) }  // used 6 -> 7: passes used_event 6
        #expect(bench.counter("used_interrupts_wanted") == 2)
        #expect(bench.counter("used_interrupts_suppressed") == 5)
        #expect(bench.line.assertions == 2)
    }

    @Test func splitAvailEventSuppressesNotificationsExactly() throws {
        let bench = try VirtioBench()
        let rings = bench.startModern([.mac, .eventIndex])
        let rx = rings.rx
        var kicks = 0
        var avoided = 0
        func addBuffer() throws {
            let old = rx.availIndex
            rx.add([(bench.allocate(2048), 2048, true)])
            if Self.driverNeedsKick(event: try rx.availEvent, new: rx.availIndex, old: old) {
                kicks += 1
                bench.notifyModern(0)
            } else {
                avoided += 1
            }
        }
        for _ in 0..<16 { try addBuffer() }
        #expect(kicks == 1)
        #expect(avoided == 15)
        #expect(bench.counter("notifications") == 1)
        bench.receive(makeFrame(to: bench.mac))
        #expect(try rx.availEvent == 1)
        try addBuffer()
        #expect(kicks == 1 && avoided == 16)
    }

    @Test func splitNoInterruptFlagWithoutEventIndex() throws {
        let bench = try VirtioBench()
        let rings = bench.startModern([.mac])
        let tx = rings.tx
        try tx.suppressInterrupts(true)
        transmitOne(bench, tx) { bench.notifyModern(1) }
        #expect(!bench.line.level)
        #expect(bench.counter("used_interrupts_suppressed") == 1)
        try tx.suppressInterrupts(false)
        transmitOne(bench, tx) { bench.notifyModern(1) }
        #expect(bench.line.level)
    }

    @Test func packedDriverEventSuppression() throws {
        let bench = try VirtioBench()
        let rings = bench.startModern([.mac, .eventIndex], size: 8, packed: true)
        let tx = rings.tx
        // The device asks for a doorbell at its next position.
        #expect(try tx.deviceEvent.flags == 2)
        #expect(try tx.deviceEvent.offWrap == 0x8000)
        try tx.setDriverEvent(flags: 1)
        transmitOne(bench, tx) { bench.notifyModern(1) }
        #expect(bench.counter("used_interrupts_suppressed") == 1)
        #expect(try tx.deviceEvent.offWrap == 0x8001)
        try tx.setDriverEvent(flags: 0)
        transmitOne(bench, tx) { bench.notifyModern(1) }
        #expect(bench.counter("used_interrupts_wanted") == 1)
        // Interrupt only once the device writes the used descriptor at position 4 (this lap).
        try tx.setDriverEvent(flags: 2, offWrap: 0x8004)
        transmitOne(bench, tx) { bench.notifyModern(1) }  // position 2
        transmitOne(bench, tx) { bench.notifyModern(1) }  // position 3
        #expect(bench.counter("used_interrupts_wanted") == 1)
        transmitOne(bench, tx) { bench.notifyModern(1) }  // position 4
        #expect(bench.counter("used_interrupts_wanted") == 2)
        #expect(bench.counter("used_interrupts_suppressed") == 3)
        #expect(tx.used().count == 5)
    }

    @Test func packedRingWrapsAround() throws {
        let bench = try VirtioBench()
        let rings = bench.startModern([.mac], size: 4, packed: true)
        for round in 0..<10 {
            transmitOne(bench, rings.tx) { bench.notifyModern(1) }
            #expect(rings.tx.used().count == 1, "round \(round)")
        }
        #expect(bench.sentFrames().count == 10)
        #expect(!bench.needsReset)
    }
}

@Suite("virtio-net without an MSI-X sink")
struct VirtioNoMSIXTests {
    @Test func theCapabilityIsLeftOut() throws {
        let ram = try GuestRAM(size: 1 << 20)
        let line = RecordingInterruptLine()
        let card = VirtioNetCard(
            macAddress: MACAddress("52:54:00:00:00:01")!,
            environment: CardEnvironment(memory: ram, interruptLine: line, clock: ManualClock()))
        var pointer = Int(card.configRead(offset: 0x34, width: 1))
        var ids: [UInt32] = []
        while pointer != 0 {
            ids.append(card.configRead(offset: pointer, width: 1))
            pointer = Int(card.configRead(offset: pointer + 1, width: 1))
        }
        #expect(ids == [9, 9, 9, 9, 9])
    }
}

@Suite("virtio-net control queue notification suppression")
struct VirtioControlEventIndexTests {
    /// Linux's virtnet_send_command kicks only when vring_need_event says so, then spins for the answer: the device
    /// must move avail_event past each command it takes, or the next command is never seen.
    @Test(arguments: [false, true])
    func everyCommandIsKickedAndAnsweredUnderEventIndex(legacy: Bool) throws {
        let bench = try VirtioBench()
        let control: VirtioDriverQueue
        if legacy {
            let features = (controlFeatures.union([.eventIndex])).rawValue
            _ = bench.startLegacy(UInt32(truncatingIfNeeded: features))
            control = bench.setupLegacyQueue(2)
            bench.legacyWrite(0x12, 1, 0x07)
        } else {
            let rings = bench.startModern(controlFeatures.union([.eventIndex]))
            control = try #require(rings.control)
        }
        var kicks = 0
        for command: UInt8 in [0, 1, 0, 1] {  // promiscuous, all-multicast, on and off
            let header = bench.allocate(2, alignment: 16)
            let body = bench.allocate(1, alignment: 16)
            let ack = bench.allocate(1, alignment: 16)
            bench.store([0, command], at: header)
            bench.store([command], at: body)
            bench.store([0xAA], at: ack)
            let old = control.availIndex
            control.add([(header, 2, false), (body, 1, false), (ack, 1, true)])
            if VirtioEventIndexTests.driverNeedsKick(event: try control.availEvent, new: control.availIndex, old: old) {
                kicks += 1
                if legacy { bench.legacyWrite(0x10, 2, 2) } else { bench.notifyModern(2) }
            }
            #expect(control.used().count == 1, "command \(command) was answered")
            #expect(bench.load(ack, 1)[0] == 0)
        }
        #expect(kicks == 4)
        #expect(bench.counter("control_commands") == 4)
    }
}
