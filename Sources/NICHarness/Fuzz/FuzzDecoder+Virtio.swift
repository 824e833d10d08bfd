import NICCore
import NICTrace
import VirtioNet

/// What the last virtio bring-up macro chose, so later descriptor and index operations land in its rings.
struct VirtioFuzzState {
    var legacy = false
    var packed = false
    /// Entries per data queue (the control queue has its own size).
    var size = 256
    var controlSize = 64
    var controlIndex = 2
}

/// virtio-net's fuzz operations: both transports (the legacy I/O header in BAR0, the modern structures in BAR4),
/// MSI-X table writes, a bring-up macro for split or packed rings over either transport, descriptors, avail and used
/// index pokes with notifies, event suppression, and control-queue commands.
extension FuzzDecoder {
    /// Where the bring-up macro puts the receive, transmit and control rings in fuzz RAM (4096-aligned, room for 256
    /// split entries each), and the control command buffers.
    static let virtioRings: [UInt64] = [0x1000, 0x4000, 0x7000]
    static let virtioControlBuffer: UInt64 = 0xA000
    /// Modern offsets a random offset is drawn from half of the time: common config fields, ISR, device config,
    /// the first notify addresses.
    static let virtioModernOffsets: [UInt64] =
        [
            0x00, 0x04, 0x08, 0x0C, 0x10, 0x12, 0x14, 0x15, 0x16, 0x18, 0x1A, 0x1C, 0x1E, 0x20, 0x24, 0x28, 0x2C, 0x30,
            0x34,
        ]
        + [0x1000, 0x2000, 0x2006, 0x2008, 0x200A, 0x3000, 0x3004, 0x3008, 0x300C]
    /// The MSI-X capability's offset in config space, found once by walking a card's capability list.
    static let virtioMSIXCapability: Int = {
        guard let ram = try? GuestRAM(size: 4096) else { return 0x40 }
        let card = VirtioNetCard(
            macAddress: MACAddress(rawValue: 0x5254_0012_3456),
            environment: CardEnvironment(
                memory: ram, interruptLine: RecordingInterruptLine(), msix: RecordingMSIX(), clock: ManualClock()))
        var pointer = Int(card.configRead(offset: 0x34, width: 1))
        for _ in 0..<48 where pointer >= 0x40 {
            if card.configRead(offset: pointer, width: 1) == 0x11 { return pointer }
            pointer = Int(card.configRead(offset: pointer + 1, width: 1)) & 0xFC
        }
        return 0x40
    }()

    private func modern(_ offset: UInt64, _ width: Int, _ value: UInt64) -> TraceOperation {
        .barWrite(.memory, bar: 4, offset: offset, width: width, value: value & mask(width))
    }

    private func legacy(_ offset: UInt64, _ width: Int, _ value: UInt64) -> TraceOperation {
        .barWrite(.io, bar: 0, offset: offset, width: width, value: value & mask(width))
    }

