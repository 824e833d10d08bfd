#define _GNU_SOURCE
#include "CNetShims.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

int cnet_setns_net(int fd) {
    return setns(fd, CLONE_NEWNET) == 0 ? 0 : -errno;
}
