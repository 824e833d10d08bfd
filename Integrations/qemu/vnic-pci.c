/*
 * vnic-pci: a PCI network card whose chip is one of vnic's models (https://github.com/ vnic project), linked in as
 * the static library libVNIC.a through its C interface (vnic.h).
 *
 *   -device vnic-pci,model=am79c973,mac=52:54:00:12:34:56,netdev=net0
 *   -device vnic-pci,model=am79c970a,attach=intnet:lab
 *   -device vnic-pci,model=virtio,queues=4,netdev=net0
 *
 * Properties: model (am79c970a, am79c973, 82540em, 82543gc, 82545em, virtio), mac, netdev (QEMU's network
 * backends) or attach (a vnic attachment setting: null, intnet:NAME, nat[:OPTIONS], udptunnel[:PROPERTIES],
 * vde[:DIR[;port=N]], vxlan:vni=N;remote=IP[;...], bridged:IFNAME; separate properties with ';' or doubled commas), record=FILE (the session as a
 * vnic trace), capture=FILE (pcap of the card's traffic), queues=N (virtio: queue pairs offered, 1-16; default 1),
 * host_mtu=N (virtio: the MTU reported to the guest, its initial and largest; default 1500; as QEMU's virtio-net).
 *
 * The device maps vnic's BARs, DMA, INTx and MSI messages through QEMU's APIs only: BAR accesses go to
 * vnic_card_bar_read/write, config accesses to vnic (mirrored into QEMU's PCI core so it maps the BARs), DMA
 * through pci_dma_read/write after checking the range is RAM, INTx through pci_set_irq, timers on
 * QEMU_CLOCK_VIRTUAL, and frames through the NIC's queue.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later (as the QEMU code it links with)
 */
#include "qemu/osdep.h"
#include "qemu/main-loop.h"
#include "qemu/module.h"
#include "qemu/timer.h"
#include "qemu/rcu.h"
#include "qapi/error.h"
#include "exec/memory.h"
#include "hw/pci/pci.h"
#include "hw/pci/msi.h"
#include "hw/qdev-properties.h"
#include "migration/vmstate.h"
#include "net/net.h"
#include "qom/object.h"
#include "sysemu/sysemu.h"
#include "vnic.h"

#define TYPE_VNIC_PCI "vnic-pci"
OBJECT_DECLARE_SIMPLE_TYPE(VnicPCIState, VNIC_PCI)

typedef struct VnicBAR {
    struct VnicPCIState *state;
    uint32_t index;
    MemoryRegion region;
} VnicBAR;

struct VnicPCIState {
    PCIDevice parent_obj;
    NICState *nic;
    NICConf conf;
    char *model;
    char *attach;
    char *record;
    char *capture;
    uint32_t queues;
    uint32_t host_mtu;
    vnic_card *card;
    VnicBAR bars[6];
    QEMUTimer *timer;
    QEMUBH *service_bh;
    Notifier exit_notifier;
};

/* ---- host callbacks ---- */

/* Whether [address, address + length) is RAM as the card's bus master sees it: DMA goes to RAM only. */
static bool vnic_range_is_ram(PCIDevice *d, uint64_t address, size_t length, bool is_write)
{
    AddressSpace *as = pci_get_address_space(d);
    RCU_READ_LOCK_GUARD();
    while (length > 0) {
        hwaddr xlat, chunk = length;
        MemoryRegion *mr = address_space_translate(as, address, &xlat, &chunk, is_write, MEMTXATTRS_UNSPECIFIED);
        if (!memory_region_is_ram(mr) || memory_region_is_ram_device(mr) || chunk == 0) {
            return false;
        }
        if (address + chunk < address) {
            return false;
        }
        address += chunk;
        length -= chunk;
    }
    return true;
}

static int vnic_dma_read(void *opaque, uint64_t address, void *buffer, size_t length)
{
    PCIDevice *d = PCI_DEVICE(opaque);
    if (!vnic_range_is_ram(d, address, length, false)) {
        return 1;
    }
    return pci_dma_read(d, address, buffer, length) == MEMTX_OK ? 0 : 1;
}

static int vnic_dma_write(void *opaque, uint64_t address, const void *buffer, size_t length)
{
    PCIDevice *d = PCI_DEVICE(opaque);
    if (!vnic_range_is_ram(d, address, length, true)) {
        return 1;
    }
    return pci_dma_write(d, address, buffer, length) == MEMTX_OK ? 0 : 1;
}

