#!/bin/bash
# Builds the real-guest tier's initramfs: busybox, the NIC driver modules of the installed Debian kernel with their
# dependencies, iperf3 and ethtool with their libraries, and `init` (the guest's test script).
#
#   make-initramfs.sh OUTPUT.cpio.gz [KERNEL_VERSION]
#
# Needs busybox-static, linux-image-amd64, iperf3, ethtool. Prints the kernel image path on its last line.
set -euo pipefail
out=$1
kver=${2:-$(ls /lib/modules | sort -V | tail -n 1)}
here=$(cd "$(dirname "$0")" && pwd)
kernel=/boot/vmlinuz-$kver
[ -f "$kernel" ] || { echo "make-initramfs.sh: no kernel $kernel (install linux-image-amd64)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

mkdir -p "$work"/{bin,sbin,etc,proc,sys,dev,tmp,lib/modules,lib64,usr/share/udhcpc}
cp /bin/busybox "$work/bin/busybox"
for module in pcnet32 e1000 virtio_net virtio_pci; do
    modprobe -S "$kver" --show-depends "$module" | awk '$1 == "insmod" { print $2 }' | while read -r path; do
        name=$(basename "$path")
        case "$name" in
        *.ko.xz) xz -dc "$path" > "$work/lib/modules/${name%.xz}" ;;
        *.ko.zst) zstd -dcq "$path" > "$work/lib/modules/${name%.zst}" ;;
        *) cp "$path" "$work/lib/modules/$name" ;;
        esac
        # Load order, dependencies first, once each.
        grep -qx "${name%%.ko*}" "$work/lib/modules/order.$module" 2>/dev/null ||
            echo "${name%%.ko*}" >> "$work/lib/modules/order.$module"
    done
done
for program in /usr/bin/iperf3 /usr/sbin/ethtool; do
    cp "$program" "$work/bin/"
    ldd "$program" | awk '/=>/ { print $3 } /ld-linux/ { print $1 }' | while read -r library; do
        [ -f "$library" ] || continue
        case "$library" in
        */ld-linux*) cp "$library" "$work/lib64/" ;;
        *) cp "$library" "$work/lib/" ;;
        esac
    done
done
cp "$here/init" "$work/init"
cp "$here/udhcpc.script" "$work/usr/share/udhcpc/default.script"
chmod +x "$work/init" "$work/usr/share/udhcpc/default.script"
(cd "$work" && find . | cpio -o -H newc --quiet | gzip -1) > "$out"
echo "$kernel"
