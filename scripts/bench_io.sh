#!/usr/bin/env bash
# Benchmarks of issue 2, as ratios against `cat` measured in the same run (files in page cache):
#   reading every tensor of a 2 GiB F32 checkpoint (rws inspect --stats) vs cat of the file,
#   with peak memory; rws diff of two 1 GiB checkpoints vs cat of both. rws uses every core and
#   cat one, so a loaded machine slows rws more: the load average is printed before and after.
#   The kernels alone: go test -run NONE -bench . ./internal/kernel (old vs new in one run).
# usage: scripts/bench_io.sh [DIR]   (needs ~4 GiB free in DIR, default /tmp/rws-bench)
#   RWS=path/to/rws scripts/bench_io.sh times that binary instead of building ./cmd/rws.
set -euo pipefail
dir=${1:-/tmp/rws-bench}
mkdir -p "$dir"
rws=${RWS:-$dir/rws}
[ -n "${RWS:-}" ] || go build -o "$rws" ./cmd/rws
go build -o "$dir/mkckpt" ./scripts/mkckpt
[ -f "$dir/big.safetensors" ] || "$dir/mkckpt" -size 2GiB -largest 64MiB -o "$dir/big.safetensors"
[ -f "$dir/a.safetensors" ] || "$dir/mkckpt" -size 1GiB -largest 64MiB -seed 1 -o "$dir/a.safetensors"
[ -f "$dir/b.safetensors" ] || "$dir/mkckpt" -size 1GiB -largest 64MiB -seed 1 -noise 0.01 -o "$dir/b.safetensors"

best() { # best wall time of 5 runs of "$@", in seconds
  local b=
  for _ in 1 2 3 4 5; do
    local s e
    s=$(date +%s.%N); "$@" >/dev/null; e=$(date +%s.%N)
    b=$(echo "$e - $s" | bc -l | awk -v b="$b" '{ if (b == "" || $1 < b) print $1; else print b }')
  done
  echo "$b"
}
cat "$dir/big.safetensors" "$dir/a.safetensors" "$dir/b.safetensors" >/dev/null # warm the cache
load() { cut -d' ' -f1-3 /proc/loadavg; }
echo "load average before: $(load) on $(nproc) cores"
t_cat=$(best cat "$dir/big.safetensors")
t_read=$(best "$rws" inspect --stats "$dir/big.safetensors")
t_cat2=$(best cat "$dir/a.safetensors" "$dir/b.safetensors")
t_diff=$(best "$rws" diff "$dir/a.safetensors" "$dir/b.safetensors")
rss=$( { /usr/bin/time -f '%M' "$rws" inspect --stats "$dir/big.safetensors" >/dev/null; } 2>&1 | tail -1)
rss_diff=$( { /usr/bin/time -f '%M' "$rws" diff "$dir/a.safetensors" "$dir/b.safetensors" >/dev/null; } 2>&1 | tail -1)
echo "load average after: $(load)"
printf 'read all tensors, 2 GiB F32: cat %.3fs, rws inspect --stats %.3fs, ratio %.2fx (target <= 1.3), peak RSS %d MiB (largest tensor 64 MiB; target <= 128)\n' \
  "$t_cat" "$t_read" "$(echo "$t_read / $t_cat" | bc -l)" "$((rss / 1024))"
printf 'diff two 1 GiB checkpoints: cat both %.3fs, rws diff %.3fs, ratio %.2fx (target <= 1.5), peak RSS %d MiB\n' \
  "$t_cat2" "$t_diff" "$(echo "$t_diff / $t_cat2" | bc -l)" "$((rss_diff / 1024))"
