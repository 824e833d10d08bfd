import Synchronization

/// Orders a device's accesses to shared guest memory against the guest's vCPUs.
///
/// Virtio-style rings need them: a device publishes ring entries before the index that makes them visible
/// (``guestMemoryFence(_:)`` with `.release`), reads an index before the entries it covers (`.acquire`), and
/// re-checks an index after publishing an event index (`.full`, a store-load fence) so neither side misses the
/// other's update.
public enum GuestMemoryOrdering: Sendable {
    /// Earlier loads happen before later loads and stores.
    case acquire
    /// Earlier loads and stores happen before later stores.
    case release
    /// Everything before happens before everything after (including store-then-load).
    case full
}

/// Issues the fence `ordering` asks for.
@inlinable
public func guestMemoryFence(_ ordering: GuestMemoryOrdering) {
    switch ordering {
    case .acquire: atomicMemoryFence(ordering: .acquiring)
    case .release: atomicMemoryFence(ordering: .releasing)
    case .full: atomicMemoryFence(ordering: .sequentiallyConsistent)
    }
}
