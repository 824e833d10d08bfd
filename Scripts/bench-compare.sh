#!/usr/bin/env bash
# Compares two builds of `vnic bench` on this machine, row by row: for every card, direction and frame size, the two
# binaries run one after the other, ROUNDS times alternately (the host is noisy: a single run moves by 10-30%), and
# the table shows each build's median frames per second and the median of the per-round ratios (new / base).
#
#   Scripts/bench-compare.sh BASE_VNIC NEW_VNIC [ROUNDS] [SECONDS] [CARD...]
#
# BASE_VNIC and NEW_VNIC are release builds (`swift build -c release --product vnic`); ROUNDS defaults to 8 and
# SECONDS (per measurement) to 0.3; CARDs default to every implemented model. Output: a table, then one JSON line a
# row (`"ratio"` is the median of per-round ratios).
set -euo pipefail
if [ $# -lt 2 ]; then
    sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
fi
base=$1 new=$2 rounds=${3:-8} seconds=${4:-0.3}
shift $(( $# < 4 ? $# : 4 ))
cards=("$@")
[ ${#cards[@]} -gt 0 ] || cards=(am79c970a am79c973 82540em 82543gc 82545em virtio)
for binary in "$base" "$new"; do
    [ -x "$binary" ] || { echo "bench-compare: $binary is not an executable" >&2; exit 2; }
done
exec python3 - "$base" "$new" "$rounds" "$seconds" "${cards[@]}" <<'PY'
import json, statistics, subprocess, sys

base, new, rounds, seconds, cards = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5:]

def frames(card):
    return [64, 1514] + ([9014] if card != "am79c970a" and card != "am79c973" else [])

def run(binary, card, direction, frame):
    out = subprocess.run(
        [binary, "bench", "--json", "--seconds", seconds, "--card", card, "--" + direction, "--frame", str(frame)],
        capture_output=True, text=True, timeout=300, check=True).stdout
    rows = {}
    for line in out.splitlines():
        row = json.loads(line)
        if "card" in row:
            rows[(row["card"], row["direction"], row.get("ring", "-"), row["frameBytes"], row["batch"])] = row["framesPerSecond"]
    return rows

results = []
for card in cards:
    for direction in ("tx", "rx"):
        for frame in frames(card):
            runs = {"base": [], "new": []}
            for _ in range(rounds):
                runs["base"].append(run(base, card, direction, frame))
                runs["new"].append(run(new, card, direction, frame))
            for key in runs["base"][0]:
                b = [r.get(key, 0) for r in runs["base"]]
                n = [r.get(key, 0) for r in runs["new"]]
                ratios = [y / x for x, y in zip(b, n) if x > 0]
                results.append((key, statistics.median(b), statistics.median(n), statistics.median(ratios) if ratios else 0))

print(f"{'card':10} {'dir':3} {'ring':6} {'frame':>5} {'batch':>5} {'base fps':>12} {'new fps':>12} {'ratio':>6}")
for (card, direction, ring, frame, batch), b, n, ratio in results:
    print(f"{card:10} {direction:3} {ring:6} {frame:5} {batch:5} {b:12.0f} {n:12.0f} {ratio:6.3f}")
for (card, direction, ring, frame, batch), b, n, ratio in results:
    print(json.dumps({"card": card, "direction": direction, "ring": ring, "frameBytes": frame, "batch": batch,
                      "baseFPS": round(b), "newFPS": round(n), "ratio": round(ratio, 3)}))
PY
