#!/usr/bin/env bash
# Turns a FuzzCards finding (a crash-, timeout-, leak- or oom- input from Scripts/fuzz.sh) into a regression trace:
#
#   Scripts/crash-to-trace.sh .build-fuzz/findings/crash-1234abcd pcnet-rx-chain-wrap
#       -> Fixtures/traces/regressions/pcnet-rx-chain-wrap.trace
#
# `vnic fuzz-decode` turns the input into trace format v1 (bytecode inputs are decoded, trace-text inputs are kept as
# they are), a comment naming the finding is added after the header, and `vnic replay` must then pass on it: run the
# script once the card is fixed. A finding that is mutated trace text may carry assertions that fail (the fuzzer
# ignores them): the script then drops every assertion and keeps the operations. When the replay still fails or
# crashes, nothing is written to Fixtures/ and the trace is left in ${TMPDIR:-/tmp} to debug with `vnic replay`.
# The tests replay every trace in Fixtures/traces/regressions/, and Scripts/fuzz.sh seeds the fuzzer with them.
#
# Decode with the VNIC_FUZZ_MODELS setting the fuzzer ran with (its first byte picks among those models):
#   VNIC_FUZZ_MODELS=virtio Scripts/crash-to-trace.sh .build-fuzz/findings/crash-1234abcd virtio-packed-wrap
#
# NAME: lower-case letters, digits, '-' and '.', starting with the model as the fixtures do (am79c973-..., virtio-...).
# The script builds the debug `vnic` (swift build --product vnic; SWIFT_SCRATCH_PATH picks the build directory), or
# uses the executable VNIC names.
set -euo pipefail
cd "$(dirname "$0")/.."

usage="usage: Scripts/crash-to-trace.sh FINDING NAME   (-> Fixtures/traces/regressions/NAME.trace)"
if [ "$#" -ne 2 ]; then
    echo "$usage" >&2
    exit 2
fi
finding="$1"
name="$2"
[ -f "$finding" ] && [ -r "$finding" ] || { echo "crash-to-trace: cannot read '$finding'" >&2; exit 2; }
if ! [[ "$name" =~ ^[a-z0-9][a-z0-9.-]*$ ]] || [[ "$name" == *.trace ]]; then
    echo "crash-to-trace: NAME '$name' must be lower-case letters, digits, '-' and '.', without .trace" >&2
    exit 2
fi
directory=Fixtures/traces/regressions
output="$directory/$name.trace"
[ ! -e "$output" ] || { echo "crash-to-trace: $output exists; pick another NAME or remove it" >&2; exit 2; }

if [ -n "${VNIC:-}" ]; then
    vnic="$VNIC"
else
    scratch=(--scratch-path "${SWIFT_SCRATCH_PATH:-.build}")
    swift build "${scratch[@]}" --product vnic >&2
    vnic="$(swift build "${scratch[@]}" --show-bin-path)/vnic"
fi
[ -x "$vnic" ] || { echo "crash-to-trace: no vnic executable at '$vnic'" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$vnic" fuzz-decode "$finding" > "$work/decoded" || {
    echo "crash-to-trace: vnic fuzz-decode could not decode '$finding'" >&2
    exit 2
}
header=$(head -n 1 "$work/decoded")
[ "$header" = "vnic-trace 1" ] || { echo "crash-to-trace: decoded trace starts with '$header'" >&2; exit 2; }
{
    echo "$header"
    echo "# Fuzz regression '$name': FuzzCards finding $(basename "$finding")"
    echo "# (sha256 $(sha256sum < "$finding" | cut -c1-16)...), decoded $(date -u +%Y-%m-%d)$(
        [ -n "${VNIC_FUZZ_MODELS:-}" ] && echo " with VNIC_FUZZ_MODELS=$VNIC_FUZZ_MODELS")."
    tail -n +2 "$work/decoded"
} > "$work/$name.trace"

status=0
"$vnic" replay "$work/$name.trace" || status=$?
if [ "$status" -eq 1 ]; then
    # A failed assertion, not a crash: the finding is trace text the fuzzer mutated, and the fuzzer ignores
    # assertions. Keep every operation that drives the card and drop what only asserts (the value after a read's
    # "=", mem-expect, tx-expect, tx-count, irq, msix), then replay again.
    echo "crash-to-trace: an assertion of the finding fails; replaying it without its assertions" >&2
    awk '
        NR == 4 { print "# Assertions removed: the fuzzer ignores them, and those of a mutated input fail." }
        {
            line = $0; comment = ""
            hash = index(line, "#")
            if (hash > 0) { comment = substr(line, hash); line = substr(line, 1, hash - 1) }
            split(line, words, /[ \t]+/)
            first = words[1] == "" ? words[2] : words[1]
            if (first ~ /^(mem-expect|tx-expect|tx-count|irq|msix)$/) next
            if (first ~ /-read$/) { sub(/[ \t]*[&=].*$/, "", line); if (comment != "") line = line "  " }
            print line comment
        }' "$work/$name.trace" > "$work/stripped"
    mv "$work/stripped" "$work/$name.trace"
    status=0
    "$vnic" replay "$work/$name.trace" || status=$?
fi
if [ "$status" -ne 0 ]; then
    kept="${TMPDIR:-/tmp}/$name.trace"
    cp "$work/$name.trace" "$kept"
    if [ "$status" -gt 2 ]; then
        echo "crash-to-trace: the replay crashed (exit status $status): the card still fails on this input." >&2
    else
        echo "crash-to-trace: the replay failed (exit status $status)." >&2
    fi
    echo "crash-to-trace: nothing written to $directory; the trace is in $kept (vnic replay $kept)" >&2
    exit 1
fi
mkdir -p "$directory"
cp "$work/$name.trace" "$output"
device=$(grep -m 1 '^device ' "$output" | sed 's/ *#.*//')
echo "wrote $output: $device, $(grep -c -v '^#' "$output") lines; it replays"
