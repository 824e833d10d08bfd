/*
 * drive_card.c - a minimal C host for vnic: links libVNIC.a, creates an Am79C973, probes it through PCI config space
 * and its I/O BAR as Linux's pcnet32 does, sends one frame and receives one. Prints one line per step and exits 0
 * only when every step holds. Built and run by Tests/VNICTests/CProgramTests.swift.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "vnic.h"

#define RAM_SIZE (1u << 20)
static unsigned char ram[RAM_SIZE];
static uint64_t now_ns;
static int irq_level, irq_raised;
static unsigned char sent[2048];
static size_t sent_length;
static int sent_count, failures;

static int dma_read(void *opaque, uint64_t address, void *buffer, size_t length) {
    (void)opaque;
    if (address >= RAM_SIZE || length > RAM_SIZE - address) return 1;
    memcpy(buffer, ram + address, length);
    return 0;
}
static int dma_write(void *opaque, uint64_t address, const void *buffer, size_t length) {
    (void)opaque;
    if (address >= RAM_SIZE || length > RAM_SIZE - address) return 1;
    memcpy(ram + address, buffer, length);
    return 0;
}
static void set_irq(void *opaque, int level) { (void)opaque; irq_level = level; if (level) irq_raised++; }
static uint64_t clock_ns(void *opaque) { (void)opaque; return now_ns; }
static void timer_set(void *opaque, uint64_t deadline) { (void)opaque; (void)deadline; }
static void frame_out(void *opaque, const void *frame, size_t length) {
    (void)opaque;
    sent_count++;
    sent_length = length < sizeof sent ? length : sizeof sent;
    memcpy(sent, frame, sent_length);
}

static void check(int ok, const char *what) {
    printf("%s %s\n", ok ? "ok  " : "FAIL", what);
    if (!ok) failures++;
}

static vnic_card *card;
static uint64_t io(uint32_t offset, int width, int write, uint64_t value) {
    uint64_t read = 0;
    int status = write ? vnic_card_bar_write(card, 0, offset, width, value)
                       : vnic_card_bar_read(card, 0, offset, width, &read);
    if (status != VNIC_OK) { printf("FAIL bar access: %s\n", vnic_card_last_error(card)); failures++; }
    return read;
}
static void csr_write(uint32_t index, uint32_t value) { io(0x14, 4, 1, index); io(0x10, 4, 1, value); }
static uint32_t csr_read(uint32_t index) { io(0x14, 4, 1, index); return (uint32_t)io(0x10, 4, 0, 0); }
static void bcr_write(uint32_t index, uint32_t value) { io(0x14, 4, 1, index); io(0x1C, 4, 1, value); }
static void put32(uint32_t address, uint32_t value) { memcpy(ram + address, &value, 4); }
static uint32_t get32(uint32_t address) { uint32_t value; memcpy(&value, ram + address, 4); return value; }

int main(void) {
    vnic_host_ops ops = {0};
    ops.size = sizeof ops;
    ops.dma_read = dma_read;
    ops.dma_write = dma_write;
    ops.set_irq = set_irq;
    ops.clock_ns = clock_ns;
    ops.timer_set = timer_set;
    ops.frame_out = frame_out;

    check(vnic_abi_version() == VNIC_ABI_VERSION, "library and header agree on the ABI version");
    check(vnic_card_create("NoSuchCard", NULL, &ops, &card) == VNIC_ERR_UNKNOWN_MODEL && card == NULL,
          "an unknown card type is refused");
    check(vnic_card_create("Am79C973", "01:00:5e:00:00:01", &ops, &card) == VNIC_ERR_BAD_MAC,
          "a multicast MAC is refused");
    vnic_host_ops short_ops = ops;
    short_ops.size = 8;
    check(vnic_card_create("Am79C973", NULL, &short_ops, &card) == VNIC_ERR_BAD_HOST_OPS, "a short vnic_host_ops is refused");
    if (vnic_card_create("Am79C973", "52:54:00:ab:cd:ef", &ops, &card) != VNIC_OK) {
        printf("FAIL create\n");
        return 1;
    }

    uint32_t id = 0;
    vnic_card_config_read(card, 0, 4, &id);
    check(id == 0x20001022, "config space: vendor 1022 device 2000");
    check(vnic_card_config_read(card, 255, 4, &id) == VNIC_ERR_OUT_OF_RANGE, "a config read past the end is an error");
    vnic_bar_kind kind;
    uint64_t size;
    vnic_card_bar_info(card, 0, &kind, &size);
    check(kind == VNIC_BAR_IO && size == 32, "BAR 0 is 32 bytes of I/O");
    check(vnic_card_bar_read(card, 7, 0, 4, &size) == VNIC_ERR_NO_SUCH_BAR, "BAR 7 does not exist");
    printf("     last error: %s\n", vnic_card_last_error(card));

    vnic_card_config_write(card, 0x10, 4, 0xC001);
    vnic_card_config_write(card, 0x04, 2, 0x0005); /* I/O decode and bus mastering */
    uint64_t mac = 0;
    for (int i = 5; i >= 0; i--) mac = (mac << 8) | io(i, 1, 0, 0); /* pcnet32 reads the PROM bytewise */
    check(mac == 0xefcdab005452ull, "the address PROM holds the MAC");

    io(0x18, 4, 0, 0);          /* DWIO reset */
    io(0x10, 4, 1, 0);          /* enter 32-bit I/O mode */
    bcr_write(20, 2);           /* SWSTYLE 2: 32-bit structures */
    /* Init block at 0x1000: one receive and one transmit descriptor (RLEN=TLEN=0). */
    memset(ram + 0x1000, 0, 28);
    memcpy(ram + 0x1004, "\x52\x54\x00\xab\xcd\xef", 6);
    put32(0x1014, 0x2000);      /* RDRA */
    put32(0x1018, 0x3000);      /* TDRA */
    put32(0x2000, 0x4000);      /* receive buffer */
    put32(0x2004, 0x80000000u | 0xF000 | (0x1000 - 1536)); /* OWN, BCNT -1536 */
    csr_write(1, 0x1000);
    csr_write(2, 0);
    csr_write(0, 0x0041);       /* INIT | IENA */
    check((csr_read(0) & 0x0100) != 0, "INIT sets IDON");
    check(irq_level == 1, "IDON raises INTx");
    csr_write(0, 0x0142);       /* clear IDON, STRT, IENA */
    check(irq_level == 0, "acknowledging IDON lowers INTx");

    unsigned char frame[60] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x52, 0x54, 0x00, 0xab, 0xcd, 0xef, 0x08, 0x06};
    memcpy(ram + 0x5000, frame, sizeof frame);
    put32(0x3000, 0x5000);
    put32(0x3004, 0x80000000u | 0x03000000u | 0xF000 | (0x1000 - sizeof frame)); /* OWN STP ENP */
    csr_write(0, 0x0048);       /* TDMD | IENA */
    check(sent_count == 1 && sent_length == sizeof frame && memcmp(sent, frame, sizeof frame) == 0,
          "one transmitted frame reached frame_out");
    check((get32(0x3004) & 0x80000000u) == 0, "the card released the transmit descriptor");
    check((csr_read(0) & 0x0200) != 0, "TINT is set");

    unsigned char in[64] = {0x52, 0x54, 0x00, 0xab, 0xcd, 0xef, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00, 0x45};
    check(vnic_card_can_receive(card) == 1, "the card can receive");
    check(vnic_card_receive(card, in, sizeof in) == VNIC_OK, "a frame is handed in");
    check((get32(0x2004) & 0x80000000u) == 0 && memcmp(ram + 0x4000, in, sizeof in) == 0,
          "the frame landed in the receive buffer and the descriptor was released");
    check((get32(0x2008) & 0xFFF) == sizeof in + 4, "the message count includes the FCS");
    check(vnic_card_receive(card, in, 3) == VNIC_ERR_BAD_FRAME, "a 3-byte frame is refused");

    uint64_t value = 0;
    check(vnic_card_counter(card, "rx_frames", &value) == VNIC_OK && value == 1, "counter rx_frames is 1");
    size_t needed = 0;
    check(vnic_card_counters(card, NULL, 0, &needed) == VNIC_ERR_BUFFER_TOO_SMALL && needed > 1,
          "counters report the size they need");
    char *text = malloc(needed);
    check(vnic_card_counters(card, text, needed, &needed) == VNIC_OK && strstr(text, "tx_frames=1\n") != NULL,
          "counters list tx_frames=1");
    free(text);
    check(vnic_card_attach(card, "intnet:") == VNIC_ERR_BAD_SETTINGS, "an empty internal network name is refused");
    check(vnic_card_set_link(card, 0) == VNIC_OK, "cable unplugged");
    int up = 1;
    vnic_card_link_up(card, &up);
    check(up == 0, "the card sees no link");
    check(vnic_card_bar_read(NULL, 0, 0, 4, &value) == VNIC_ERR_NULL_ARGUMENT, "a NULL card is an error, not a crash");
    vnic_card_destroy(card);
    printf("%s\n", failures ? "FAILED" : "PASSED");
    return failures ? 1 : 0;
}
