import NICCore
import Testing

/// An 82540EM-like function: a 128 KiB memory BAR, a 64-byte I/O BAR and a 16 KiB prefetchable 64-bit BAR.
func makeConfig(writableCommand: PCICommand? = nil) throws -> PCIConfigSpace {
    var identity = PCIIdentity(
        vendorID: 0x8086, deviceID: 0x100E, revisionID: 0x03, subsystemVendorID: 0x8086, subsystemID: 0x001E,
        minimumGrant: 0xFF, maximumLatency: 0x00)
    if let writableCommand { identity.writableCommand = writableCommand }
    return try PCIConfigSpace(
        identity: identity,
        bars: [
            0: BARLayout(.memory32(prefetchable: false), size: 0x2_0000),
            1: BARLayout(.io, size: 0x40),
            2: BARLayout(.memory64(prefetchable: true), size: 0x4000),
        ])
}

@Suite struct PCIConfigSpaceTests {
    @Test func identityBytes() throws {
        let config = try makeConfig()
        #expect(config.read(offset: 0x00, width: 4) == 0x100E_8086)
        #expect(config.read(offset: 0x00, width: 2) == 0x8086)
        #expect(config.read(offset: 0x02, width: 2) == 0x100E)
        #expect(config.read(offset: 0x08, width: 4) == 0x0200_0003)
        #expect(config.read(offset: 0x0B, width: 1) == 0x02)
        #expect(config.read(offset: 0x2C, width: 4) == 0x001E_8086)
        #expect(config.read(offset: 0x3C, width: 4) == 0x00FF_0100)
        #expect(config.read(offset: 0x06, width: 2) == PCIStatusBit.devselMedium.mask)
        #expect(config.read(offset: 0x04, width: 2) == 0)
        #expect(config.read(offset: 0x30, width: 4) == 0, "no expansion ROM")
        #expect(config.read(offset: 0x34, width: 1) == 0, "no capabilities yet")
    }

    @Test func barFlagBits() throws {
        let config = try makeConfig()
        #expect(config.read(offset: 0x10, width: 4) == 0x0)
        #expect(config.read(offset: 0x14, width: 4) == 0x1)
        #expect(config.read(offset: 0x18, width: 4) == 0xC, "64-bit, prefetchable")
        #expect(config.read(offset: 0x1C, width: 4) == 0x0)
        #expect(config.read(offset: 0x20, width: 4) == 0x0, "unimplemented BAR")
    }

    @Test func memory32BARSizing() throws {
        let config = try makeConfig()
        config.write(offset: 0x10, width: 4, value: 0xFFFF_FFFF)
        let readBack = config.read(offset: 0x10, width: 4)
        #expect(readBack == 0xFFFE_0000)
        #expect(~(readBack & ~0xF) &+ 1 == 0x2_0000)
        config.write(offset: 0x10, width: 4, value: 0xFEBC_0007)
        #expect(config.read(offset: 0x10, width: 4) == 0xFEBC_0000, "flag bits and low address bits read-only")
        #expect(config.barBase(0) == 0xFEBC_0000)
        #expect(config.barSize(0) == 0x2_0000)
    }

    @Test func ioBARSizing() throws {
        let config = try makeConfig()
        config.write(offset: 0x14, width: 4, value: 0xFFFF_FFFF)
        let readBack = config.read(offset: 0x14, width: 4)
        #expect(readBack == 0xFFFF_FFC1)
        #expect(~(readBack & ~0x3) &+ 1 == 0x40)
        config.write(offset: 0x14, width: 4, value: 0xC040)
        #expect(config.read(offset: 0x14, width: 4) == 0xC041)
        #expect(config.barBase(1) == 0xC040)
    }

    @Test func memory64BARSizing() throws {
        let config = try makeConfig()
        config.write(offset: 0x18, width: 4, value: 0xFFFF_FFFF)
        config.write(offset: 0x1C, width: 4, value: 0xFFFF_FFFF)
        let low = UInt64(config.read(offset: 0x18, width: 4))
        let high = UInt64(config.read(offset: 0x1C, width: 4))
        #expect(low == 0xFFFF_C00C)
        #expect(high == 0xFFFF_FFFF)
        #expect(~((high << 32) | (low & ~0xF)) &+ 1 == 0x4000)
        config.write(offset: 0x18, width: 4, value: 0x2000_0000)
        config.write(offset: 0x1C, width: 4, value: 0x0000_0001)
        #expect(config.barBase(2) == 0x1_2000_0000)
        #expect(config.barBase(3) == 0, "the upper half is not a BAR of its own")
        #expect(config.barSize(2) == 0x4000)
        #expect(config.barSize(3) == 0)
    }

