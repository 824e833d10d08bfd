// What NetBackend needs from the C library that Swift's Glibc module does not export: epoll, eventfd, the socket
// ioctls, setns, a datagram's destination address (IP_PKTINFO), the interfaces' broadcast addresses, and AF_PACKET's
// TPACKET_V3 receive ring and rtnetlink for the bridged attachment.
#ifndef CNETSHIMS_H
#define CNETSHIMS_H

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <linux/sockios.h>

/// Bytes in a socket's send queue not yet acknowledged by the peer (SIOCOUTQ); -1 on error.
static inline int cnet_outq(int fd) {
    int value = 0;
    return ioctl(fd, SIOCOUTQ, &value) == 0 ? value : -1;
}

/// Moves the calling thread into the network namespace `fd` refers to (setns with CLONE_NEWNET); 0 or -errno.
int cnet_setns_net(int fd);

#include <stdint.h>
#include <stddef.h>

/// Receives one datagram from an IPv4 socket with IP_PKTINFO set, without blocking. Returns the byte count or -errno;
/// `source` and `sourcePort` get the sender (host byte order), `destination` the address in the datagram's IP header
/// (host byte order; 0 when the kernel gave none).
long cnet_recv_ipv4_destination(
    int fd, void *buffer, size_t length, uint32_t *source, uint16_t *sourcePort, uint32_t *destination);

/// Writes the directed broadcast address (address | ~netmask, host byte order) of each IPv4 interface address, lo's
/// 127.255.255.255 included, into `out`, at most `capacity`. Returns how many, or -errno.
int cnet_ipv4_interface_broadcasts(uint32_t *out, int capacity);

/// Sets up a TPACKET_V3 receive ring of `block_count` blocks of `block_size` bytes on the AF_PACKET socket `fd`
/// (blocks retired after `timeout_ms` even when not full) and maps it into `*ring`. Returns 0 or -errno.
int cnet_packet_ring_setup(int fd, unsigned block_size, unsigned block_count, unsigned timeout_ms, void **ring);

/// A packet in a ring block, as the kernel described it.
struct cnet_ring_packet {
    uint32_t next;      /// offset of the next packet from this one (0 for the last)
    uint32_t mac;       /// offset of the Ethernet header from this packet's header
    uint32_t length;    /// bytes captured (tp_snaplen)
    uint32_t status;    /// TP_STATUS_* bits (VLAN_VALID 0x10, VLAN_TPID_VALID 0x40, ...)
    uint16_t vlan_tci;  /// the VLAN tag the NIC stripped, when VLAN_VALID
    uint16_t vlan_tpid; /// its TPID, when VLAN_TPID_VALID
    uint8_t pkttype;    /// PACKET_HOST 0, ..., PACKET_OUTGOING 4 (sockaddr_ll)
};

/// Whether the ring block at `block` is the user's to read; if so its packet count and first packet's offset.
int cnet_ring_block(const void *block, uint32_t *count, uint32_t *first);

/// Gives the block back to the kernel.
void cnet_ring_release(void *block);

/// The bytes a packet's header and address take: the caller checks they lie in the block before
/// `cnet_ring_packet_at` reads them.
size_t cnet_ring_packet_header_size(void);

/// The packet whose header is at `packet`.
struct cnet_ring_packet cnet_ring_packet_at(const void *packet);

/// Adds (`add` 1) or drops a membership (PACKET_MR_PROMISC 1, PACKET_MR_ALLMULTI 2, or PACKET_MR_UNICAST 3 with
/// `address`, 6 bytes) on interface `ifindex` for the AF_PACKET socket `fd`. Returns 0 or -errno.
int cnet_packet_membership(int fd, int ifindex, int type, const uint8_t *address, int add);

/// Binds the AF_PACKET socket `fd` to interface `ifindex` for every protocol. Returns 0 or -errno.
int cnet_packet_bind(int fd, int ifindex);

/// Sets an integer SOL_PACKET option (PACKET_QDISC_BYPASS 20, PACKET_IGNORE_OUTGOING 23, ...). Returns 0 or -errno.
int cnet_packet_option(int fd, int option, int value);

/// Opens a non-blocking rtnetlink socket subscribed to link changes (RTMGRP_LINK). Returns the descriptor or -errno.
int cnet_netlink_link_monitor(void);

#endif
