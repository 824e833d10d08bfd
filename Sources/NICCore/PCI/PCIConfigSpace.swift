/// What a config-space write changed, so the host can remap BARs and the device can react.
public typealias PCIConfigChange = RegisterBits<PCIConfigChangeBit>

/// The elements of ``PCIConfigChange``.
public enum PCIConfigChangeBit: UInt8, RegisterBit {
    /// The command register changed.
    case command = 0
    /// A BAR address changed.
    case barAddress
    /// A capability's writable bytes changed.
    case capability
}

/// A type-0 PCI configuration space of 256 bytes with per-byte writable and write-one-to-clear masks.
///
/// Every read and write is checked: an access whose width is not 1, 2 or 4, which is misaligned, or which runs past
/// the end reads all-ones and writes nothing.
public final class PCIConfigSpace {
    /// The size of the configuration space in bytes.
    public static let size = 256

    @exclusivity(unchecked) private var bytes: [UInt8]
    private var defaults: [UInt8]
    private var writable: [UInt8]
    private var writeOneToClear: [UInt8]
    private var capabilityTail = 0x34
    private var capabilityFree = 0x40

    /// The BAR layouts by slot (a 64-bit BAR occupies its slot; the next slot is `nil`).
    public let barLayouts: [BARLayout?]

    /// Bumped on every change that moves a memory window, so DMA checks can cache.
    @exclusivity(unchecked) public private(set) var generation: UInt64 = 0

    /// Creates the config space of a device with `identity` and `bars` keyed by slot (0...5).
    public init(identity: PCIIdentity, bars: [Int: BARLayout]) throws(PCIConfigError) {
        bytes = [UInt8](repeating: 0, count: Self.size)
        writable = [UInt8](repeating: 0, count: Self.size)
        writeOneToClear = [UInt8](repeating: 0, count: Self.size)
        defaults = []
        var layouts = [BARLayout?](repeating: nil, count: 6)
        for (slot, layout) in bars {
            guard (0..<6).contains(slot) else { throw PCIConfigError("BAR slot \(slot) is not 0...5") }
            guard layout.size.nonzeroBitCount == 1 else {
                throw PCIConfigError("BAR \(slot) size \(layout.size) is not a power of two")
            }
            switch layout.kind {
            case .io:
                guard layout.size >= 4, layout.size <= 256 else {
                    throw PCIConfigError("I/O BAR \(slot) size \(layout.size) is not 4...256")
                }
            case .memory32:
                guard layout.size >= 16, layout.size <= 1 << 31 else {
                    throw PCIConfigError("memory BAR \(slot) size \(layout.size) is not 16...2G")
                }
            case .memory64:
                guard slot < 5, bars[slot + 1] == nil else {
                    throw PCIConfigError("64-bit BAR \(slot) needs slot \(slot + 1) free")
                }
                guard layout.size >= 16 else { throw PCIConfigError("memory BAR \(slot) is smaller than 16") }
            }
            layouts[slot] = layout
        }
        barLayouts = layouts

        put16(0x00, identity.vendorID)
        put16(0x02, identity.deviceID)
        put16(0x06, identity.status.rawValue)
        bytes[0x08] = identity.revisionID
        bytes[0x09] = UInt8(truncatingIfNeeded: identity.classCode)
        bytes[0x0A] = UInt8(truncatingIfNeeded: identity.classCode >> 8)
        bytes[0x0B] = UInt8(truncatingIfNeeded: identity.classCode >> 16)
        put16(0x2C, identity.subsystemVendorID)
        put16(0x2E, identity.subsystemID)
        bytes[0x3D] = identity.interruptPin
        bytes[0x3E] = identity.minimumGrant
        bytes[0x3F] = identity.maximumLatency

        let command = identity.writableCommand.rawValue
        writable.store(littleEndian: command, at: 0x04)
        let w1c = PCIStatus.writeOneToClear.rawValue
        writeOneToClear.store(littleEndian: w1c, at: 0x06)
        writable[0x0C] = 0xFF  // cache line size
        writable[0x0D] = 0xFF  // latency timer
        writable[0x3C] = 0xFF  // interrupt line

        for (slot, layout) in layouts.enumerated() {
            guard let layout else { continue }
            let offset = 0x10 + 4 * slot
            switch layout.kind {
            case .io:
                bytes[offset] = 0x01
                putMask(offset, UInt32(truncatingIfNeeded: ~(layout.size - 1)) & 0xFFFF_FFFC)
            case .memory32(let prefetchable):
                bytes[offset] = prefetchable ? 0x08 : 0x00
                putMask(offset, UInt32(truncatingIfNeeded: ~(layout.size - 1)) & 0xFFFF_FFF0)
            case .memory64(let prefetchable):
                bytes[offset] = (prefetchable ? 0x08 : 0x00) | 0x04
                let mask = ~(layout.size - 1)
                putMask(offset, UInt32(truncatingIfNeeded: mask) & 0xFFFF_FFF0)
                putMask(offset + 4, UInt32(truncatingIfNeeded: mask >> 32))
            }
        }
        defaults = bytes
    }

    // MARK: Guest access

    /// Reads `width` bytes at `offset`, little-endian; all-ones for an illegal access.
    public func read(offset: Int, width: Int) -> UInt32 {
        guard Self.isLegal(offset: offset, width: width) else { return UInt32.max }
        var value: UInt32 = 0
        for i in 0..<width { value |= UInt32(bytes[offset + i]) << (8 * UInt32(i)) }
        return value
    }