    private static func le(_ value: UInt64, _ count: Int) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: value >> (8 * UInt64($0))) }
    }

    mutating func virtioOperation(_ opcode: UInt8) -> [TraceOperation]? {
        switch opcode % 14 {
        case 2:
            guard let selector = byte(), let raw = word(2), let width = width(), let value = word(4) else { return nil }
            let offset =
                selector & 1 == 0
                ? Self.virtioModernOffsets[Int(raw) % Self.virtioModernOffsets.count] : UInt64(raw) & 0x3FFF
            return [modern(offset & ~UInt64(width - 1), width, value)]
        case 3:
            guard let offset = byte(), let width = width(), let value = word(4) else { return nil }
            return [legacy(UInt64(offset & 0x3F) & ~UInt64(width - 1), width, value)]
        case 4:
            guard let selector = byte(), let raw = word(2), let width = width() else { return nil }
            switch selector % 3 {
            case 0:
                return [
                    .barRead(.io, bar: 0, offset: UInt64(raw & 0x3F) & ~UInt64(width - 1), width: width, expect: .none)
                ]
            case 1:
                let offset =
                    selector & 4 == 0
                    ? Self.virtioModernOffsets[Int(raw) % Self.virtioModernOffsets.count] : UInt64(raw) & 0x3FFF
                return [.barRead(.memory, bar: 4, offset: offset & ~UInt64(width - 1), width: width, expect: .none)]
            default:
                return [
                    .barRead(
                        .memory, bar: 1, offset: UInt64(raw & 0xFFF) & ~UInt64(width - 1), width: width, expect: .none)
                ]
            }
        case 5:
            // An MSI-X table entry word (or the PBA), or the capability's message control (enable, function mask).
            guard let selector = byte(), let value = word(4) else { return nil }
            if selector & 0x80 != 0 {
                return [
                    .configWrite(
                        offset: Self.virtioMSIXCapability + 2, width: 2,
                        value: UInt64(selector & 0x40) << 9 | value & 0x4000)
                ]
            }
            let offset = UInt64(selector & 0x3F) * 4 + (selector & 0x40 == 0 ? 0 : 0x800)
            return [.barWrite(.memory, bar: 1, offset: offset, width: 4, value: value & 0xFFFF_FFFF)]
        case 10:
            return virtioBringUp()
        case 11:
            return virtioDescriptor()
        case 12:
            return virtioIndexPoke()
        default:
            return virtioControlCommand()
        }
    }

    /// The areas of ring `which` (0 receive, 1 transmit, 2 control) as the last bring-up laid them out.
    private func virtioAreas(_ which: Int) -> (descriptor: UInt64, driver: UInt64, device: UInt64, size: Int) {
        let size = which == 2 ? virtio.controlSize : virtio.size
        let areas = VirtioDriverQueue.areas(base: Self.virtioRings[which], size: size, packed: virtio.packed)
        return (areas.descriptor, areas.driver, areas.device, size)
    }

    private func virtioQueueIndex(_ which: Int) -> Int { which == 2 ? virtio.controlIndex : which }

    private func virtioNotify(_ which: Int) -> TraceOperation {
        let queue = UInt64(virtioQueueIndex(which))
        return virtio.legacy ? legacy(0x10, 2, queue) : modern(0x3000 + 4 * queue, 2, queue)
    }

    /// Enable the function, reset, ACKNOWLEDGE | DRIVER, fuzzer-chosen features (with VERSION_1 and, when asked, the
    /// packed ring on the modern interface), FEATURES_OK, MSI-X when asked, the three queues (sizes chosen by the
    /// fuzzer on the modern interface), DRIVER_OK: a running device in one opcode.
    private mutating func virtioBringUp() -> [TraceOperation]? {
        guard let flags = byte(), let featureBits = word(4) else { return nil }
        let legacyInterface = flags & 1 != 0
        let packed = !legacyInterface && flags & 2 != 0
        let withMSIX = flags & 4 != 0
        var features = VirtioFeatures(rawValue: featureBits).union([.mac, .status, .controlQueue])
        if !legacyInterface { features.insert(.version1) }
        if packed { features.insert(.packedRing) }
        let sizeLog = Int(flags >> 4) % 9
        virtio = VirtioFuzzState(
            legacy: legacyInterface, packed: packed, size: legacyInterface ? 256 : 1 << sizeLog,
            controlSize: legacyInterface ? 64 : max(1, (1 << sizeLog) / 4), controlIndex: 2)
        var operations: [TraceOperation] = [
            .configWrite(offset: 0x10, width: 4, value: 0xC001),
            .configWrite(offset: 0x14, width: 4, value: 0xFEBF_0000),
            .configWrite(offset: 0x20, width: 4, value: 0xFE00_0000),
            .configWrite(offset: 0x24, width: 4, value: 0),
            .configWrite(offset: 4, width: 2, value: 0x0007),
        ]
        if withMSIX {
            for vector in 0..<4 {
                let entry = UInt64(16 * vector)
                operations += [
                    .barWrite(.memory, bar: 1, offset: entry, width: 4, value: 0xFEE0_0000),
                    .barWrite(.memory, bar: 1, offset: entry + 8, width: 4, value: UInt64(vector)),
                    .barWrite(.memory, bar: 1, offset: entry + 12, width: 4, value: 0),
                ]
            }
            operations.append(.configWrite(offset: Self.virtioMSIXCapability + 2, width: 2, value: 0x8000))
        }
        if legacyInterface {
            operations += [legacy(0x12, 1, 0), legacy(0x12, 1, 3), legacy(0x04, 4, features.rawValue)]
            if withMSIX { operations.append(legacy(0x14, 2, 0)) }
            for which in 0..<3 {
                operations.append(legacy(0x0E, 2, UInt64(virtioQueueIndex(which))))
                if withMSIX { operations.append(legacy(0x16, 2, UInt64(which + 1))) }
                operations.append(legacy(0x08, 4, Self.virtioRings[which] >> 12))
            }
            operations.append(legacy(0x12, 1, 7))
            return operations
        }
        operations += [modern(0x14, 1, 0), modern(0x14, 1, 3)]
        for select in 0..<2 {
            operations += [
                modern(0x08, 4, UInt64(select)), modern(0x0C, 4, features.rawValue >> (32 * UInt64(select))),
            ]
        }
        operations.append(modern(0x14, 1, 0x0B))
        if withMSIX { operations.append(modern(0x10, 2, 0)) }
        for which in 0..<3 {
            let areas = virtioAreas(which)
            operations += [modern(0x16, 2, UInt64(virtioQueueIndex(which))), modern(0x18, 2, UInt64(areas.size))]
            if withMSIX { operations.append(modern(0x1A, 2, UInt64(which + 1))) }
            for (offset, address) in [(UInt64(0x20), areas.descriptor), (0x28, areas.driver), (0x30, areas.device)] {
                operations += [modern(offset, 4, address), modern(offset + 4, 4, 0)]
            }
            operations.append(modern(0x1C, 2, 1))
        }
        operations.append(modern(0x14, 1, 0x0F))
        return operations
    }

    /// A 16-byte descriptor in one of the rings: fuzzer-chosen buffer, length and the two 16-bit words (split:
    /// flags and next; packed: buffer ID and flags, the AVAIL/USED bits often matching the first lap).
    private mutating func virtioDescriptor() -> [TraceOperation]? {
        guard let which = byte(), let index = byte(), let buffer = address(), let length = word(2),
            let first = word(2), let second = word(2)
        else { return nil }
        let ring = Int(which % 3)
        let areas = virtioAreas(ring)
        var flags = second
        if virtio.packed, which & 0x80 == 0 { flags = flags & ~0x8080 | 0x0080 }
        if ring == 0, which & 0x40 == 0 { flags |= 0x0002 }
        let body =
            Self.le(buffer, 8) + Self.le(length, 4) + Self.le(virtio.packed ? first : flags, 2)
            + Self.le(virtio.packed ? flags : first % UInt64(max(1, areas.size)), 2)
        return [.memoryWrite(address: areas.descriptor + 16 * (UInt64(index) % UInt64(areas.size)), bytes: body)]
    }

    /// An index operation on one ring, then (usually) its notify: an avail entry and the avail index (split), the
    /// used index or the device's event area, the driver's flags or event suppression, or a bare notify.
    private mutating func virtioIndexPoke() -> [TraceOperation]? {
        guard let which = byte(), let slot = byte(), let value = word(2) else { return nil }
        let ring = Int(which % 3)
        let areas = virtioAreas(ring)
        var operations: [TraceOperation] = []
        switch which >> 2 & 3 {
        case 0:
            if !virtio.packed {
                operations.append(
                    .memoryWrite(
                        address: areas.driver + 4 + 2 * (UInt64(slot) % UInt64(areas.size)),
                        bytes: Self.le(UInt64(slot) % UInt64(areas.size), 2)))
            }
            operations.append(.memoryWrite(address: areas.driver + 2, bytes: Self.le(value, 2)))
        case 1:
            operations.append(.memoryWrite(address: areas.device + 2, bytes: Self.le(value, 2)))
        case 2:
            operations.append(.memoryWrite(address: areas.driver, bytes: Self.le(value, 4)))
        default:
            break
        }
        if which & 0x80 == 0 { operations.append(virtioNotify(ring)) }
        return operations
    }

    /// A control command: class, command and fuzzer data in the control buffer, a header / data / ack chain at the
    /// start of the control ring (split or packed as brought up), made available and notified.
    private mutating func virtioControlCommand() -> [TraceOperation]? {
        guard let classID = byte(), let command = byte(), let availIndex = byte(), let data = data(maximum: 80) else {
            return nil
        }
        let areas = virtioAreas(2)
        let header = Self.virtioControlBuffer
        let payload = header + 0x10
        let ack = header + 0x100
        let buffers: [(UInt64, Int, Bool)] = [(header, 2, false), (payload, data.count, false), (ack, 1, true)]
        var operations: [TraceOperation] = [
            .memoryWrite(address: header, bytes: [classID % 8, command % 8]),
            .memoryWrite(address: payload, bytes: data),
        ]
        for (position, (address, length, writable)) in buffers.enumerated() {
            let slot = UInt64(position % areas.size)
            let last = position == buffers.count - 1
            let flags = UInt64(last ? 0 : 1) | (writable ? 2 : 0)
            let body: [UInt8]
            if virtio.packed {
                body = Self.le(address, 8) + Self.le(UInt64(length), 4) + Self.le(0, 2) + Self.le(flags | 0x0080, 2)
            } else {
                body = Self.le(address, 8) + Self.le(UInt64(length), 4) + Self.le(flags, 2) + Self.le(slot + 1, 2)
            }
            operations.append(.memoryWrite(address: areas.descriptor + 16 * slot, bytes: body))
        }
        if !virtio.packed {
            operations.append(.memoryWrite(address: areas.driver + 4, bytes: Self.le(0, 2)))
            operations.append(.memoryWrite(address: areas.driver + 2, bytes: Self.le(UInt64(availIndex), 2)))
        }
        operations.append(virtioNotify(2))
        return operations
    }
}
