/// CSR0, the controller status register: commands, interrupt flags and state.
struct CSR0: OptionSet {
    var rawValue: UInt16

    static let initialize = CSR0(rawValue: 1 << 0)
    static let start = CSR0(rawValue: 1 << 1)
    static let stop = CSR0(rawValue: 1 << 2)
    static let transmitDemand = CSR0(rawValue: 1 << 3)
    static let transmitOn = CSR0(rawValue: 1 << 4)
    static let receiveOn = CSR0(rawValue: 1 << 5)
    static let interruptEnable = CSR0(rawValue: 1 << 6)
    static let interrupt = CSR0(rawValue: 1 << 7)
    static let initializationDone = CSR0(rawValue: 1 << 8)
    static let transmitInterrupt = CSR0(rawValue: 1 << 9)
    static let receiveInterrupt = CSR0(rawValue: 1 << 10)
    static let memoryError = CSR0(rawValue: 1 << 11)
    static let missedFrame = CSR0(rawValue: 1 << 12)
    static let collisionError = CSR0(rawValue: 1 << 13)
    static let babble = CSR0(rawValue: 1 << 14)
    static let error = CSR0(rawValue: 1 << 15)

    /// The interrupt flags a write of one clears (BABL CERR MISS MERR RINT TINT IDON).
    static let writeOneToClear = CSR0(rawValue: 0x7F00)
    /// The flags that can raise INTR, each with a mask bit at the same position in CSR3.
    static let maskableSources = CSR0(rawValue: 0x5F00)
    /// The flags summarised by ERR.
    static let errorSummary = CSR0(rawValue: 0x7800)
}

/// CSR3 bits: interrupt masks and deferral control.
enum CSR3 {
    static let writable: UInt16 = 0x5F7C
    static let disableTransmitStopOnUnderflow: UInt16 = 1 << 6
}

/// CSR4 bits: test and features control.
enum CSR4 {
    static let resetValue: UInt16 = 0x0115
    static let writeOneToClear: UInt16 = 0x026A
    static let userInterruptCommand: UInt16 = 1 << 7
    static let userInterrupt: UInt16 = 1 << 6
    static let missedFrameCounterOverflow: UInt16 = 1 << 9
    static let transmitStart: UInt16 = 1 << 3
    static let autoPadTransmit: UInt16 = 1 << 11
    static let disableTransmitPolling: UInt16 = 1 << 12
    /// Source/mask pairs: JAB/JABM, TXSTRT/TXSTRTM, RCVCCO/RCVCCOM, MFCO/MFCOM (source one bit above its mask).
    static let maskedSourcePairs: UInt16 = 0x0115
}

/// CSR5 bits: extended control and interrupt 1.
enum CSR5 {
    static let writeOneToClear: UInt16 = 0x0A90
    static let suspend: UInt16 = 1 << 0
    static let lastTransmitInterruptEnable: UInt16 = 1 << 14
    static let transmitOKInterruptDisable: UInt16 = 1 << 15
    /// Source/enable pairs EXDINT/EXDINTE and MPINT/MPINTE (source one bit above its enable).
    static let enabledSourcePairs: UInt16 = 0x0048
    /// Source/enable pairs SINT/SINTE and SLPINT/SLPINTE.
    static let systemSourcePairs: UInt16 = 0x0500
}

/// CSR15 bits: the mode register.
enum CSR15 {
    static let disableReceive: UInt16 = 1 << 0
    static let disableTransmit: UInt16 = 1 << 1
    static let loopback: UInt16 = 1 << 2
    static let disableTransmitFCS: UInt16 = 1 << 3
    static let internalLoopback: UInt16 = 1 << 6
    static let disableReceivePhysical: UInt16 = 1 << 13
    static let disableReceiveBroadcast: UInt16 = 1 << 14
    static let promiscuous: UInt16 = 1 << 15
}

/// Status bits of a descriptor's 16-bit status word (TMD1/RMD1 bits 31:16 in the 32-bit styles).
enum DescriptorStatus {
    static let own: UInt16 = 1 << 15
    static let error: UInt16 = 1 << 14
    static let startOfPacket: UInt16 = 1 << 9
    static let endOfPacket: UInt16 = 1 << 8

    // Transmit only.
    static let addFCS: UInt16 = 1 << 13
    static let lastTransmitInterrupt: UInt16 = 1 << 12

    // Receive only.
    static let framingError: UInt16 = 1 << 13
    static let overflow: UInt16 = 1 << 12
    static let crcError: UInt16 = 1 << 11
    static let bufferError: UInt16 = 1 << 10
    static let physicalAddressMatch: UInt16 = 1 << 6
    static let logicalAddressMatch: UInt16 = 1 << 5
    static let broadcastAddressMatch: UInt16 = 1 << 4
}

/// TMD2 bits (the transmit descriptor's error word; the 16-bit style keeps its upper half).
enum TransmitErrors {
    static let bufferError: UInt32 = 1 << 31
    static let underflow: UInt32 = 1 << 30
    static let lossOfCarrier: UInt32 = 1 << 27
}

/// Frame-size limits of the PCnet chips.
enum FrameLimits {
    /// The largest frame (without FCS) either path accepts; longer ones are dropped and counted.
    static let maximum = 1518
    /// The minimum frame (without FCS) on the wire; shorter received frames are padded.
    static let minimum = 60
    /// Frames shorter than an Ethernet header are dropped.
    static let header = 14
}
