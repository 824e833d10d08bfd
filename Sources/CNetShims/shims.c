#define _GNU_SOURCE
#include "CNetShims.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

int cnet_setns_net(int fd) {
    return setns(fd, CLONE_NEWNET) == 0 ? 0 : -errno;
}

long cnet_recv_ipv4_destination(
    int fd, void *buffer, size_t length, uint32_t *source, uint16_t *sourcePort, uint32_t *destination) {
    struct sockaddr_in from;
    memset(&from, 0, sizeof from);
    struct iovec vector = {.iov_base = buffer, .iov_len = length};
    union {
        struct cmsghdr align;
        char bytes[CMSG_SPACE(sizeof(struct in_pktinfo)) + CMSG_SPACE(64)];
    } control;
    struct msghdr message;
    memset(&message, 0, sizeof message);
    message.msg_name = &from;
    message.msg_namelen = sizeof from;
    message.msg_iov = &vector;
    message.msg_iovlen = 1;
    message.msg_control = control.bytes;
    message.msg_controllen = sizeof control.bytes;
    ssize_t count = recvmsg(fd, &message, MSG_DONTWAIT);
    if (count < 0) return -errno;
    *source = message.msg_namelen >= sizeof from && from.sin_family == AF_INET ? ntohl(from.sin_addr.s_addr) : 0;
    *sourcePort = message.msg_namelen >= sizeof from && from.sin_family == AF_INET ? ntohs(from.sin_port) : 0;
    *destination = 0;
    for (struct cmsghdr *header = CMSG_FIRSTHDR(&message); header != NULL; header = CMSG_NXTHDR(&message, header)) {
        if (header->cmsg_level == IPPROTO_IP && header->cmsg_type == IP_PKTINFO
            && header->cmsg_len >= CMSG_LEN(sizeof(struct in_pktinfo))) {
            struct in_pktinfo info;
            memcpy(&info, CMSG_DATA(header), sizeof info);
            *destination = ntohl(info.ipi_addr.s_addr);
        }
    }
    return (long)count;
}

int cnet_ipv4_interface_broadcasts(uint32_t *out, int capacity) {
    struct ifaddrs *list = NULL;
    if (getifaddrs(&list) != 0) return -errno;
    int count = 0;
    for (struct ifaddrs *entry = list; entry != NULL && count < capacity; entry = entry->ifa_next) {
        if (entry->ifa_addr == NULL || entry->ifa_netmask == NULL || entry->ifa_addr->sa_family != AF_INET) continue;
        uint32_t address = ntohl(((const struct sockaddr_in *)entry->ifa_addr)->sin_addr.s_addr);
        uint32_t mask = ntohl(((const struct sockaddr_in *)entry->ifa_netmask)->sin_addr.s_addr);
        if (mask == 0xFFFFFFFFu) continue;  // a /32 has no broadcast address
        out[count++] = address | ~mask;
    }
    freeifaddrs(list);
    return count;
}
