// What NetBackend needs from the C library that Swift's Glibc module does not export: epoll, eventfd, the socket
// ioctls, setns, a datagram's destination address (IP_PKTINFO) and the interfaces' broadcast addresses.
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

#endif
