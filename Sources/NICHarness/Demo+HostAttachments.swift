import Glibc
import NICCards
import NICCore
import NetBackend

extension Demo {
    /// The UDP tunnel part of the demo (no root needed): two cards, each on a UDP tunnel to the other over 127.0.0.1,
    /// VirtualBox's UDP tunnel as two VMs on one host would use it, run through the same steps as the internal network.
    public static func runUDPTunnel(models: [CardModel] = [.e82540em, .virtio]) -> Report {
        var tunnels: [UDPTunnelAttachment] = []
        defer { for tunnel in tunnels { tunnel.close() } }
        // The second tunnel's port is reserved first, so the first can send to it; the second sends to the port the
        // kernel gave the first.
        var reserved: UInt16 = 0
        return run(models: models, network: "UDP tunnel", setupStep: "UDP tunnel over 127.0.0.1", jumbo: true) {
            index throws(HostLinkError) in
            var configuration = UDPTunnelConfiguration()
            configuration.localAddress = .loopback
            if let first = tunnels.first {
                configuration.sourcePort = reserved
                configuration.destinationPort = first.localEndpoint.port
            } else {
                reserved = try freeUDPPort()
                configuration.sourcePort = 0
                configuration.destinationPort = reserved
            }
            let tunnel = try UDPTunnelAttachment(configuration: configuration)
            tunnels.append(tunnel)
            return tunnel
        }
    }

    /// The VDE part of the demo: two cards on ports of the VDE switch whose control folder is `directory` (`vnic demo`
    /// starts Debian's `vde_switch` there when it is installed). VDE switches carry standard frames only.
    public static func runVDE(directory: String, models: [CardModel] = [.am79c973, .e82545em]) -> Report {
        let configuration = VDEConfiguration(directory: directory)
        return run(models: models, network: "VDE switch", setupStep: "port on vde_switch", jumbo: false) {
            _ throws(HostLinkError) in try VDEAttachment(configuration: configuration)
        }
    }

    /// A UDP port on 127.0.0.1 that is free now.
    private static func freeUDPPort() throws(HostLinkError) -> UInt16 {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .system("demo: socket", errno: errno) }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0
            }
        }
        guard bound else { throw .system("demo: binding a UDP port on 127.0.0.1", errno: errno) }
        return UInt16(bigEndian: address.sin_port)
    }
}
