#!/bin/bash
# Builds Debian's QEMU 7.2 with vnic's `vnic-pci` device, linked against a release libVNIC.a, and caches the result.
#
#   Integrations/qemu/build.sh            # prints the path of qemu-system-x86_64 on its last line
#
# The source comes from `apt-get source qemu` (a deb-src line for bookworm is added when missing), the tree is
# patched with qemu-7.2-vnic.patch, vnic-pci.c and vnic.h are copied in, and QEMU is configured once per patch
# and configuration. Later runs rebuild only what changed: vnic-pci.c or vnic.h recompile, a new libVNIC.a relinks.
# Environment: VNIC_CACHE (default /var/cache/vnic) holds everything; JOBS (default: cores) for ninja.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${VNIC_CACHE:-/var/cache/vnic}
jobs=${JOBS:-$(nproc)}
swift_lib=$(cd "$(dirname "$(readlink -f "$(command -v swift)")")/../lib/swift/linux" && pwd)
configure_flags=(--target-list=x86_64-softmmu --without-default-features --disable-docs --disable-install-blobs
    --disable-werror --enable-tcg --enable-slirp --enable-fdt=system --disable-tools)
log() { echo "qemu/build.sh: $*" >&2; }
# What QEMU's link needs for libVNIC.a: swiftrt.o (registers Swift metadata) and the Swift runtime libraries.
link_arguments() {
    echo "$cache/lib/libVNIC.a $swift_lib/x86_64/swiftrt.o -L$swift_lib -lswiftCore -lswift_Concurrency" \
        "-lswiftSynchronization -lswiftGlibc -Wl,-rpath,$swift_lib"
}

# 1. libVNIC.a, release.
log "building libVNIC.a (release)"
(cd "$repo" && swift build -c release --product VNIC >&2)
library="$(cd "$repo" && swift build -c release --show-bin-path)/libVNIC.a"
[ -f "$library" ] || { log "no $library after the build"; exit 1; }

# 2. Debian's QEMU source package.
mkdir -p "$cache/src" "$cache/lib"
dsc=$(ls "$cache"/src/qemu_7.2*.dsc 2>/dev/null | tail -n 1 || true)
if [ -z "$dsc" ]; then
    if ! grep -rqs "^Types: deb-src\|^deb-src" /etc/apt/sources.list /etc/apt/sources.list.d/; then
        log "adding a deb-src line for bookworm"
        cat > /etc/apt/sources.list.d/vnic-deb-src.sources <<'SOURCES'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
        apt-get update -q >&2
    fi
    log "fetching the qemu source package"
    (cd "$cache/src" && apt-get source --download-only -q qemu >&2)
    dsc=$(ls "$cache"/src/qemu_7.2*.dsc | tail -n 1)
fi

# 3. A patched, configured tree per (source, patch, configuration).
key=$( (basename "$dsc"; cat "$here/qemu-7.2-vnic.patch"; echo "${configure_flags[*]}") | sha256sum | cut -c1-16)
tree="$cache/qemu-$key"
if [ ! -f "$tree/.vnic-configured" ]; then
    log "unpacking and configuring $tree"
    rm -rf "$tree"
    dpkg-source -x "$dsc" "$tree" >&2
    (cd "$tree" && patch -p1 < "$here/qemu-7.2-vnic.patch" >&2)
    cp "$here/vnic-pci.c" "$repo/Sources/CVNIC/include/vnic.h" "$tree/hw/net/"
    cp "$library" "$cache/lib/libVNIC.a"
    link_arguments > "$tree/hw/net/vnic-link-args.txt"
    (cd "$tree" && mkdir -p build && cd build && ../configure "${configure_flags[@]}" >&2)
    touch "$tree/.vnic-configured"
fi

# 4. Bring vnic's files up to date; new link arguments regenerate the build files, a new library forces a relink.
if [ "$(link_arguments)" != "$(cat "$tree/hw/net/vnic-link-args.txt")" ]; then
    link_arguments > "$tree/hw/net/vnic-link-args.txt"
    touch "$tree/hw/net/meson.build"
fi
for file in "$here/vnic-pci.c" "$repo/Sources/CVNIC/include/vnic.h"; do
    cmp -s "$file" "$tree/hw/net/$(basename "$file")" || cp "$file" "$tree/hw/net/"
done
if ! cmp -s "$library" "$cache/lib/libVNIC.a"; then
    cp "$library" "$cache/lib/libVNIC.a"
    rm -f "$tree/build/qemu-system-x86_64"
fi

log "building qemu-system-x86_64 with $jobs jobs"
ninja -C "$tree/build" -j "$jobs" qemu-system-x86_64 >&2
ln -sfn "$tree/build/qemu-system-x86_64" "$cache/qemu-system-x86_64-vnic"
echo "$cache/qemu-system-x86_64-vnic"
