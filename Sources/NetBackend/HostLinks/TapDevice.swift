import Glibc

/// An open TAP interface (`/dev/net/tun` with `IFF_TAP | IFF_NO_PI`): each `read` is one Ethernet frame the host
/// stack sent out of the interface, each `write` one frame it receives. The descriptor is non-blocking.
///
/// With ``offloads`` (`IFF_VNET_HDR` and `TUNSETOFFLOAD` checksum, TSO4 and TSO6) every frame each way starts with a
/// 10-byte virtio-net header (NICCore's `VirtioNetHeader` in its `udpL4` form): the stack behind the interface may
/// send TCP segments up to 64 KiB
/// with their checksum left to finish, and accepts such segments, as it does from a virtio-net card.
///
/// The interface is created if it does not exist, inside the network namespace named at creation if any, and left
/// down: bringing it up and addressing it (or running DHCP on it) is for that namespace to do. It disappears when the
/// descriptor closes, unless it was made persistent elsewhere.
public final class TapDevice: Sendable {
    /// The largest frame carried: a 65,535-byte IP packet behind an Ethernet header with one VLAN tag.
    public static let maximumFrameLength = 65_535 + 18

    /// The interface's name (the kernel's choice when the requested name held `%d`).
    public let name: String
    /// The network namespace path the interface was created in, if not the caller's own.
    public let networkNamespace: String?
    /// The descriptor; valid until ``close()``.
    public let fileDescriptor: Int32
    /// Whether frames carry a virtio-net header and the interface does checksum and TCP segmentation offload.
    public let offloads: Bool
    private let closed = OnceFlag()

    // TUNSETIFF is _IOW('T', 202, int); struct ifreq is a 16-byte name and a 24-byte union whose first member is
    // the short ifr_flags.
    private static let tunSetInterface: UInt = 0x4004_54CA
    private static let tapFlags: Int16 = 0x0002 | 0x1000  // IFF_TAP | IFF_NO_PI
    private static let vnetHeaderFlag: Int16 = 0x4000  // IFF_VNET_HDR
    // TUNSETOFFLOAD is _IOW('T', 208, unsigned int); TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6.
    private static let tunSetOffload: UInt = 0x4004_54D0
    private static let offloadFlags: Int32 = 0x01 | 0x02 | 0x04
    private static let interfaceRequestSize = 40
    private static let nameCapacity = 16

    /// Creates (or attaches to) the TAP interface `name`, inside the network namespace at `networkNamespace`
    /// (`/run/netns/NAME`, `/proc/PID/ns/net`) when given; with `offloads`, frames carry a virtio-net header (see
    /// ``offloads``). Throws, naming the device and path, when the name is invalid, `/dev/net/tun` is missing, the
    /// caller lacks privilege, or the namespace cannot be entered.
    public init(name: String, networkNamespace: String? = nil, offloads: Bool = false) throws(HostLinkError) {
        try Self.validate(name: name)
        let bytes = Array(name.utf8)
        let (fd, actual): (Int32, String)
        if let networkNamespace {
            (fd, actual) = try NetworkNamespace.perform(in: networkNamespace) { () throws(HostLinkError) in
                try Self.open(bytes, offloads: offloads, label: "TAP \(name) in \(networkNamespace)")
            }
        } else {
            (fd, actual) = try Self.open(bytes, offloads: offloads, label: "TAP \(name)")
        }
        self.name = actual
        self.networkNamespace = networkNamespace
        self.offloads = offloads
        fileDescriptor = fd
    }

    deinit { close() }

    /// Checks that `name` can name an interface: 1 to 15 bytes, no `/`, spaces or control characters.
    public static func validate(name: String) throws(HostLinkError) {
        let bytes = Array(name.utf8)
        guard !bytes.isEmpty, bytes.count < nameCapacity,
            !bytes.contains(where: { $0 <= 0x20 || $0 == 0x2F || $0 == 0x7F })
        else {
            throw .invalid("TAP name '\(name)' must be 1 to 15 bytes, without '/', spaces or control characters")
        }
    }

    /// Closes the descriptor (once); the interface goes away unless persistent.
    public func close() {
        guard closed.set() else { return }
        Glibc.close(fileDescriptor)
    }

    private static func open(_ name: [UInt8], offloads: Bool, label: String) throws(HostLinkError) -> (Int32, String) {
        let fd = Glibc.open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else {
            let code = errno
            if code == ENOENT || code == ENODEV {
                throw .invalid("\(label): /dev/net/tun is missing (no TUN/TAP support: modprobe tun)")
            }
            throw .system("\(label): open /dev/net/tun", errno: code)
        }
        var request = [UInt8](repeating: 0, count: interfaceRequestSize)
        for (index, byte) in name.prefix(nameCapacity - 1).enumerated() { request[index] = byte }
        let result = request.withUnsafeMutableBytes { raw -> Int32 in
            raw.storeBytes(of: tapFlags | (offloads ? vnetHeaderFlag : 0), toByteOffset: nameCapacity, as: Int16.self)
            guard let base = raw.baseAddress else { return -1 }
            return ioctl(fd, tunSetInterface, base)
        }
        guard result == 0 else {
            let code = errno
            Glibc.close(fd)
            throw .system("\(label): TUNSETIFF", errno: code)
        }
        if offloads, ioctl(fd, tunSetOffload, offloadFlags) != 0 {
            let code = errno
            Glibc.close(fd)
            throw .system("\(label): TUNSETOFFLOAD", errno: code)
        }
        let actual = String(decoding: request.prefix(nameCapacity - 1).prefix { $0 != 0 }, as: UTF8.self)
        return (fd, actual)
    }
}
