#!/usr/bin/env bash
# NAT throughput side by side: iperf3 from a network namespace (through a TAP) to a server on host loopback, guest to
# host and host to guest, at MTU 1500 and 65520, for vnic's NAT (`vnic nat --tap`, release build), slirp4netns and
# pasta, in one run. Prints Mbit/s per case and vnic's ratio to each peer.
#
#   sudo Scripts/nat-bench.sh [SECONDS]          # default 5 s per iperf3 run
#
# SWIFT_SCRATCH_PATH names the build directory (default .build), so a worktree can keep its own release build.
#
# Needs root, iperf3, slirp4netns and passt (pasta). Traffic stays in the namespaces the script creates and on host
# loopback: each stack maps its gateway address to 127.0.0.1 (vnic with --localhost-reachable, slirp4netns by
# default, pasta by mapping the host's default gateway address).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-5}
for tool in iperf3 slirp4netns pasta ip; do
    command -v "$tool" > /dev/null || { echo "nat-bench.sh: $tool is missing" >&2; exit 2; }
done
[ "$(id -u)" = 0 ] || { echo "nat-bench.sh: needs root (network namespaces)" >&2; exit 2; }
scratch=${SWIFT_SCRATCH_PATH:-.build}
swift build -c release --scratch-path "$scratch" --product vnic >&2
vnic="$(swift build -c release --scratch-path "$scratch" --show-bin-path)/vnic"

port=$((20000 + RANDOM % 20000))
iperf3 -s -B 127.0.0.1 -p "$port" > /dev/null 2>&1 &
server=$!
namespace=""
stack=""
cleanup() {
    [ -n "$stack" ] && kill "$stack" 2> /dev/null && wait "$stack" 2> /dev/null || true
    [ -n "$namespace" ] && ip netns delete "$namespace" 2> /dev/null || true
    kill "$server" 2> /dev/null || true
}
trap cleanup EXIT

# Starts `$1` for a fresh namespace at MTU `$2`; sets $namespace, $stack and $gateway.
start() {
    namespace="vnic-bench-$$-$1"
    ip netns add "$namespace"
    ip netns exec "$namespace" ip link set lo up
    case "$1" in
    vnic)
        "$vnic" nat --tap tap0 --netns "/run/netns/$namespace" --mtu "$2" --localhost-reachable > /dev/null &
        stack=$!
        for _ in $(seq 50); do ip netns exec "$namespace" ip link show tap0 > /dev/null 2>&1 && break; sleep 0.1; done
        ip netns exec "$namespace" ip link set tap0 mtu "$2" up
        ip netns exec "$namespace" ip addr add 10.0.2.100/24 dev tap0
        ip netns exec "$namespace" ip route add default via 10.0.2.2
        gateway=10.0.2.2
        ;;
    slirp4netns)
        slirp4netns --configure --mtu="$2" --netns-type=path "/run/netns/$namespace" tap0 > /dev/null &
        stack=$!
        gateway=10.0.2.2
        ;;
    pasta)
        pasta --foreground --runas 0 --config-net --mtu "$2" -t none -u none -T none -U none \
            --netns "/run/netns/$namespace" > /dev/null 2>&1 &
        stack=$!
        gateway=$(ip route show default | awk '{ print $3; exit }')
        ;;
    esac
    for _ in $(seq 50); do
        ip netns exec "$namespace" ip route show default | grep -q . && break
        sleep 0.1
    done
    sleep 0.5
}

stop() {
    kill "$stack" 2> /dev/null || true
    wait "$stack" 2> /dev/null || true
    stack=""
    ip netns delete "$namespace"
    namespace=""
}

# iperf3 from the namespace; $1 is "" (guest to host) or -R (host to guest). Prints Mbit/s (0 on failure).
measure() {
    ip netns exec "$namespace" iperf3 -c "$gateway" -p "$port" -t "$seconds" $1 -f m 2> /dev/null |
        awk '/receiver$/ { for (i = 1; i < NF; i++) if ($(i + 1) == "Mbits/sec") v = $i } END { print v + 0 }'
}

declare -A result
for mtu in 1500 65520; do
    for tool in vnic slirp4netns pasta; do
        start "$tool" "$mtu"
        result[$tool,$mtu,up]=$(measure "")
        result[$tool,$mtu,down]=$(measure -R)
        stop
    done
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
printf "%-6s %-11s %12s %12s %12s %10s %10s\n" MTU direction vnic slirp4netns pasta vnic/slirp vnic/pasta
for mtu in 1500 65520; do
    for direction in up down; do
        v=${result[vnic,$mtu,$direction]} s=${result[slirp4netns,$mtu,$direction]} p=${result[pasta,$mtu,$direction]}
        label=$([ "$direction" = up ] && echo "guest->host" || echo "host->guest")
        printf "%-6s %-11s %12s %12s %12s %10s %10s\n" "$mtu" "$label" "$v" "$s" "$p" "$(ratio "$v" "$s")" \
            "$(ratio "$v" "$p")"
    done
done
