import Synchronization

/// A guest link whose descriptor the NAT's event loop serves on its own thread (a TAP attached to the NAT), so
/// frames each way cross no thread: the loop reads the guest's frames when the descriptor is readable and writes the
/// frames queued for the guest after every round.
protocol NATGuestLink: AnyObject, Sendable {
    /// The descriptor to watch for frames from the guest.
    var guestFileDescriptor: Int32 { get }
    /// Reads the guest's frames (when `readable`) into the NAT, then writes the frames waiting for the guest; both
    /// bounded per call.
    func serviceGuest(readable: Bool)
}

extension NATRuntime {
    /// Serves `link` on the event loop from now on; `false` (with errno set) when its descriptor cannot be watched.
    func attachGuestLink(_ link: any NATGuestLink) -> Bool {
        let fd = link.guestFileDescriptor
        return guestLink.withLock { current -> Bool in
            guard current == nil, thread.loop.add(fd, events: EventLoop.readable) else { return false }
            current = link
            guestLinkDescriptor.store(fd, ordering: .releasing)
            return true
        }
    }

    /// Stops serving `link`; once this returns the loop no longer touches it or its descriptor.
    func detachGuestLink(_ link: any NATGuestLink) {
        guestLink.withLock { current in
            guard let attached = current, attached === link else { return }
            thread.loop.remove(link.guestFileDescriptor)
            guestLinkDescriptor.store(-1, ordering: .releasing)
            current = nil
        }
    }

    /// Runs `body`, which hands the NAT a burst of the guest's frames, with the acknowledgments of their TCP data
    /// held back to one per connection at the end (a TAP read batch: the guest sent them back to back).
    func guestBurst(_ body: () -> Void) {
        engine.withLock { $0.deferringAcks = true }
        body()
        engine.withLock { engine in
            engine.deferringAcks = false
            engine.sendDeferredAcks()
            stage(engine)
        }
        flush()
    }

    /// Services the attached guest link, if any (on the event loop).
    func serviceGuestLink(readable: Bool) {
        guestLink.withLock { $0?.serviceGuest(readable: readable) }
    }
}