    /// Writes `width` bytes of `value` at `offset` through the writable and write-one-to-clear masks.
    @discardableResult
    public func write(offset: Int, width: Int, value: UInt32) -> PCIConfigChange {
        guard Self.isLegal(offset: offset, width: width) else { return [] }
        var change: PCIConfigChange = []
        for i in 0..<width {
            let index = offset + i
            let incoming = UInt8(truncatingIfNeeded: value >> (8 * UInt32(i)))
            let old = bytes[index]
            var new = (old & ~writable[index]) | (incoming & writable[index])
            new &= ~(incoming & writeOneToClear[index])
            guard new != old else { continue }
            bytes[index] = new
            switch index {
            case 0x04, 0x05: change.insert(.command)
            case 0x10..<0x28: change.insert(.barAddress)
            case 0x40...: change.insert(.capability)
            default: break
            }
        }
        if !change.isDisjoint(with: [.command, .barAddress]) { generation &+= 1 }
        return change
    }

    private static func isLegal(offset: Int, width: Int) -> Bool {
        (width == 1 || width == 2 || width == 4) && offset >= 0 && offset % width == 0 && offset <= size - width
    }

    // MARK: Device-side view

    /// The command register.
    public var command: PCICommand { PCICommand(rawValue: get16(0x04)) }

    /// The status register.
    public var status: PCIStatus { PCIStatus(rawValue: get16(0x06)) }

    /// Sets status bits on the device's behalf (a received master abort, the interrupt status).
    public func setStatus(_ bits: PCIStatus) { put16(0x06, get16(0x06) | bits.rawValue) }

    /// Clears status bits on the device's behalf.
    public func clearStatus(_ bits: PCIStatus) { put16(0x06, get16(0x06) & ~bits.rawValue) }

    /// Sets one status bit on the device's behalf.
    @inline(__always)
    public func setStatus(_ bit: PCIStatusBit) { put16(0x06, get16(0x06) | bit.mask) }

    /// Clears one status bit on the device's behalf.
    @inline(__always)
    public func clearStatus(_ bit: PCIStatusBit) { put16(0x06, get16(0x06) & ~bit.mask) }

    /// The base address currently programmed into BAR `slot`, without its flag bits; 0 if none.
    public func barBase(_ slot: Int) -> UInt64 {
        guard (0..<6).contains(slot), let layout = barLayouts[slot] else { return 0 }
        let offset = 0x10 + 4 * slot
        let low = UInt64(read(offset: offset, width: 4))
        switch layout.kind {
        case .io: return low & ~0x3
        case .memory32: return low & ~0xF
        case .memory64:
            let high = UInt64(read(offset: offset + 4, width: 4))
            return (high << 32) | (low & ~0xF)
        }
    }

    /// Whether BAR `slot` exists and its address space is enabled in the command register.
    public func decodes(bar slot: Int) -> Bool {
        guard (0..<6).contains(slot), let layout = barLayouts[slot] else { return false }
        return command.contains(layout.isMemory ? .memorySpace : .ioSpace)
    }

    /// The size of BAR `slot`, or 0 if it does not exist.
    public func barSize(_ slot: Int) -> UInt64 {
        guard (0..<6).contains(slot), let layout = barLayouts[slot] else { return 0 }
        return layout.size
    }

    /// The guest-physical ranges the device's memory BARs decode now (a BAR at address 0 counts as unmapped).
    public var memoryWindows: [Range<UInt64>] {
        guard command.contains(.memorySpace) else { return [] }
        var windows: [Range<UInt64>] = []
        for (slot, layout) in barLayouts.enumerated() {
            guard let layout, layout.isMemory else { continue }
            let base = barBase(slot)
            guard base != 0 else { continue }
            let (end, overflow) = base.addingReportingOverflow(layout.size)
            windows.append(overflow ? base..<UInt64.max : base..<end)
        }
        return windows
    }

    /// Appends a capability with `id` and `body` (the bytes after the ID and next pointer) to the capability list,
    /// with `writableMask` over the body (all read-only if `nil`). Returns the capability's offset.
    @discardableResult
    public func addCapability(id: UInt8, body: [UInt8], writableMask: [UInt8]? = nil) throws(PCIConfigError) -> Int {
        let length = 2 + body.count
        let offset = (capabilityFree + 3) & ~3
        guard offset + length <= Self.size else { throw PCIConfigError("capability \(id) does not fit") }
        if let writableMask, writableMask.count != body.count {
            throw PCIConfigError("capability \(id) mask has \(writableMask.count) bytes for \(body.count)")
        }
        bytes[offset] = id
        bytes[offset + 1] = 0
        for (i, byte) in body.enumerated() {
            bytes[offset + 2 + i] = byte
            writable[offset + 2 + i] = writableMask?[i] ?? 0
        }
        bytes[capabilityTail] = UInt8(offset)
        capabilityTail = offset + 1
        capabilityFree = offset + length
        put16(0x06, get16(0x06) | PCIStatusBit.capabilitiesList.mask)
        defaults = bytes
        return offset
    }

    /// Stores `bytes` at `offset` on the device's behalf, past the writable masks (a capability's device-owned data
    /// register). Only the capability area (0x40 and up) can be stored this way; anything else is ignored.
    public func storeDeviceBytes(_ bytes: [UInt8], at offset: Int) {
        guard offset >= 0x40, offset <= Self.size - bytes.count else { return }
        for (i, byte) in bytes.enumerated() { self.bytes[offset + i] = byte }
    }

    /// Returns every register to its power-on value (PCI reset).
    public func reset() {
        bytes = defaults
        generation &+= 1
    }

    // MARK: Byte helpers

    private func get16(_ offset: Int) -> UInt16 { bytes.load(littleEndian: UInt16.self, at: offset) ?? 0 }

    private func put16(_ offset: Int, _ value: UInt16) { bytes.store(littleEndian: value, at: offset) }

    private func putMask(_ offset: Int, _ mask: UInt32) { writable.store(littleEndian: mask, at: offset) }
}