static void vnic_set_irq(void *opaque, int level)
{
    pci_set_irq(PCI_DEVICE(opaque), level);
}

static void vnic_msix_send(void *opaque, uint32_t vector, uint64_t address, uint32_t data)
{
    MSIMessage message = { .address = address, .data = data };
    (void)vector;
    msi_send_message(PCI_DEVICE(opaque), message);
}

static uint64_t vnic_clock_ns(void *opaque)
{
    (void)opaque;
    return qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL);
}

static void vnic_timer_set(void *opaque, uint64_t deadline)
{
    VnicPCIState *s = opaque;
    if (deadline == VNIC_NO_DEADLINE || deadline > INT64_MAX) {
        timer_del(s->timer);
    } else {
        timer_mod(s->timer, (int64_t)deadline);
    }
}

/* A frame the card sent, handed to QEMU's network at once, inside the guest's doorbell write as QEMU's own NICs do.
   (Deferring it to the main loop measured 10-15% slower guest-to-host TCP under TCG: the guest's ACK clock slows.) */
static void vnic_frame_out(void *opaque, const void *frame, size_t length)
{
    VnicPCIState *s = opaque;
    qemu_send_packet(qemu_get_queue(s->nic), frame, length);
}

/* Any thread: a vnic backend delivered frames or a link change; service the card on the main loop. */
static void vnic_notify(void *opaque)
{
    VnicPCIState *s = opaque;
    qemu_bh_schedule(s->service_bh);
}

static void vnic_timer_fired(void *opaque)
{
    VnicPCIState *s = opaque;
    vnic_card_run_timers(s->card);
}

static void vnic_service(void *opaque)
{
    VnicPCIState *s = opaque;
    vnic_card_service(s->card);
}

/* ---- BARs and config space ---- */

static uint64_t vnic_bar_read(void *opaque, hwaddr offset, unsigned size)
{
    VnicBAR *bar = opaque;
    uint64_t value = UINT64_MAX;
    vnic_card_bar_read(bar->state->card, bar->index, offset, size, &value);
    return value;
}

static void vnic_bar_write(void *opaque, hwaddr offset, uint64_t value, unsigned size)
{
    VnicBAR *bar = opaque;
    vnic_card_bar_write(bar->state->card, bar->index, offset, size, value);
}

static const MemoryRegionOps vnic_bar_ops = {
    .read = vnic_bar_read,
    .write = vnic_bar_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = { .min_access_size = 1, .max_access_size = 8 },
    .impl = { .min_access_size = 1, .max_access_size = 8 },
};

static uint32_t vnic_config_read(PCIDevice *d, uint32_t address, int length)
{
    VnicPCIState *s = VNIC_PCI(d);
    uint32_t value;
    if (vnic_card_config_read(s->card, address, length, &value) != VNIC_OK) {
        return pci_default_read_config(d, address, length);
    }
    return value;
}

static void vnic_config_write(PCIDevice *d, uint32_t address, uint32_t value, int length)
{
    VnicPCIState *s = VNIC_PCI(d);
    /* QEMU's PCI core maps the BARs and gates bus mastering; vnic keeps the registers the guest reads. */
    pci_default_write_config(d, address, value, length);
    vnic_card_config_write(s->card, address, length, value);
}

/* ---- the NIC queue ---- */

static bool vnic_can_receive(NetClientState *nc)
{
    VnicPCIState *s = qemu_get_nic_opaque(nc);
    return vnic_card_can_receive(s->card) != 0;
}

static ssize_t vnic_receive(NetClientState *nc, const uint8_t *buffer, size_t size)
{
    VnicPCIState *s = qemu_get_nic_opaque(nc);
    /* The card takes or drops (and counts) the frame as the chip would; either way QEMU is done with it. */
    vnic_card_receive(s->card, buffer, size);
    return size;
}

static void vnic_link_status_changed(NetClientState *nc)
{
    VnicPCIState *s = qemu_get_nic_opaque(nc);
    vnic_card_set_link(s->card, !nc->link_down);
}

static NetClientInfo vnic_net_info = {
    .type = NET_CLIENT_DRIVER_NIC,
    .size = sizeof(NICState),
    .can_receive = vnic_can_receive,
    .receive = vnic_receive,
    .link_status_changed = vnic_link_status_changed,
};

