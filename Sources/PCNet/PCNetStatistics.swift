import NICCore

/// What the card counted: every drop path has a counter.
struct PCNetStatistics {
    var transmittedFrames: UInt64 = 0
    var transmittedBytes: UInt64 = 0
    var transmitDroppedLinkDown: UInt64 = 0
    var transmitDroppedOversize: UInt64 = 0
    var transmitDroppedRunt: UInt64 = 0
    var transmitUnderflows: UInt64 = 0
    var transmitChainErrors: UInt64 = 0
    var receivedFrames: UInt64 = 0
    var receivedBytes: UInt64 = 0
    var receiveMissed: UInt64 = 0
    var receiveDroppedOversize: UInt64 = 0
    var receiveDroppedRunt: UInt64 = 0
    var receiveDroppedStopped: UInt64 = 0
    var receiveDroppedLinkDown: UInt64 = 0
    var receiveDroppedLoopbackMode: UInt64 = 0
    var receiveFiltered: UInt64 = 0
    var receiveBufferErrors: UInt64 = 0
    var receiveCRCErrors: UInt64 = 0
    var loopbackFrames: UInt64 = 0
    var loopbackDropped: UInt64 = 0

    var counters: [Counter] {
        [
            Counter("tx_frames", transmittedFrames),
            Counter("tx_bytes", transmittedBytes),
            Counter("tx_dropped_link_down", transmitDroppedLinkDown),
            Counter("tx_dropped_oversize", transmitDroppedOversize),
            Counter("tx_dropped_runt", transmitDroppedRunt),
            Counter("tx_underflows", transmitUnderflows),
            Counter("tx_chain_errors", transmitChainErrors),
            Counter("rx_frames", receivedFrames),
            Counter("rx_bytes", receivedBytes),
            Counter("rx_missed", receiveMissed),
            Counter("rx_dropped_oversize", receiveDroppedOversize),
            Counter("rx_dropped_runt", receiveDroppedRunt),
            Counter("rx_dropped_stopped", receiveDroppedStopped),
            Counter("rx_dropped_link_down", receiveDroppedLinkDown),
            Counter("rx_dropped_loopback_mode", receiveDroppedLoopbackMode),
            Counter("rx_filtered", receiveFiltered),
            Counter("rx_buffer_errors", receiveBufferErrors),
            Counter("rx_crc_errors", receiveCRCErrors),
            Counter("loopback_frames", loopbackFrames),
            Counter("loopback_dropped", loopbackDropped),
        ]
    }
}
