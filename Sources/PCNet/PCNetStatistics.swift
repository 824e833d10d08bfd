import NICCore

/// What the card counted: every drop path has a counter.
typealias PCNetStatistics = CounterTable<PCNetCounter, 20>

/// The counters of ``PCNetStatistics``, in report order.
enum PCNetCounter: Int, CounterKey {
    case transmittedFrames, transmittedBytes, transmitDroppedLinkDown, transmitDroppedOversize, transmitDroppedRunt,
        transmitUnderflows, transmitChainErrors, receivedFrames, receivedBytes, receiveMissed,
        receiveDroppedOversize, receiveDroppedRunt, receiveDroppedStopped, receiveDroppedLinkDown,
        receiveDroppedLoopbackMode, receiveFiltered, receiveBufferErrors, receiveCRCErrors, loopbackFrames,
        loopbackDropped

    static let names = [
        "tx_frames", "tx_bytes", "tx_dropped_link_down", "tx_dropped_oversize", "tx_dropped_runt", "tx_underflows",
        "tx_chain_errors", "rx_frames", "rx_bytes", "rx_missed", "rx_dropped_oversize", "rx_dropped_runt",
        "rx_dropped_stopped", "rx_dropped_link_down", "rx_dropped_loopback_mode", "rx_filtered", "rx_buffer_errors",
        "rx_crc_errors", "loopback_frames", "loopback_dropped",
    ]
}