    @Test func commandRegisterWritableMask() throws {
        let config = try makeConfig()
        let change = config.write(offset: 0x04, width: 2, value: 0xFFFF)
        #expect(change.contains(.command))
        let expected: PCICommand = [.ioSpace, .memorySpace, .busMaster, .parityErrorResponse, .serrEnable]
        #expect(config.read(offset: 0x04, width: 2) == UInt32(expected.rawValue))
        #expect(config.command == expected)
        config.write(offset: 0x04, width: 1, value: 0x02)
        #expect(config.command == [.memorySpace, .serrEnable], "a byte write leaves the other byte alone")

        let withDisable = try makeConfig(writableCommand: [.memorySpace, .interruptDisable])
        withDisable.write(offset: 0x04, width: 2, value: 0xFFFF)
        #expect(withDisable.command == [.memorySpace, .interruptDisable])
    }

    @Test func readOnlyAndWritableHeaderBytes() throws {
        let config = try makeConfig()
        config.write(offset: 0x00, width: 4, value: 0)
        #expect(config.read(offset: 0x00, width: 4) == 0x100E_8086)
        config.write(offset: 0x08, width: 4, value: 0)
        #expect(config.read(offset: 0x08, width: 4) == 0x0200_0003)
        config.write(offset: 0x0C, width: 2, value: 0x4010)
        #expect(config.read(offset: 0x0C, width: 2) == 0x4010, "cache line size and latency timer")
        config.write(offset: 0x3C, width: 2, value: 0x040B)
        #expect(config.read(offset: 0x3C, width: 2) == 0x010B, "interrupt line writable, pin read-only")
        config.write(offset: 0x2C, width: 4, value: 0x1234_5678)
        #expect(config.read(offset: 0x2C, width: 4) == 0x001E_8086)
    }

    @Test func statusWriteOneToClear() throws {
        let config = try makeConfig()
        config.setStatus([.receivedMasterAbort, .signaledSystemError, .interruptStatus])
        #expect(config.status.contains(.receivedMasterAbort))
        config.write(offset: 0x06, width: 2, value: 0)
        #expect(config.status.contains(.receivedMasterAbort), "writing zero clears nothing")
        config.write(offset: 0x06, width: 2, value: UInt32(PCIStatusBit.receivedMasterAbort.mask))
        #expect(!config.status.contains(.receivedMasterAbort))
        #expect(config.status.contains(.signaledSystemError), "only the bits written as one clear")
        config.write(offset: 0x06, width: 2, value: 0xFFFF)
        #expect(config.status == [.devselMedium, .interruptStatus], "read-only bits survive all-ones")
        config.clearStatus(.interruptStatus)
        #expect(config.status == [.devselMedium])
    }

    @Test(arguments: [
        (offset: 0x00, width: 3), (offset: 0x00, width: 8), (offset: 0x00, width: 0), (offset: 0x01, width: 2),
        (offset: 0x02, width: 4), (offset: 0x06, width: 4), (offset: 0x100, width: 1), (offset: 0xFE, width: 4),
        (offset: -1, width: 1), (offset: -4, width: 4), (offset: Int.max, width: 4), (offset: Int.min, width: 2),
    ])
    func illegalAccessReadsAllOnes(offset: Int, width: Int) throws {
        let config = try makeConfig()
        #expect(config.read(offset: offset, width: width) == 0xFFFF_FFFF)
    }

    @Test(arguments: [
        (offset: 0x04, width: 3), (offset: 0x04, width: 8), (offset: 0x05, width: 2), (offset: 0x02, width: 4),
        (offset: 0x0E, width: 4), (offset: 0x100, width: 1), (offset: 0xFE, width: 4), (offset: -1, width: 1),
    ])
    func illegalAccessWritesNothing(offset: Int, width: Int) throws {
        let config = try makeConfig()
        let before = (0..<64).map { config.read(offset: 4 * $0, width: 4) }
        let generation = config.generation
        let change = config.write(offset: offset, width: width, value: 0xFFFF_FFFF)
        #expect(change.isEmpty)
        #expect((0..<64).map { config.read(offset: 4 * $0, width: 4) } == before)
        #expect(config.generation == generation)
    }

    @Test func capabilityListChaining() throws {
        let config = try makeConfig()
        #expect(!config.status.contains(.capabilitiesList))
        let first = try config.addCapability(id: 0x01, body: [0x22, 0xC8, 0x00, 0x00, 0x00, 0x00])
        #expect(config.status.contains(.capabilitiesList))
        #expect(first == 0x40)
        #expect(config.read(offset: 0x34, width: 1) == 0x40)
        let second = try config.addCapability(
            id: 0x11, body: [0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00],
            writableMask: [0xFF, 0xC0, 0, 0, 0, 0, 0, 0, 0, 0])
        #expect(second == 0x48, "next capability starts dword-aligned after the first")
        #expect(config.read(offset: first, width: 1) == 0x01)
        #expect(config.read(offset: first + 1, width: 1) == UInt32(second))
        #expect(config.read(offset: second, width: 1) == 0x11)
        #expect(config.read(offset: second + 1, width: 1) == 0, "the last capability ends the list")

        // Walk the list as a guest does, bounded by the number of dwords.
        var walked: [UInt32] = []
        var pointer = Int(config.read(offset: 0x34, width: 1))
        while pointer != 0, walked.count < 48 {
            walked.append(config.read(offset: pointer, width: 1))
            pointer = Int(config.read(offset: pointer + 1, width: 1))
        }
        #expect(walked == [0x01, 0x11])

        let change = config.write(offset: second + 2, width: 2, value: 0xFFFF)
        #expect(change == [.capability])
        #expect(config.read(offset: second + 2, width: 2) == 0xC0FF)
        config.write(offset: first + 2, width: 2, value: 0xFFFF)
        #expect(config.read(offset: first + 2, width: 2) == 0xC822, "body without a mask is read-only")
        config.write(offset: first, width: 2, value: 0)
        #expect(config.read(offset: first, width: 2) == 0x4801, "ID and next pointer are read-only")
    }

