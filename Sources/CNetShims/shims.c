#define _GNU_SOURCE
#include "CNetShims.h"
#include <linux/if_packet.h>
#include <linux/if_ether.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/mman.h>
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

int cnet_packet_ring_setup(int fd, unsigned block_size, unsigned block_count, unsigned timeout_ms, void **ring) {
    int version = TPACKET_V3;
    if (setsockopt(fd, SOL_PACKET, PACKET_VERSION, &version, sizeof(version)) != 0) return -errno;
    struct tpacket_req3 request;
    memset(&request, 0, sizeof(request));
    request.tp_block_size = block_size;
    request.tp_block_nr = block_count;
    request.tp_frame_size = 2048;
    request.tp_frame_nr = (block_size / 2048) * block_count;
    request.tp_retire_blk_tov = timeout_ms;
    if (setsockopt(fd, SOL_PACKET, PACKET_RX_RING, &request, sizeof(request)) != 0) return -errno;
    void *mapped = mmap(NULL, (size_t)block_size * block_count, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (mapped == MAP_FAILED) return -errno;
    *ring = mapped;
    return 0;
}

int cnet_packet_membership(int fd, int ifindex, int type, const uint8_t *address, int add) {
    struct packet_mreq request;
    memset(&request, 0, sizeof(request));
    request.mr_ifindex = ifindex;
    request.mr_type = (unsigned short)type;
    if (address != NULL) {
        request.mr_alen = 6;
        memcpy(request.mr_address, address, 6);
    }
    int option = add ? PACKET_ADD_MEMBERSHIP : PACKET_DROP_MEMBERSHIP;
    return setsockopt(fd, SOL_PACKET, option, &request, sizeof(request)) == 0 ? 0 : -errno;
}

int cnet_packet_bind(int fd, int ifindex) {
    struct sockaddr_ll address;
    memset(&address, 0, sizeof(address));
    address.sll_family = AF_PACKET;
    address.sll_protocol = htons(ETH_P_ALL);
    address.sll_ifindex = ifindex;
    return bind(fd, (struct sockaddr *)&address, sizeof(address)) == 0 ? 0 : -errno;
}

int cnet_netlink_link_monitor(void) {
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0) return -errno;
    struct sockaddr_nl address;
    memset(&address, 0, sizeof(address));
    address.nl_family = AF_NETLINK;
    address.nl_groups = RTMGRP_LINK;
    if (bind(fd, (struct sockaddr *)&address, sizeof(address)) != 0) {
        int code = errno;
        close(fd);
        return -code;
    }
    return fd;
}

int cnet_ring_block(const void *block, uint32_t *count, uint32_t *first) {
    const struct tpacket_block_desc *desc = (const struct tpacket_block_desc *)block;
    if ((__atomic_load_n(&desc->hdr.bh1.block_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER) == 0) return 0;
    *count = desc->hdr.bh1.num_pkts;
    *first = desc->hdr.bh1.offset_to_first_pkt;
    return 1;
}

void cnet_ring_release(void *block) {
    struct tpacket_block_desc *desc = (struct tpacket_block_desc *)block;
    __atomic_store_n(&desc->hdr.bh1.block_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
}

size_t cnet_ring_packet_header_size(void) {
    return TPACKET_ALIGN(sizeof(struct tpacket3_hdr)) + sizeof(struct sockaddr_ll);
}

struct cnet_ring_packet cnet_ring_packet_at(const void *packet) {
    const struct tpacket3_hdr *header = (const struct tpacket3_hdr *)packet;
    const struct sockaddr_ll *address =
        (const struct sockaddr_ll *)((const char *)packet + TPACKET_ALIGN(sizeof(struct tpacket3_hdr)));
    struct cnet_ring_packet result = {
        header->tp_next_offset, header->tp_mac, header->tp_snaplen, header->tp_status,
        (uint16_t)header->hv1.tp_vlan_tci, header->hv1.tp_vlan_tpid, address->sll_pkttype};
    return result;
}

int cnet_packet_option(int fd, int option, int value) {
    return setsockopt(fd, SOL_PACKET, option, &value, sizeof(value)) == 0 ? 0 : -errno;
}
