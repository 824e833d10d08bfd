/// The PCI command register (config offset 0x04).
public struct PCICommand: OptionSet, Hashable, Sendable {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    /// The device responds to I/O space accesses.
    public static let ioSpace = PCICommand(rawValue: 1 << 0)
    /// The device responds to memory space accesses.
    public static let memorySpace = PCICommand(rawValue: 1 << 1)
    /// The device may master the bus (DMA).
    public static let busMaster = PCICommand(rawValue: 1 << 2)
    /// Memory write and invalidate.
    public static let memoryWriteInvalidate = PCICommand(rawValue: 1 << 4)
    /// Parity error response.
    public static let parityErrorResponse = PCICommand(rawValue: 1 << 6)
    /// SERR# enable.
    public static let serrEnable = PCICommand(rawValue: 1 << 8)
    /// INTx emulation disabled (PCI 2.3).
    public static let interruptDisable = PCICommand(rawValue: 1 << 10)
}

/// The PCI status register (config offset 0x06).
public struct PCIStatus: OptionSet, Hashable, Sendable {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    /// The device's INTx line is asserted internally (PCI 2.3).
    public static let interruptStatus = PCIStatus(rawValue: 1 << 3)
    /// A capabilities list starts at config offset 0x34.
    public static let capabilitiesList = PCIStatus(rawValue: 1 << 4)
    /// Fast back-to-back capable.
    public static let fastBackToBack = PCIStatus(rawValue: 1 << 7)
    /// DEVSEL timing: medium.
    public static let devselMedium = PCIStatus(rawValue: 1 << 9)
    /// A master data parity error was detected.
    public static let masterDataParityError = PCIStatus(rawValue: 1 << 8)
    /// The device signalled a target abort.
    public static let signaledTargetAbort = PCIStatus(rawValue: 1 << 11)
    /// The device, as bus master, received a target abort.
    public static let receivedTargetAbort = PCIStatus(rawValue: 1 << 12)
    /// The device, as bus master, received a master abort (its DMA went nowhere).
    public static let receivedMasterAbort = PCIStatus(rawValue: 1 << 13)
    /// The device signalled SERR#.
    public static let signaledSystemError = PCIStatus(rawValue: 1 << 14)
    /// The device detected a parity error.
    public static let detectedParityError = PCIStatus(rawValue: 1 << 15)

    /// The bits a write of one clears.
    public static let writeOneToClear: PCIStatus = [
        .masterDataParityError, .signaledTargetAbort, .receivedTargetAbort, .receivedMasterAbort,
        .signaledSystemError, .detectedParityError,
    ]
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
