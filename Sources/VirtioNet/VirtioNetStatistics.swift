import NICCore

/// What one queue pair counted (owned by the pair's thread).
public struct VirtioQueuePairStatistics: Hashable, Sendable {
    public var transmittedFrames: UInt64 = 0
    public var transmittedBytes: UInt64 = 0
    public var transmitChains: UInt64 = 0
    public var transmitDroppedLinkDown: UInt64 = 0
    public var transmitDroppedShortHeader: UInt64 = 0
    public var transmitDroppedRunt: UInt64 = 0
    public var transmitDroppedOversize: UInt64 = 0
    public var transmitDroppedBadGSO: UInt64 = 0
    public var transmitDroppedBadChecksum: UInt64 = 0
    public var transmitDroppedUnfinishable: UInt64 = 0
    public var transmitOffloadPassed: UInt64 = 0
    public var transmitSoftwareFinished: UInt64 = 0
    public var transmitBudgetExhausted: UInt64 = 0
    public var receivedFrames: UInt64 = 0
    public var receivedBytes: UInt64 = 0
    public var receiveDroppedTooLarge: UInt64 = 0
    public var receiveDroppedRunt: UInt64 = 0
    public var receiveDroppedBacklogFull: UInt64 = 0
    public var receiveDroppedNoBuffers: UInt64 = 0
    public var receiveDroppedUnfinishable: UInt64 = 0
    public var receiveDroppedNotReady: UInt64 = 0
    public var receiveStalls: UInt64 = 0
    public var receiveMergedBuffers: UInt64 = 0
    public var receiveGSOToGuest: UInt64 = 0
    public var receivePartialChecksumToGuest: UInt64 = 0
    public var receiveSoftwareFinished: UInt64 = 0
    public var interruptsSent: UInt64 = 0
    public var interruptsSuppressed: UInt64 = 0

    mutating func add(_ other: VirtioQueuePairStatistics) {
        let mine = counters
        let theirs = other.counters
        var merged = VirtioQueuePairStatistics()
        merged.load(zip(mine, theirs).map { $0.value &+ $1.value })
        self = merged
    }

    private mutating func load(_ values: [UInt64]) {
        let paths = Self.fields
        for (path, value) in zip(paths, values) { self[keyPath: path.1] = value }
    }

    nonisolated(unsafe) private static let fields: [(String, WritableKeyPath<VirtioQueuePairStatistics, UInt64>)] = [
        ("tx_frames", \.transmittedFrames), ("tx_bytes", \.transmittedBytes), ("tx_chains", \.transmitChains),
        ("tx_dropped_link_down", \.transmitDroppedLinkDown),
        ("tx_dropped_short_header", \.transmitDroppedShortHeader), ("tx_dropped_runt", \.transmitDroppedRunt),
        ("tx_dropped_oversize", \.transmitDroppedOversize), ("tx_dropped_bad_gso", \.transmitDroppedBadGSO),
        ("tx_dropped_bad_checksum_request", \.transmitDroppedBadChecksum),
        ("tx_dropped_unfinishable", \.transmitDroppedUnfinishable),
        ("tx_offload_passed", \.transmitOffloadPassed), ("tx_software_finished", \.transmitSoftwareFinished),
        ("tx_budget_exhausted", \.transmitBudgetExhausted),
        ("rx_frames", \.receivedFrames), ("rx_bytes", \.receivedBytes),
        ("rx_dropped_too_large", \.receiveDroppedTooLarge), ("rx_dropped_runt", \.receiveDroppedRunt),
        ("rx_dropped_backlog_full", \.receiveDroppedBacklogFull),
        ("rx_dropped_no_buffers", \.receiveDroppedNoBuffers),
        ("rx_dropped_unfinishable", \.receiveDroppedUnfinishable),
        ("rx_dropped_not_ready", \.receiveDroppedNotReady), ("rx_stalls", \.receiveStalls),
        ("rx_merged_buffers", \.receiveMergedBuffers), ("rx_gso_to_guest", \.receiveGSOToGuest),
        ("rx_partial_checksum_to_guest", \.receivePartialChecksumToGuest),
        ("rx_software_finished", \.receiveSoftwareFinished),
        ("interrupts_sent", \.interruptsSent), ("interrupts_suppressed", \.interruptsSuppressed),
    ]

    /// The counters, named.
    public var counters: [Counter] { Self.fields.map { Counter($0.0, self[keyPath: $0.1]) } }
}

/// What the device as a whole counted (configuration thread).
struct VirtioNetStatistics {
    var ringErrors = [UInt64](repeating: 0, count: VirtqueueError.allCounterNames.count)
    var needsResetEvents: UInt64 = 0
    var featuresRefused: UInt64 = 0
    var notifyInvalidQueue: UInt64 = 0
    var notifyNotReady: UInt64 = 0
    var badRegisterAccesses: UInt64 = 0
    var badQueueSizeWrites: UInt64 = 0
    var interruptsINTx: UInt64 = 0
    var configInterrupts: UInt64 = 0
    var interruptsNoVector: UInt64 = 0
    var msixMessages: UInt64 = 0
    var msixMaskedPending: UInt64 = 0
    var receiveFiltered: UInt64 = 0
    var receiveDroppedLinkDown: UInt64 = 0
    var receiveDroppedNotReady: UInt64 = 0
    var receiveChainNotWritable: UInt64 = 0
    var serviceBudgetExhausted: UInt64 = 0
    var controlCommands: UInt64 = 0
    var controlErrors: UInt64 = 0
    var controlMalformed: UInt64 = 0
    var pciConfigAccessWrites: UInt64 = 0
    var pciConfigAccessReads: UInt64 = 0

    mutating func count(_ error: VirtqueueError) {
        if let index = VirtqueueError.allCounterNames.firstIndex(of: error.counterName) { ringErrors[index] &+= 1 }
    }

    var counters: [Counter] {
        zip(VirtqueueError.allCounterNames, ringErrors).map { Counter($0, $1) } + [
            Counter("ring_errors", ringErrors.reduce(0, &+)),
            Counter("needs_reset", needsResetEvents),
            Counter("features_refused", featuresRefused),
            Counter("notify_invalid_queue", notifyInvalidQueue),
            Counter("notify_not_ready", notifyNotReady),
            Counter("bad_register_accesses", badRegisterAccesses),
            Counter("bad_queue_size_writes", badQueueSizeWrites),
            Counter("interrupts_intx", interruptsINTx),
            Counter("config_interrupts", configInterrupts),
            Counter("interrupts_no_vector", interruptsNoVector),
            Counter("msix_messages", msixMessages),
            Counter("msix_masked_pending", msixMaskedPending),
            Counter("rx_filtered", receiveFiltered),
            Counter("rx_dropped_link_down", receiveDroppedLinkDown),
            Counter("rx_dropped_device_not_ready", receiveDroppedNotReady),
            Counter("rx_chain_not_writable", receiveChainNotWritable),
            Counter("service_budget_exhausted", serviceBudgetExhausted),
            Counter("control_commands", controlCommands),
            Counter("control_errors", controlErrors),
            Counter("control_malformed", controlMalformed),
            Counter("pci_cfg_access_writes", pciConfigAccessWrites),
            Counter("pci_cfg_access_reads", pciConfigAccessReads),
        ]
    }
}
