/// What a promiscuous guest on a switched network may see: VirtualBox's `--nicpromisc` values.
///
/// A port whose card is not promiscuous is unaffected: it always gets broadcast and multicast frames, unicast frames
/// addressed to it, and unicast frames to addresses the switch has not learned (which it floods).
public enum PromiscuousPolicy: String, Hashable, Sendable, CaseIterable {
    /// A promiscuous guest sees only what a non-promiscuous one would (VirtualBox's default).
    case deny = "deny"
    /// A promiscuous guest also sees unicast frames between other guests, but none to or from the host.
    case allowVMs = "allow-vms"
    /// A promiscuous guest sees every unicast frame on the network, host traffic included.
    case allowAll = "allow-all"
}

/// Who is at the other end of a switch port.
public enum SwitchPortRole: Hashable, Sendable {
    /// A virtual machine's card. What it sees in promiscuous mode is limited by the ``PromiscuousPolicy``.
    case guest
    /// The host side of a host-only or bridged attachment. The host is trusted: a promiscuous host port sees every
    /// frame regardless of the policy, and frames it sends reach promiscuous guests only under
    /// ``PromiscuousPolicy/allowAll``.
    case host
}