/* ---- lifetime ---- */

/* QEMU does not unrealize devices when it exits: finish the recording and the capture then. */
static void vnic_pci_process_exit(Notifier *notifier, void *data)
{
    VnicPCIState *s = container_of(notifier, VnicPCIState, exit_notifier);
    (void)data;
    if (s->card) {
        vnic_card_record_stop(s->card);
        vnic_card_capture(s->card, NULL);
        if (getenv("VNIC_PRINT_COUNTERS")) {
            char text[4096];
            size_t needed;
            if (vnic_card_counters(s->card, text, sizeof text, &needed) == VNIC_OK) {
                fprintf(stderr, "vnic-pci counters:\n%s", text);
            }
        }
    }
}

static void vnic_pci_realize(PCIDevice *d, Error **errp)
{
    VnicPCIState *s = VNIC_PCI(d);
    const char *model = s->model ? s->model : "am79c973";
    char mac[18];
    char options[48];
    uint8_t config[256];
    int status;

    qemu_macaddr_default_if_unset(&s->conf.macaddr);
    snprintf(mac, sizeof mac, "%02x:%02x:%02x:%02x:%02x:%02x", s->conf.macaddr.a[0], s->conf.macaddr.a[1],
             s->conf.macaddr.a[2], s->conf.macaddr.a[3], s->conf.macaddr.a[4], s->conf.macaddr.a[5]);

    s->timer = timer_new_ns(QEMU_CLOCK_VIRTUAL, vnic_timer_fired, s);
    s->service_bh = qemu_bh_new_guarded(vnic_service, s, &DEVICE(d)->mem_reentrancy_guard);

    vnic_host_ops ops = {
        .size = sizeof(vnic_host_ops),
        .opaque = s,
        .dma_read = vnic_dma_read,
        .dma_write = vnic_dma_write,
        .set_irq = vnic_set_irq,
        .msix_send = vnic_msix_send,
        .clock_ns = vnic_clock_ns,
        .timer_set = vnic_timer_set,
        .frame_out = vnic_frame_out,
        .notify = vnic_notify,
    };
    if (s->host_mtu) {
        snprintf(options, sizeof options, "queues=%u,mtu=%u", s->queues, s->host_mtu);
    } else {
        snprintf(options, sizeof options, "queues=%u", s->queues);
    }
    status = vnic_card_create_with(model, mac, options, &ops, &s->card);
    if (status != VNIC_OK) {
        error_setg(errp, "vnic-pci: cannot create model '%s' with mac %s and %s: %s", model, mac, options,
                   vnic_status_string(status));
        return;
    }
    if (s->record && vnic_card_record(s->card, s->record) != VNIC_OK) {
        error_setg(errp, "vnic-pci: record=%s: %s", s->record, vnic_card_last_error(s->card));
        return;
    }
    s->exit_notifier.notify = vnic_pci_process_exit;
    qemu_add_exit_notifier(&s->exit_notifier);

    /* Mirror the card's config space into QEMU's PCI model (IDs, class, interrupt pin, capabilities). */
    vnic_card_config_snapshot(s->card, config, sizeof config);
    for (int i = 0; i < 256; i++) {
        bool qemu_owned = (i >= PCI_COMMAND && i < PCI_COMMAND + 4) ||
                          (i >= PCI_BASE_ADDRESS_0 && i < PCI_BASE_ADDRESS_5 + 4) ||
                          (i >= PCI_ROM_ADDRESS && i < PCI_ROM_ADDRESS + 4);
        if (!qemu_owned) {
            d->config[i] = config[i];
        }
    }

    for (uint32_t i = 0; i < 6; i++) {
        vnic_bar_kind kind;
        uint64_t size;
        char name[32];
        uint8_t type;
        vnic_card_bar_info(s->card, i, &kind, &size);
        if (kind == VNIC_BAR_NONE) {
            continue;
        }
        s->bars[i].state = s;
        s->bars[i].index = i;
        snprintf(name, sizeof name, "vnic-bar%u", i);
        memory_region_init_io(&s->bars[i].region, OBJECT(d), &vnic_bar_ops, &s->bars[i], name, size);
        switch (kind) {
        case VNIC_BAR_IO:
            type = PCI_BASE_ADDRESS_SPACE_IO;
            break;
        case VNIC_BAR_MEMORY64:
            type = PCI_BASE_ADDRESS_SPACE_MEMORY | PCI_BASE_ADDRESS_MEM_TYPE_64;
            break;
        default:
            type = PCI_BASE_ADDRESS_SPACE_MEMORY;
            break;
        }
        pci_register_bar(d, i, type, &s->bars[i].region);
    }

    s->nic = qemu_new_nic(&vnic_net_info, &s->conf, object_get_typename(OBJECT(d)), DEVICE(d)->id,
                          &DEVICE(d)->mem_reentrancy_guard, s);
    qemu_format_nic_info_str(qemu_get_queue(s->nic), s->conf.macaddr.a);

    if (s->attach && vnic_card_attach(s->card, s->attach) != VNIC_OK) {
        error_setg(errp, "vnic-pci: attach=%s: %s", s->attach, vnic_card_last_error(s->card));
        return;
    }
    if (s->capture && vnic_card_capture(s->card, s->capture) != VNIC_OK) {
        error_setg(errp, "vnic-pci: capture=%s: %s", s->capture, vnic_card_last_error(s->card));
        return;
    }
}

