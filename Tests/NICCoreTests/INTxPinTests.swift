import NICCore
import NICTestSupport
import Testing

@Suite struct INTxPinTests {
    @Test func forwardsLevelChangesOnly() throws {
        let config = try makeConfig()
        let line = RecordingLine()
        let pin = INTxPin(line: line, config: config)
        pin.set(true)
        pin.set(true)
        #expect(line.levels == [true])
        #expect(pin.asserted && pin.requested)
        pin.set(false)
        pin.set(false)
        #expect(line.levels == [true, false])
        pin.set(true)
        #expect(line.levels == [true, false, true])
    }

    @Test func statusBitThreeFollowsTheRequest() throws {
        let config = try makeConfig()
        let pin = INTxPin(line: nil, config: config)
        #expect(config.read(offset: 0x06, width: 2) & 0x8 == 0)
        pin.set(true)
        #expect(config.read(offset: 0x06, width: 2) & 0x8 == 0x8)
        config.write(offset: 0x06, width: 2, value: 0xFFFF)
        #expect(config.read(offset: 0x06, width: 2) & 0x8 == 0x8, "the guest cannot clear it")
        pin.set(false)
        #expect(config.read(offset: 0x06, width: 2) & 0x8 == 0)
    }

    @Test func interruptDisableMasksTheLine() throws {
        let config = try makeConfig(writableCommand: [.memorySpace, .busMaster, .interruptDisable])
        let line = RecordingLine()
        let pin = INTxPin(line: line, config: config)
        pin.set(true)
        #expect(line.levels == [true])
        config.write(offset: 0x04, width: 2, value: UInt32(PCICommandBit.interruptDisable.mask))
        pin.refresh()
        #expect(line.levels == [true, false])
        #expect(!pin.asserted && pin.requested)
        #expect(config.status.contains(.interruptStatus), "status still shows the request")
        pin.set(true)
        #expect(line.levels == [true, false], "disabled: no new edge")
        config.write(offset: 0x04, width: 2, value: 0)
        pin.refresh()
        #expect(line.levels == [true, false, true])
    }

    @Test func interruptDisableBeforeTheRequest() throws {
        let config = try makeConfig(writableCommand: [.interruptDisable])
        let line = RecordingLine()
        let pin = INTxPin(line: line, config: config)
        config.write(offset: 0x04, width: 2, value: 0x400)
        pin.set(true)
        #expect(line.levels.isEmpty)
        #expect(config.status.contains(.interruptStatus))
        pin.set(false)
        #expect(line.levels.isEmpty)
        #expect(!config.status.contains(.interruptStatus))
    }
}
