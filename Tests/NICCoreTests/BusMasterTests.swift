import NICCore
import NICTestSupport
import Testing

@Suite struct BusMasterTests {
    /// A device with its 128 KiB memory BAR programmed at 0x8_0000, inside 1 MiB of RAM (a hostile guest's setup).
    private func makeGate(command: UInt32 = 0x6) throws -> (BusMaster, RAM, PCIConfigSpace) {
        let config = try makeConfig()
        config.write(offset: 0x10, width: 4, value: 0x8_0000)
        config.write(offset: 0x04, width: 2, value: command)
        let ram = RAM(size: 1 << 20)
        return (BusMaster(memory: ram, config: config), ram, config)
    }

    /// The reason `body` was refused, or `nil` if it succeeded.
    private func reason(_ body: () throws -> Void) -> DMAError.Reason? {
        do {
            try body()
            return nil
        } catch {
            return (error as? DMAError)?.reason
        }
    }

    @Test func refusesWhenBusMasteringIsOff() throws {
        let (gate, ram, _) = try makeGate(command: 0x2)
        #expect(reason { _ = try gate.readBytes(at: GuestAddress(0x1000), count: 4) } == .busMasterDisabled)
        #expect(reason { try gate.write(at: GuestAddress(0x1000), bytes: [1, 2]) } == .busMasterDisabled)
        #expect(gate.faults == 2)
        #expect(gate.lastFault?.isWrite == true)
        #expect(gate.lastFault?.address == GuestAddress(0x1000))
        #expect(ram.reads == 0 && ram.writes == 0, "nothing reached memory")
        #expect(ram.bytes[0x1000] == 0)
    }

    @Test func passesThroughToMemory() throws {
        let (gate, ram, _) = try makeGate()
        try gate.write(at: GuestAddress(0x1000), bytes: [0xDE, 0xAD, 0xBE, 0xEF])
        #expect(Array(ram.bytes[0x1000..<0x1004]) == [0xDE, 0xAD, 0xBE, 0xEF])
        ram.bytes[0x2000] = 0x34
        ram.bytes[0x2001] = 0x12
        #expect(try gate.readLittleEndian(UInt16.self, at: GuestAddress(0x2000)) == 0x1234)
        try gate.writeLittleEndian(UInt32(0xAABB_CCDD), at: GuestAddress(0x3000))
        #expect(Array(ram.bytes[0x3000..<0x3004]) == [0xDD, 0xCC, 0xBB, 0xAA])
        #expect(try gate.readBytes(at: GuestAddress(0x7_FFFC), count: 4) == [0, 0, 0, 0], "just below the BAR")
        #expect(gate.faults == 0)
        #expect(gate.lastFault == nil)
    }

    @Test func refusesDMAIntoItsOwnBAR() throws {
        let (gate, ram, _) = try makeGate()
        #expect(reason { _ = try gate.readBytes(at: GuestAddress(0x8_0000), count: 4) } == .insideDeviceBAR)
        #expect(reason { try gate.write(at: GuestAddress(0x9_FFFF), bytes: [1]) } == .insideDeviceBAR)
        #expect(reason { try gate.write(at: GuestAddress(0x7_FFFE), bytes: [1, 2, 3]) } == .insideDeviceBAR)
        #expect(reason { _ = try gate.readBytes(at: GuestAddress(0x7_0000), count: 0x4_0000) } == .insideDeviceBAR)
        #expect(gate.faults == 4)
        #expect(ram.writes == 0 && ram.reads == 0)
        try gate.write(at: GuestAddress(0xA_0000), bytes: [7])
        #expect(ram.bytes[0xA_0000] == 7, "just past the BAR is RAM again")
    }

    @Test func followsBARMovesAndDecodeChanges() throws {
        let (gate, ram, config) = try makeGate()
        #expect(reason { try gate.write(at: GuestAddress(0x8_0000), bytes: [1]) } == .insideDeviceBAR)
        config.write(offset: 0x10, width: 4, value: 0xFEBC_0000)
        try gate.write(at: GuestAddress(0x8_0000), bytes: [1])
        #expect(ram.bytes[0x8_0000] == 1, "the BAR moved away")
        config.write(offset: 0x10, width: 4, value: 0x8_0000)
        config.write(offset: 0x04, width: 2, value: 0x4)
        try gate.write(at: GuestAddress(0x8_0000), bytes: [2])
        #expect(ram.bytes[0x8_0000] == 2, "memory decoding off: the BAR is not there")
        config.write(offset: 0x04, width: 2, value: 0x0)
        #expect(reason { try gate.write(at: GuestAddress(0x100), bytes: [1]) } == .busMasterDisabled)
    }

    @Test func refusesWrappingRanges() throws {
        let (gate, _, _) = try makeGate()
        let top = GuestAddress(UInt64.max - 1)
        #expect(reason { _ = try gate.readBytes(at: top, count: 4) } == .wrapsAddressSpace)
        #expect(reason { try gate.write(at: top, bytes: [1, 2, 3]) } == .wrapsAddressSpace)
        #expect(gate.faults == 2)
    }

    @Test func countsFaultsFromMemory() throws {
        let (gate, _, _) = try makeGate()
        #expect(reason { _ = try gate.readBytes(at: GuestAddress(0xF_FFFE), count: 4) } == .outsideRAM)
        #expect(reason { try gate.write(at: GuestAddress(0x4000_0000), bytes: [1]) } == .outsideRAM)
        #expect(gate.faults == 2)
        #expect(gate.lastFault == DMAError(.outsideRAM, address: GuestAddress(0x4000_0000), length: 1, isWrite: true))
    }

    @Test func guestAddressArithmeticIsChecked() {
        #expect(GuestAddress(10).advanced(by: 5) == GuestAddress(15))
        #expect(GuestAddress(UInt64.max).advanced(by: 1) == nil)
        #expect(GuestAddress(0x1000).description == "0x1000")
    }
}