static void vnic_pci_exit(PCIDevice *d)
{
    VnicPCIState *s = VNIC_PCI(d);
    if (s->exit_notifier.notify) {
        qemu_remove_exit_notifier(&s->exit_notifier);
        s->exit_notifier.notify = NULL;
    }
    if (s->card) {
        vnic_card_destroy(s->card); /* writes the recording, closes the capture */
        s->card = NULL;
    }
    if (s->timer) {
        timer_free(s->timer);
        s->timer = NULL;
    }
    if (s->service_bh) {
        qemu_bh_delete(s->service_bh);
        s->service_bh = NULL;
    }
    if (s->nic) {
        qemu_del_nic(s->nic);
        s->nic = NULL;
    }
}

static void vnic_pci_reset(DeviceState *dev)
{
    VnicPCIState *s = VNIC_PCI(dev);
    if (s->card) {
        vnic_card_reset(s->card);
    }
}

static const VMStateDescription vnic_vmstate = {
    .name = "vnic-pci",
    .unmigratable = 1,
};

static Property vnic_pci_properties[] = {
    DEFINE_NIC_PROPERTIES(VnicPCIState, conf),
    DEFINE_PROP_STRING("model", VnicPCIState, model),
    DEFINE_PROP_STRING("attach", VnicPCIState, attach),
    DEFINE_PROP_STRING("record", VnicPCIState, record),
    DEFINE_PROP_STRING("capture", VnicPCIState, capture),
    DEFINE_PROP_UINT32("queues", VnicPCIState, queues, 1),
    DEFINE_PROP_UINT32("host_mtu", VnicPCIState, host_mtu, 0),
    DEFINE_PROP_END_OF_LIST(),
};

static void vnic_pci_class_init(ObjectClass *klass, void *data)
{
    DeviceClass *dc = DEVICE_CLASS(klass);
    PCIDeviceClass *k = PCI_DEVICE_CLASS(klass);

    k->realize = vnic_pci_realize;
    k->exit = vnic_pci_exit;
    k->config_read = vnic_config_read;
    k->config_write = vnic_config_write;
    /* Placeholder IDs: realize replaces them with the chosen chip's. */
    k->vendor_id = PCI_VENDOR_ID_AMD;
    k->device_id = 0x2000;
    k->class_id = PCI_CLASS_NETWORK_ETHERNET;
    dc->reset = vnic_pci_reset;
    dc->vmsd = &vnic_vmstate;
    dc->desc = "vnic virtual network card (PCnet, PRO/1000, virtio-net models)";
    device_class_set_props(dc, vnic_pci_properties);
    set_bit(DEVICE_CATEGORY_NETWORK, dc->categories);
}

static const TypeInfo vnic_pci_info = {
    .name = TYPE_VNIC_PCI,
    .parent = TYPE_PCI_DEVICE,
    .instance_size = sizeof(VnicPCIState),
    .class_init = vnic_pci_class_init,
    .interfaces = (InterfaceInfo[]) {
        { INTERFACE_CONVENTIONAL_PCI_DEVICE },
        { },
    },
};

static void vnic_pci_register_types(void)
{
    type_register_static(&vnic_pci_info);
}

type_init(vnic_pci_register_types)
