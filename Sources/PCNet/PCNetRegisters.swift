import NICCore

/// CSR0, the controller status register: commands, interrupt flags and state.
enum CSR0: UInt16, RegisterBit {
    case initialize = 0
    case start, stop, transmitDemand, transmitOn, receiveOn, interruptEnable, interrupt, initializationDone
    case transmitInterrupt, receiveInterrupt, memoryError, missedFrame, collisionError, babble, error

    /// The interrupt flags a write of one clears (BABL CERR MISS MERR RINT TINT IDON).
    static let writeOneToClear: UInt16 = 0x7F00
    /// The flags that can raise INTR, each with a mask bit at the same position in CSR3.
    static let maskableSources: UInt16 = 0x5F00
    /// The flags summarised by ERR.
    static let errorSummary: UInt16 = 0x7800
}

/// CSR3 bits: interrupt masks and deferral control.
enum CSR3: UInt16, RegisterBit {
    case disableTransmitStopOnUnderflow = 6

    static let writable: UInt16 = 0x5F7C
}

/// CSR4 bits: test and features control.
enum CSR4: UInt16, RegisterBit {
    case transmitStart = 3
    case userInterrupt = 6
    case userInterruptCommand
    case missedFrameCounterOverflow = 9
    case autoPadTransmit = 11
    case disableTransmitPolling

    static let resetValue: UInt16 = 0x0115
    static let writeOneToClear: UInt16 = 0x026A
    /// Source/mask pairs: JAB/JABM, TXSTRT/TXSTRTM, RCVCCO/RCVCCOM, MFCO/MFCOM (source one bit above its mask).
    static let maskedSourcePairs: UInt16 = 0x0115
}

/// CSR5 bits: extended control and interrupt 1.
enum CSR5: UInt16, RegisterBit {
    case suspend = 0
    case lastTransmitInterruptEnable = 14
    case transmitOKInterruptDisable

    static let writeOneToClear: UInt16 = 0x0A90
    /// Source/enable pairs EXDINT/EXDINTE and MPINT/MPINTE (source one bit above its enable).
    static let enabledSourcePairs: UInt16 = 0x0048
    /// Source/enable pairs SINT/SINTE and SLPINT/SLPINTE.
    static let systemSourcePairs: UInt16 = 0x0500
}

/// CSR15 bits: the mode register.
enum CSR15: UInt16, RegisterBit {
    case disableReceive = 0
    case disableTransmit, loopback, disableTransmitFCS
    case internalLoopback = 6
    case disableReceivePhysical = 13
    case disableReceiveBroadcast, promiscuous
}

/// Status bits of a descriptor's 16-bit status word (TMD1/RMD1 bits 31:16 in the 32-bit styles).
enum DescriptorStatus: UInt16, RegisterBit {
    case broadcastAddressMatch = 4
    case logicalAddressMatch, physicalAddressMatch
    case endOfPacket = 8
    case startOfPacket, bufferError, crcError, overflow
    // Receive only.
    case framingError, error, own
}

/// Status bits only a transmit descriptor has (TMD1); the others are ``DescriptorStatus``'s.
enum TransmitDescriptorStatus: UInt16, RegisterBit {
    case lastTransmitInterrupt = 12
    case addFCS
}

/// TMD2 bits (the transmit descriptor's error word; the 16-bit style keeps its upper half).
enum TransmitErrors: UInt32, RegisterBit {
    case lossOfCarrier = 27
    case underflow = 30
    case bufferError
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
