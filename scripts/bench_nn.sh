#!/bin/sh
# Speed and peak memory of the rws engine (internal/nn) against PyTorch 1.13 CPU on the same
# model (cnn, 28x28 grey, 10 classes), batch 128 and number of cores, in one run.
#
#   scripts/bench_nn.sh [ROUNDS [SECONDS]]        (defaults: 3 rounds of 8 s per measurement)
#
# Each round measures, one after the other: PyTorch (torch.set_num_threads(CORES)), the engine
# with OpenBLAS through cgo (and the AVX2 Winograd transforms), and the pure-Go build (-tags
# 'noopenblas purego': gonum's BLAS, no assembly of ours); for training steps (SGD momentum
# 0.9, weight decay 5e-4, uint8 -> float preprocessing included) and inference. Each measurement is its own process, so peak RSS (/usr/bin/time %M) is the
# process's. Prints every measurement and the ratios of the per-side medians. CORES defaults to
# 2 (GOMAXPROCS for Go). OpenBLAS kernels follow OPENBLAS_CORETYPE when it is set.
set -eu
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
SECS=${2:-8}
CORES=${CORES:-2}
PY=${PY:-/usr/bin/python3}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

go test -c -o "$TMP/nn.test" ./internal/nn
go test -c -tags 'noopenblas purego' -o "$TMP/nn_purego.test" ./internal/nn
echo "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-<unset>}  cores=$CORES  $(nproc) CPUs  $(uptime | sed 's/.*load/load/')"

# go_bench BIN BENCH -> "examples/s rss_kb"
go_bench() {
	/usr/bin/time -f '%M' -o "$TMP/rss" env GOMAXPROCS="$CORES" "$1" -test.run '^$' -test.bench "^Benchmark$2\$" \
		-test.benchtime "${SECS}s" >"$TMP/out" 2>&1 || { cat "$TMP/out" >&2; exit 1; }
	echo "$(awk '/examples\/s/ { for (i = 1; i <= NF; i++) if ($(i+1) == "examples/s") print $i }' "$TMP/out") $(cat "$TMP/rss")"
}
# torch_bench MODE -> "examples/s rss_kb"
torch_bench() {
	/usr/bin/time -f '%M' -o "$TMP/rss" "$PY" scripts/torch_bench.py --threads "$CORES" --mode "$1" \
		--seconds "$SECS" >"$TMP/out"
	echo "$("$PY" -c "import json,sys; d=json.load(open('$TMP/out')); print(d['$1_examples_per_sec'])") $(cat "$TMP/rss")"
}

for r in $(seq "$ROUNDS"); do
	for mode in train infer; do
		bench=TrainStep
		[ "$mode" = infer ] && bench=Infer
		set -- $(torch_bench $mode); echo "round $r $mode torch $1 $2" | tee -a "$TMP/all"
		set -- $(go_bench "$TMP/nn.test" $bench); echo "round $r $mode go $1 $2" | tee -a "$TMP/all"
		set -- $(go_bench "$TMP/nn_purego.test" $bench); echo "round $r $mode purego $1 $2" | tee -a "$TMP/all"
	done
done

"$PY" - "$TMP/all" <<'PYEOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
med = {}
for mode in ("train", "infer"):
    for side in ("torch", "go", "purego"):
        xs = [(float(r[4]), int(r[5])) for r in rows if r[2] == mode and r[3] == side]
        med[mode, side] = (statistics.median(x for x, _ in xs), max(m for _, m in xs))
print()
print("%-6s %12s %12s %12s   %8s %8s   %s" % ("", "torch ex/s", "go ex/s", "purego ex/s", "go/torch", "pure/torch", "peak RSS MB torch / go / purego"))
for mode in ("train", "infer"):
    t, g, p = med[mode, "torch"], med[mode, "go"], med[mode, "purego"]
    print("%-6s %12.0f %12.0f %12.0f   %7.2fx %7.2fx   %.0f / %.0f / %.0f" % (
        mode, t[0], g[0], p[0], g[0] / t[0], p[0] / t[0], t[1] / 1024, g[1] / 1024, p[1] / 1024))
PYEOF
