/*
 * vnic.h - the C interface to vnic's virtual network cards.
 *
 * A host (VMM, emulator, test harness) creates a card by its VirtualBox type name, maps its PCI config space and
 * BARs into the guest, lends it guest memory, an interrupt line and a clock through vnic_host_ops, and connects it to
 * a network: either its own backend (frame_out and vnic_card_receive) or one of vnic's (vnic_card_attach).
 *
 * Threading: a card is single-threaded. Every vnic_card_* call for one card comes from one thread at a time (QEMU's
 * big lock is enough); vnic calls the host's callbacks from inside those calls, except notify, which any thread may
 * call. A callback may hand the card a frame (vnic_card_receive queues it until the running call finishes) but any
 * other call into the same card from inside a callback returns VNIC_ERR_BAD_STATE. Link with libVNIC.a, the
 * toolchain's swiftrt.o and -lswiftCore -lswift_Concurrency -lswiftSynchronization -lswiftGlibc (see README.md).
 *
 * Every function returns a vnic_status; a bad argument is an error code, never a crash. After an error,
 * vnic_card_last_error() says what was wrong.
 */
#ifndef VNIC_H
#define VNIC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** The version of this interface; vnic_abi_version() returns the library's. */
#define VNIC_ABI_VERSION 1

/** What a call returns. */
typedef enum vnic_status {
    VNIC_OK = 0,
    /** A required pointer argument was NULL. */
    VNIC_ERR_NULL_ARGUMENT = 1,
    /** The card type is unknown or not implemented yet. */
    VNIC_ERR_UNKNOWN_MODEL = 2,
    /** The MAC address is not six colon-separated hex bytes, or is multicast. */
    VNIC_ERR_BAD_MAC = 3,
    /** vnic_host_ops is too small, or a required callback is missing. */
    VNIC_ERR_BAD_HOST_OPS = 4,
    /** The card has no such BAR. */
    VNIC_ERR_NO_SUCH_BAR = 5,
    /** An offset or width outside the register space, or an illegal width. */
    VNIC_ERR_OUT_OF_RANGE = 6,
    /** The attachment settings string is malformed or names something unknown. */
    VNIC_ERR_BAD_SETTINGS = 7,
    /** A file could not be opened or written. */
    VNIC_ERR_IO = 8,
    /** The output buffer is too small; the needed size was stored. */
    VNIC_ERR_BUFFER_TOO_SMALL = 9,
    /** The call is not valid in the card's current state (recording after the first access, say). */
    VNIC_ERR_BAD_STATE = 10,
    /** A frame shorter than an Ethernet header or longer than the card's limit. */
    VNIC_ERR_BAD_FRAME = 11,
    /** No counter has that name. */
    VNIC_ERR_NO_SUCH_COUNTER = 12,
    /** The card could not take the frame now (its inbound queue is full); the frame was dropped and counted. */
    VNIC_ERR_QUEUE_FULL = 13,
} vnic_status;

/** A card. Opaque; created by vnic_card_create, freed by vnic_card_destroy. */
typedef struct vnic_card vnic_card;

/** vnic_host_ops.timer_set's deadline meaning "no timer pending". */
#define VNIC_NO_DEADLINE UINT64_MAX

/** What the host lends a card. Set `size` to sizeof(vnic_host_ops). */
typedef struct vnic_host_ops {
    /** sizeof(vnic_host_ops), so the structure can grow. */
    uint32_t size;
    /** Passed back to every callback. */
    void *opaque;
    /** Required. Copies `length` bytes of guest-physical memory at `address` into `buffer`; 0 on success, non-zero
     *  when any byte is not RAM (the card then reports a bus error as the chip would). */
    int (*dma_read)(void *opaque, uint64_t address, void *buffer, size_t length);
    /** Required. Copies `buffer` to guest-physical memory; 0 on success, non-zero when any byte is not RAM. */
    int (*dma_write)(void *opaque, uint64_t address, const void *buffer, size_t length);
    /** Optional. Drives the card's INTx pin: 1 asserted, 0 deasserted. Called only on change. */
    void (*set_irq)(void *opaque, int level);
    /** Optional. Sends MSI-X vector `vector`: a 32-bit `data` write to `address`. */
    void (*msix_send)(void *opaque, uint32_t vector, uint64_t address, uint32_t data);
    /** Required. Monotonic time in nanoseconds (QEMU: QEMU_CLOCK_VIRTUAL). */
    uint64_t (*clock_ns)(void *opaque);
    /** Required. Asks for vnic_card_run_timers at `deadline_ns` on clock_ns's time line, replacing any earlier
     *  request; VNIC_NO_DEADLINE withdraws it. */
    void (*timer_set)(void *opaque, uint64_t deadline_ns);
    /** Optional. The host's own network backend: a frame the card transmitted (without FCS), valid during the call.
     *  When set, the card starts attached to it with carrier up; when NULL, the card starts not attached. */
    void (*frame_out)(void *opaque, const void *frame, size_t length);
    /** Optional. Called from any thread when the card has work waiting (frames from a vnic backend, a link change):
     *  the host then calls vnic_card_service on the card's thread. */
    void (*notify)(void *opaque);
} vnic_host_ops;

/** What a BAR decodes. */
typedef enum vnic_bar_kind {
    VNIC_BAR_NONE = 0,
    VNIC_BAR_IO = 1,
    VNIC_BAR_MEMORY32 = 2,
    VNIC_BAR_MEMORY64 = 3,
} vnic_bar_kind;

/** The interface version the library implements (VNIC_ABI_VERSION when header and library match). */
uint32_t vnic_abi_version(void);
/** A short English name for a status code. */
const char *vnic_status_string(int status);
/** Whether vnic implements the card type `model` (1) or not (0). */
int vnic_model_supported(const char *model);

