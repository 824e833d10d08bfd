/// The PCI command register (config offset 0x04).
public typealias PCICommand = RegisterBits<PCICommandBit>

/// The bits of ``PCICommand``.
public enum PCICommandBit: UInt16, RegisterBit {
    /// The device responds to I/O space accesses.
    case ioSpace = 0
    /// The device responds to memory space accesses.
    case memorySpace
    /// The device may master the bus (DMA).
    case busMaster
    /// Memory write and invalidate.
    case memoryWriteInvalidate = 4
    /// Parity error response.
    case parityErrorResponse = 6
    /// SERR# enable.
    case serrEnable = 8
    /// INTx emulation disabled (PCI 2.3).
    case interruptDisable = 10
}

/// The PCI status register (config offset 0x06).
public typealias PCIStatus = RegisterBits<PCIStatusBit>

/// The bits of ``PCIStatus``.
public enum PCIStatusBit: UInt16, RegisterBit {
    /// The device's INTx line is asserted internally (PCI 2.3).
    case interruptStatus = 3
    /// A capabilities list starts at config offset 0x34.
    case capabilitiesList
    /// Fast back-to-back capable.
    case fastBackToBack = 7
    /// A master data parity error was detected.
    case masterDataParityError
    /// DEVSEL timing: medium.
    case devselMedium
    /// The device signalled a target abort.
    case signaledTargetAbort = 11
    /// The device, as bus master, received a target abort.
    case receivedTargetAbort
    /// The device, as bus master, received a master abort (its DMA went nowhere).
    case receivedMasterAbort
    /// The device signalled SERR#.
    case signaledSystemError
    /// The device detected a parity error.
    case detectedParityError
}

extension RegisterBits where Bit == PCIStatusBit {
    /// The bits a write of one clears.
    public static var writeOneToClear: Self {
        [
            .masterDataParityError, .signaledTargetAbort, .receivedTargetAbort, .receivedMasterAbort,
            .signaledSystemError, .detectedParityError,
        ]
    }
}

/// What a device's config space says about it before the guest writes anything.
public struct PCIIdentity: Hashable, Sendable {
    public var vendorID: UInt16
    public var deviceID: UInt16
    public var revisionID: UInt8
    /// Class code, subclass and programming interface as one 24-bit value (0x020000 is an Ethernet controller).
    public var classCode: UInt32
    public var subsystemVendorID: UInt16
    public var subsystemID: UInt16
    /// 1 for INTA#, 0 for no INTx pin.
    public var interruptPin: UInt8
    public var minimumGrant: UInt8
    public var maximumLatency: UInt8
    /// Read-only status bits the device reports (DEVSEL timing, fast back-to-back).
    public var status: PCIStatus
    /// The command bits the guest may set.
    public var writableCommand: PCICommand

    public init(
        vendorID: UInt16, deviceID: UInt16, revisionID: UInt8, classCode: UInt32 = 0x02_0000,
        subsystemVendorID: UInt16, subsystemID: UInt16, interruptPin: UInt8 = 1, minimumGrant: UInt8 = 0,
        maximumLatency: UInt8 = 0, status: PCIStatus = [.devselMedium],
        writableCommand: PCICommand = [.ioSpace, .memorySpace, .busMaster, .parityErrorResponse, .serrEnable]
    ) {
        self.vendorID = vendorID
        self.deviceID = deviceID
        self.revisionID = revisionID
        self.classCode = classCode
        self.subsystemVendorID = subsystemVendorID
        self.subsystemID = subsystemID
        self.interruptPin = interruptPin
        self.minimumGrant = minimumGrant
        self.maximumLatency = maximumLatency
        self.status = status
        self.writableCommand = writableCommand
    }
}

/// The kind and size of one base address register.
public struct BARLayout: Hashable, Sendable {
    /// The address space a BAR decodes.
    public enum Kind: Hashable, Sendable {
        /// I/O space.
        case io
        /// 32-bit memory space.
        case memory32(prefetchable: Bool)
        /// 64-bit memory space; takes this BAR slot and the next.
        case memory64(prefetchable: Bool)
    }

    public var kind: Kind
    /// The size in bytes, a power of two (at least 4 for I/O, 16 for memory).
    public var size: UInt64

    public init(_ kind: Kind, size: UInt64) {
        self.kind = kind
        self.size = size
    }

    /// Whether the BAR decodes memory space.
    public var isMemory: Bool {
        if case .io = kind { return false }
        return true
    }
}

/// A configuration error: the host described an impossible device.
public struct PCIConfigError: Error, Hashable, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
