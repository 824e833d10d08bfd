#define _GNU_SOURCE
#include "CNetShims.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sched.h>
#include <string.h>
#include <unistd.h>

int cnet_tap_open(const char *name, char actual[16]) {
    int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return -errno;
    struct ifreq request;
    memset(&request, 0, sizeof request);
    request.ifr_flags = IFF_TAP | IFF_NO_PI;
    if (name) strncpy(request.ifr_name, name, IFNAMSIZ - 1);
    if (ioctl(fd, TUNSETIFF, &request) < 0) {
        int code = errno;
        close(fd);
        return -code;
    }
    memcpy(actual, request.ifr_name, IFNAMSIZ);
    actual[IFNAMSIZ - 1] = 0;
    return fd;
}

int cnet_setns_net(int fd) {
    return setns(fd, CLONE_NEWNET) == 0 ? 0 : -errno;
}
