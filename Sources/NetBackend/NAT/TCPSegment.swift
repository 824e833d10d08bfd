import NICCore

/// A parsed TCP segment from the guest.
struct TCPSegment {
    var sourcePort: UInt16
    var destinationPort: UInt16
    var sequence: UInt32
    var acknowledgment: UInt32
    var flags: TCPFlags
    var window: UInt16
    var mss: Int?
    var windowShift: UInt8?
    var payload: [UInt8]

    func has(_ flag: TCPFlags) -> Bool { flags.contains(flag) }

    /// A segment with no options or payload (for answering a SYN that never made a flow).
    init(sourcePort: UInt16, destinationPort: UInt16, sequence: UInt32, flags: TCPFlags) {
        self.sourcePort = sourcePort
        self.destinationPort = destinationPort
        self.sequence = sequence
        acknowledgment = 0
        self.flags = flags
        window = 0
        payload = []
    }

    /// Parses `segment`; `nil` when the header or its options are malformed.
    init?(_ segment: [UInt8]) {
        guard let parsed = segment.withUnsafeBytes({ raw in TCPHeader(raw).flatMap(TCPSegment.init(header:)) }) else {
            return nil
        }
        self = parsed
    }

    /// The segment `tcp` heads; `nil` when its options are malformed.
    private init?(header tcp: TCPHeader) {
        sourcePort = tcp.sourcePort
        destinationPort = tcp.destinationPort
        sequence = tcp.sequenceNumber
        acknowledgment = tcp.acknowledgmentNumber
        flags = tcp.flags
        window = tcp.window
        payload = Array(tcp.bytes[tcp.headerLength...])
        let options = tcp.options
        var index = 0
        // Each pass consumes at least one byte.
        while index < options.count {
            let kind = options[index]
            if kind == 0 { break }
            if kind == 1 {
                index += 1
                continue
            }
            guard index + 1 < options.count else { return nil }
            let length = Int(options[index + 1])
            guard length >= 2, index + length <= options.count else { return nil }
            if kind == 2, length == 4 { mss = options.load(bigEndian: UInt16.self, at: index + 2).map(Int.init) }
            if kind == 3, length == 3 { windowShift = min(14, options[index + 2]) }
            index += length
        }
    }
}
