// What NetBackend needs from the C library that Swift's Glibc module does not export: epoll, eventfd, the socket
// ioctls, TAP creation and setns.
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

/// Opens /dev/net/tun and attaches it to the TAP interface `name` (created if missing), without packet
/// information headers, non-blocking and close-on-exec. Writes the interface's actual name (at most 15 bytes plus
/// NUL) to `actual`. Returns the descriptor, or -errno.
int cnet_tap_open(const char *name, char actual[16]);

/// Moves the calling thread into the network namespace `fd` refers to (setns with CLONE_NEWNET); 0 or -errno.
int cnet_setns_net(int fd);

#endif