    @Test func capabilityErrors() throws {
        let config = try makeConfig()
        #expect(throws: PCIConfigError.self) { try config.addCapability(id: 0x09, body: [1, 2], writableMask: [1]) }
        #expect(throws: PCIConfigError.self) {
            try config.addCapability(id: 0x09, body: [UInt8](repeating: 0, count: 200))
        }
        #expect(!config.status.contains(.capabilitiesList), "failed additions change nothing")
    }

    @Test func resetRestoresPowerOnValues() throws {
        let config = try makeConfig()
        try config.addCapability(id: 0x11, body: [0, 0], writableMask: [0xFF, 0])
        let powerOn = (0..<64).map { config.read(offset: 4 * $0, width: 4) }
        config.write(offset: 0x04, width: 2, value: 0x7)
        config.write(offset: 0x10, width: 4, value: 0xFEBC_0000)
        config.write(offset: 0x3C, width: 1, value: 11)
        config.write(offset: 0x42, width: 1, value: 0x55)
        config.setStatus(.receivedMasterAbort)
        let generation = config.generation
        config.reset()
        #expect((0..<64).map { config.read(offset: 4 * $0, width: 4) } == powerOn)
        #expect(config.generation != generation)
        #expect(config.status.contains(.capabilitiesList), "capabilities survive reset")
    }

    @Test func memoryWindows() throws {
        let config = try makeConfig()
        config.write(offset: 0x10, width: 4, value: 0xFEBC_0000)
        config.write(offset: 0x14, width: 4, value: 0xC000)
        #expect(config.memoryWindows.isEmpty, "memory decoding is off")
        config.write(offset: 0x04, width: 2, value: 0x3)
        #expect(config.memoryWindows == [0xFEBC_0000..<0xFEBE_0000], "BAR 2 at address 0 is unmapped; I/O excluded")
        config.write(offset: 0x18, width: 4, value: 0x0000_0000)
        config.write(offset: 0x1C, width: 4, value: 0x0000_0002)
        #expect(config.memoryWindows == [0xFEBC_0000..<0xFEBE_0000, 0x2_0000_0000..<0x2_0000_4000])
        config.write(offset: 0x18, width: 4, value: 0xFFFF_FFFF)
        config.write(offset: 0x1C, width: 4, value: 0xFFFF_FFFF)
        #expect(config.memoryWindows.last == 0xFFFF_FFFF_FFFF_C000..<UInt64.max, "a window at the top never wraps")
        config.write(offset: 0x04, width: 2, value: 0x1)
        #expect(config.memoryWindows.isEmpty)
        #expect(config.decodes(bar: 1))
        #expect(!config.decodes(bar: 0))
        #expect(!config.decodes(bar: 3))
        #expect(!config.decodes(bar: 6))
    }

    @Test func generationTracksWindowChanges() throws {
        let config = try makeConfig()
        var generation = config.generation
        config.write(offset: 0x04, width: 2, value: 0x2)
        #expect(config.generation != generation, "command change")
        generation = config.generation
        config.write(offset: 0x10, width: 4, value: 0xFEBC_0000)
        #expect(config.generation != generation, "BAR move")
        generation = config.generation
        config.write(offset: 0x10, width: 4, value: 0xFEBC_0000)
        #expect(config.generation == generation, "a write that changes nothing")
        config.write(offset: 0x0C, width: 1, value: 0x10)
        #expect(config.generation == generation, "cache line size does not move a window")
        config.write(offset: 0x00, width: 4, value: 0)
        #expect(config.generation == generation, "read-only register")
    }

    @Test func impossibleLayoutsThrow() {
        let identity = PCIIdentity(vendorID: 1, deviceID: 2, revisionID: 0, subsystemVendorID: 1, subsystemID: 2)
        let bad: [[Int: BARLayout]] = [
            [0: BARLayout(.memory32(prefetchable: false), size: 0x3000)],
            [6: BARLayout(.io, size: 0x10)],
            [-1: BARLayout(.io, size: 0x10)],
            [0: BARLayout(.io, size: 0x200)],
            [0: BARLayout(.io, size: 2)],
            [0: BARLayout(.memory32(prefetchable: false), size: 8)],
            [5: BARLayout(.memory64(prefetchable: false), size: 0x1000)],
            [0: BARLayout(.memory64(prefetchable: false), size: 0x1000), 1: BARLayout(.io, size: 0x10)],
        ]
        for bars in bad {
            #expect(throws: PCIConfigError.self) { try PCIConfigSpace(identity: identity, bars: bars) }
        }
    }
}
