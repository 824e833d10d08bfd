import NICCore

/// What one queue pair counted (owned by the pair's thread).
public typealias VirtioQueuePairStatistics = CounterTable<VirtioQueuePairCounter, 28>

/// The counters of ``VirtioQueuePairStatistics``, in report order.
public enum VirtioQueuePairCounter: Int, CounterKey {
    case transmittedFrames, transmittedBytes, transmitChains, transmitDroppedLinkDown, transmitDroppedShortHeader,
        transmitDroppedRunt, transmitDroppedOversize, transmitDroppedBadGSO, transmitDroppedBadChecksum,
        transmitDroppedUnfinishable, transmitOffloadPassed, transmitSoftwareFinished, transmitBudgetExhausted,
        receivedFrames, receivedBytes, receiveDroppedTooLarge, receiveDroppedRunt, receiveDroppedBacklogFull,
        receiveDroppedNoBuffers, receiveDroppedUnfinishable, receiveDroppedNotReady, receiveStalls,
        receiveMergedBuffers, receiveGSOToGuest, receivePartialChecksumToGuest, receiveSoftwareFinished,
        interruptsSent, interruptsSuppressed

    public static let names = [
        "tx_frames", "tx_bytes", "tx_chains", "tx_dropped_link_down", "tx_dropped_short_header", "tx_dropped_runt",
        "tx_dropped_oversize", "tx_dropped_bad_gso", "tx_dropped_bad_checksum_request", "tx_dropped_unfinishable",
        "tx_offload_passed", "tx_software_finished", "tx_budget_exhausted", "rx_frames", "rx_bytes",
        "rx_dropped_too_large", "rx_dropped_runt", "rx_dropped_backlog_full", "rx_dropped_no_buffers",
        "rx_dropped_unfinishable", "rx_dropped_not_ready", "rx_stalls", "rx_merged_buffers", "rx_gso_to_guest",
        "rx_partial_checksum_to_guest", "rx_software_finished", "interrupts_sent", "interrupts_suppressed",
    ]
}

/// What the device as a whole counted (configuration thread): the ring errors by kind, then the rest.
struct VirtioNetStatistics {
    var ringErrors = [UInt64](repeating: 0, count: VirtqueueError.allCounterNames.count)
    var device = CounterTable<VirtioDeviceCounter, 21>()

    mutating func count(_ error: VirtqueueError) {
        if let index = VirtqueueError.allCounterNames.firstIndex(of: error.counterName) { ringErrors[index] &+= 1 }
    }

    /// The device's own counter `key`.
    @inline(__always) subscript(key: VirtioDeviceCounter) -> UInt64 {
        get { device[key] }
        set { device[key] = newValue }
    }

    var counters: [Counter] {
        zip(VirtqueueError.allCounterNames, ringErrors).map { Counter($0, $1) }
            + [Counter("ring_errors", ringErrors.reduce(0, &+))] + device.counters
    }
}

/// The counters of ``VirtioNetStatistics``, in report order.
enum VirtioDeviceCounter: Int, CounterKey {
    case needsResetEvents, featuresRefused, notifyInvalidQueue, notifyNotReady, badRegisterAccesses,
        badQueueSizeWrites, interruptsINTx, configInterrupts, interruptsNoVector, msixMessages, msixMaskedPending,
        receiveFiltered, receiveDroppedLinkDown, receiveDroppedNotReady, receiveChainNotWritable,
        serviceBudgetExhausted, controlCommands, controlErrors, controlMalformed, pciConfigAccessWrites,
        pciConfigAccessReads

    static let names = [
        "needs_reset", "features_refused", "notify_invalid_queue", "notify_not_ready", "bad_register_accesses",
        "bad_queue_size_writes", "interrupts_intx", "config_interrupts", "interrupts_no_vector", "msix_messages",
        "msix_masked_pending", "rx_filtered", "rx_dropped_link_down", "rx_dropped_device_not_ready",
        "rx_chain_not_writable", "service_budget_exhausted", "control_commands", "control_errors",
        "control_malformed", "pci_cfg_access_writes", "pci_cfg_access_reads",
    ]
}
