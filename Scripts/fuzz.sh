#!/usr/bin/env bash
# Builds a libFuzzer target (release, AddressSanitizer) and runs it: FuzzCards (every implemented card, the default)
# FuzzNAT (frames from a hostile guest into a NAT instance in restrict mode) or FuzzAttachments (datagrams into the
# UDP tunnel, VXLAN and VDE receive paths, VDE switch replies and attachment settings).
#
#   Scripts/fuzz.sh [SECONDS] [JOBS]            # FUZZ_TARGET=FuzzNAT Scripts/fuzz.sh ... for the NAT
#
# SECONDS (default 180) is the wall-clock budget, JOBS (default 1) the number of parallel fuzzing processes.
# VNIC_FUZZ_MODELS=virtio (comma-separated models) makes FuzzCards spend the run on those cards only; decode its
# findings with the same setting (VNIC_FUZZ_MODELS=virtio Scripts/crash-to-trace.sh ...).
# FuzzCards' corpus lives in .build-fuzz/corpus, seeded from Fixtures/traces, its regressions/ and the Linux
# sessions in linux/ (trace text is a valid input: the fuzzer mutates it and fuzzes the parser too). FuzzNAT's lives
# in .build-fuzz/corpus-nat, seeded from Fixtures/pcaps and, when present, ../shared/fixtures/pcaps. Crashes,
# timeouts and out-of-memory inputs land in .build-fuzz/findings/; turn a FuzzCards one into a regression trace
# with Scripts/crash-to-trace.sh. Exits non-zero when anything was found.
#
# SwiftPM passes -sanitize=fuzzer before -sanitize=address, and swiftc keeps only the last of the two, which drops
# the coverage instrumentation; the extra -Xswiftc flag restores it.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-180}"
jobs="${2:-1}"
scratch=.build-fuzz
target="${FUZZ_TARGET:-FuzzCards}"
case "$target" in
FuzzCards | FuzzNAT | FuzzAttachments) ;;
*) echo "fuzz.sh: FUZZ_TARGET must be FuzzCards, FuzzNAT or FuzzAttachments, not '$target'" >&2; exit 2 ;;
esac
swift build -c release --product "$target" --sanitize=fuzzer --sanitize=address \
    -Xswiftc -sanitize=fuzzer,address --scratch-path "$scratch"
root=$(pwd)
binary="$root/$scratch/release/$target"
corpus="$root/$scratch/corpus"
[ "$target" = FuzzNAT ] && corpus="$root/$scratch/corpus-nat"
[ "$target" = FuzzAttachments ] && corpus="$root/$scratch/corpus-attachments"
findings="$root/$scratch/findings"
mkdir -p "$corpus" "$findings"
if [ "$target" = FuzzCards ]; then
    cp Fixtures/traces/*.trace "$corpus/"
    for folder in regressions linux; do  # fuzz regressions, and Linux's own sessions recorded in QEMU
        if compgen -G "Fixtures/traces/$folder/*.trace" > /dev/null; then cp Fixtures/traces/$folder/*.trace "$corpus/"; fi
    done
elif [ "$target" = FuzzAttachments ]; then
    # Seeds: a setting of each kind, a VXLAN datagram for VNI 42 and a VDE reply (the fuzzer finds the rest).
    printf '\004udptunnel:sport=4444,dport=4445,dest=::1,accept=dest' > "$corpus/seed-udptunnel"
    printf '\004vxlan:vni=42;remote=10.0.0.2;mtu=9000' > "$corpus/seed-vxlan"
    printf '\004vde:/tmp/vde.ctl,port=3' > "$corpus/seed-vde"
    printf '\001\026\000\010\000\000\000\000\000\052\000\377\377\377\377\377\377\002\000\000\000\000\001\210\265' \
        > "$corpus/seed-vxlan-datagram"
    { printf '\003\001\000/tmp/vde.ctl/004.9'; head -c 90 /dev/zero; } > "$corpus/seed-vde-reply"
else
    for folder in Fixtures/pcaps ../shared/fixtures/pcaps; do
        if compgen -G "$folder/*.pcap" > /dev/null; then cp "$folder"/*.pcap "$corpus/"; fi
    done
fi
echo "fuzzing $target for ${seconds}s with ${jobs} job(s); corpus $corpus, findings $findings"
status=0
cd "$scratch"  # libFuzzer writes its per-job logs (fuzz-N.log) into the working directory
if [ "$jobs" -le 1 ]; then
    "$binary" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$findings/" "$corpus" || status=$?
else
    "$binary" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$findings/" -jobs="$jobs" -workers="$jobs" "$corpus" || status=$?
fi
found=$(find "$findings" -type f \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'leak-*' \) | wc -l)
if [ "$status" -ne 0 ] || [ "$found" -ne 0 ]; then
    echo "fuzzing found $found problem input(s) (exit status $status) in $findings" >&2
    exit 1
fi
echo "fuzzing finished: no crash, hang, leak or out-of-memory"
