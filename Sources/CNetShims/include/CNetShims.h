// What NetBackend needs from the C library that Swift's Glibc module does not export: epoll, eventfd, the socket
// ioctls and setns.
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

#endif