/**
 * Creates a card. `model` is a VirtualBox adapter type, case-insensitive: Am79C970A, Am79C973, 82540EM, 82543GC,
 * 82545EM or virtio. `mac` is "52:54:00:12:34:56" (NULL picks 52:54:00:12:34:56). `ops` is copied.
 */
int vnic_card_create(const char *model, const char *mac, const vnic_host_ops *ops, vnic_card **out);
/**
 * vnic_card_create with card options: `options` is NULL, "" or comma-separated key=value settings:
 *   queues=N  the receive/transmit queue pairs the card offers (virtio: 1 to 16, advertised as VIRTIO_NET_F_MQ when
 *             more than 1; the other chips have one);
 *   mtu=N     the MTU virtio-net reports with VIRTIO_NET_F_MTU, the guest's initial and largest (68 to 65535;
 *             default 1500; 9000 for jumbo frames). The other chips have none: their drivers choose.
 * An unknown key or a value out of range is VNIC_ERR_BAD_SETTINGS.
 */
int vnic_card_create_with(const char *model, const char *mac, const char *options, const vnic_host_ops *ops,
                          vnic_card **out);
/** Destroys a card, stopping its recording and capture. NULL is ignored, and so is a call from inside one of the
 *  card's own callbacks (the card is in use then). */
void vnic_card_destroy(vnic_card *card);
/** The message of the card's last failed call ("" if none); valid until the next call into the card. */
const char *vnic_card_last_error(const vnic_card *card);

/** Reads `width` (1, 2 or 4) bytes of PCI config space at `offset`. */
int vnic_card_config_read(vnic_card *card, uint32_t offset, uint32_t width, uint32_t *value);
/** Writes PCI config space through the card's writable-bit masks. */
int vnic_card_config_write(vnic_card *card, uint32_t offset, uint32_t width, uint32_t value);
/** Copies all 256 bytes of config space into `buffer` with no side effect and no trace line (a host mirrors the
 *  IDs, the interrupt pin and the capabilities into its own PCI model with it). */
int vnic_card_config_snapshot(vnic_card *card, uint8_t *buffer, size_t capacity);
/** What BAR `bar` (0-5) decodes and its size; a BAR the card lacks is VNIC_BAR_NONE with size 0. */
int vnic_card_bar_info(vnic_card *card, uint32_t bar, vnic_bar_kind *kind, uint64_t *size);
/** Reads `width` (1, 2, 4 or 8) bytes at `offset` of BAR `bar`. An undecoded BAR reads all-ones. */
int vnic_card_bar_read(vnic_card *card, uint32_t bar, uint64_t offset, uint32_t width, uint64_t *value);
/** Writes `width` bytes at `offset` of BAR `bar`. */
int vnic_card_bar_write(vnic_card *card, uint32_t bar, uint64_t offset, uint32_t width, uint64_t value);
/** Fires the card's due timers; call it when the deadline from timer_set has passed. */
int vnic_card_run_timers(vnic_card *card);
/** Drains frames and link changes waiting for the card; call it after notify. */
int vnic_card_service(vnic_card *card);
/** PCI reset (RST#): every register to its power-on value. Before the first access it does nothing (the card is
 *  fresh). A recording ends at a reset after the first access: its file is written, then the card resets. */
int vnic_card_reset(vnic_card *card);

/** Whether the card's inbound queue can take a frame now (1) or not (0). */
int vnic_card_can_receive(vnic_card *card);
/** A frame (destination address to payload end, no FCS) from the host's backend; the card handles it at once. */
int vnic_card_receive(vnic_card *card, const void *frame, size_t length);
/** Plugs (1) or unplugs (0) the virtual cable. */
int vnic_card_set_link(vnic_card *card, int up);
/** Whether the card sees a link (cable plugged and carrier from the attachment). */
int vnic_card_link_up(vnic_card *card, int *up);
/**
 * Attaches the card to a vnic backend: "null" (not attached), "intnet:NAME" (an internal network shared by the
 * cards of this process), "nat[:OPTIONS]" (a NAT of its own), "udptunnel[:sport=N,dport=N,dest=IP]" (VirtualBox's
 * UDP tunnel), "bridged:IFNAME" (a host interface), "vde[:DIR[,port=N]]" (a port on a VDE switch), "vxlan:vni=N,remote=IP[,...]" (a VXLAN segment) or
 * "host" (back to the host's frame_out). A malformed
 * setting, or an attachment that cannot start (a port in use, no switch), leaves the attachment as it was.
 */
int vnic_card_attach(vnic_card *card, const char *settings);
/** Captures the card's traffic to a pcap file at `path` (NULL stops capturing). */
int vnic_card_capture(vnic_card *card, const char *path);

/** The card's counters as "name=value\n" lines, NUL-terminated; `needed` gets the size including the NUL. */
int vnic_card_counters(vnic_card *card, char *buffer, size_t capacity, size_t *needed);
/** One counter by name. */
int vnic_card_counter(vnic_card *card, const char *name, uint64_t *value);

/**
 * Records the session as a trace (format v1) that `vnic replay` reproduces with no guest: every config and BAR
 * access with the value read, the guest memory the card read (mem-write) and wrote (mem-expect), frames in (rx) and
 * out (tx-expect), interrupts and clock steps. Call it before the first access; the file is written by
 * vnic_card_record_stop or vnic_card_destroy.
 */
int vnic_card_record(vnic_card *card, const char *path);
/** Stops recording and writes the trace file. */
int vnic_card_record_stop(vnic_card *card);

#ifdef __cplusplus
}
#endif

#endif /* VNIC_H */
