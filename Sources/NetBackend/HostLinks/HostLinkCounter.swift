import Synchronization

/// A counter one thread bumps and any thread reads.
final class HostLinkCounter: Sendable {
    let name: String
    private let value = Atomic<UInt64>(0)

    init(_ name: String) { self.name = name }

    func bump(by amount: UInt64 = 1) { value.add(amount, ordering: .relaxed) }

    var current: UInt64 { value.load(ordering: .relaxed) }
}
