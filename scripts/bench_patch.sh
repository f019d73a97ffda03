#!/usr/bin/env bash
# bench_patch.sh times rws against baselines measured in the same run (issue 3):
#   extract on the VGG-16 CIFAR checkpoint set (3 × 59 MB) against reading those files (cat) and
#   against cp of one of them;
#   out-of-place patch of a generated 2 GiB F32 checkpoint ≤ 1.2× cp of it; in-place patch with a
#   10 MB signature ≤ 5 % of that cp.
# rws writes every output durably (fsync) unless --no-sync, cp does not: so rws is timed both
# ways, and each compared with its like (rws against cp + sync, rws --no-sync against cp).
# The machine's load average is printed before and after: timings on a loaded machine vary a lot.
# With RWS_BASELINE=/path/to/an/older/rws, that binary's patch and unpatch are timed in the same
# loop too, for before/after ratios from one run.
# Files go to $RWS_BENCH_DIR (default /tmp/rws-bench-patch), never into the repository; remove it after.
# Usage: scripts/bench_patch.sh [MiB of model data, default 2048] [repetitions, default 5]
set -euo pipefail
cd "$(dirname "$0")/.."
MIB=${1:-2048}
REPS=${2:-5}
DIR=${RWS_BENCH_DIR:-/tmp/rws-bench-patch}
mkdir -p "$DIR"
go build -o "$DIR/rws" ./cmd/rws
RWS="$DIR/rws"
if [ ! -f "$DIR/model.safetensors" ] || [ "$(stat -c %s "$DIR/model.safetensors")" -lt $((MIB << 20)) ]; then
  go run scripts/gen_bench_model.go -dir "$DIR" -mib "$MIB"
fi
"$RWS" extract --quiet --force --init "$DIR/init.safetensors" --clean "$DIR/clean.safetensors" \
  --robust "$DIR/robust.safetensors" --layers blocks.0 -o "$DIR/sig.rws" >/dev/null
if [ ! -f "$DIR/vgg-robust.safetensors" ]; then
  go run scripts/gen_bench_model.go -dir "$DIR" -vgg
fi
MODEL="$DIR/model.safetensors"
echo "model: $(stat -c %s "$MODEL") bytes; signature: $(stat -c %s "$DIR/sig.rws") bytes"
echo "load at start: $(uptime)"
# Above the kernel's largest order (10), the guest keeps freed memory instead of reporting it.
echo "free page reporting order: $(cat /sys/module/page_reporting/parameters/page_reporting_order 2>/dev/null || echo none)"
BASE=${RWS_BASELINE:-}

now() { date +%s.%N; }
# secs CMD…: run CMD, print its wall time in seconds.
secs() { local s e; s=$(now); "$@" >/dev/null; e=$(now); echo "$e - $s" | bc -l; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
cpsync() { cp "$1" "$2" && sync "$2"; }

V="$DIR/vgg"
cat "$V-init.safetensors" "$V-clean.safetensors" "$V-robust.safetensors" >/dev/null
declare -a CAT VCP EXN EX8 EXA
for i in $(seq "$REPS"); do
  CAT+=("$(secs cat "$V-init.safetensors" "$V-clean.safetensors" "$V-robust.safetensors")")
  VCP+=("$(secs cpsync "$V-clean.safetensors" "$DIR/vcopy")"); rm -f "$DIR/vcopy"
  EXN+=("$(secs "$RWS" extract --quiet --force --init "$V-init.safetensors" --clean "$V-clean.safetensors" --robust "$V-robust.safetensors" --layers first:6 -o "$DIR/v.rws")")
  EX8+=("$(secs "$RWS" extract --quiet --force --init "$V-init.safetensors" --clean "$V-clean.safetensors" --robust "$V-robust.safetensors" --layers first:6 --codec linear --bits 8 -o "$DIR/v8.rws")")
  EXA+=("$(secs "$RWS" extract --quiet --force --init "$V-init.safetensors" --clean "$V-clean.safetensors" --robust "$V-robust.safetensors" --layers auto -o "$DIR/va.rws")")
done
cat_t=$(median "${CAT[@]}"); vcp_t=$(median "${VCP[@]}")
exn_t=$(median "${EXN[@]}"); ex8_t=$(median "${EX8[@]}"); exa_t=$(median "${EXA[@]}")

cat "$MODEL" >/dev/null # warm the page cache
cp "$MODEL" "$DIR/work.safetensors"
rm -f "$DIR/work.safetensors.rws-undo" "$DIR/work.safetensors.rws-journal"
# Each timed command starts with no dirty data left from the one before (sync) and, when it
# writes a model-sized file, right after a model-sized file was freed (prime). This VM hands freed
# memory back to its host (free page reporting), and page cache taken from memory the host took
# back costs 2–5 times more: without priming, whichever command did not follow a deletion paid
# for it (unpatch measured 2.8 times cp+sync, 0.85 with priming or with reporting off).
prime() { cp "$MODEL" "$DIR/scratch"; rm -f "$DIR/scratch"; sync; }
declare -a CP CPS OUT OUTN UN UNN IN INN UNIN BOUT BUN BIN
for i in $(seq "$REPS"); do
  rm -f "$DIR/copy" "$DIR/out" "$DIR/back"; sync
  prime; CP+=("$(secs cp "$MODEL" "$DIR/copy")"); rm -f "$DIR/copy"; sync
  prime; CPS+=("$(secs cpsync "$MODEL" "$DIR/copy")"); rm -f "$DIR/copy"; sync
  prime; OUT+=("$(secs "$RWS" patch "$MODEL" -s "$DIR/sig.rws" -o "$DIR/out")"); sync
  prime; UN+=("$(secs "$RWS" unpatch "$DIR/out" -o "$DIR/back")")
  cmp "$DIR/back" "$MODEL"
  rm -f "$DIR/out" "$DIR/back"; sync
  prime; OUTN+=("$(secs "$RWS" patch --no-sync "$MODEL" -s "$DIR/sig.rws" -o "$DIR/out")"); sync
  prime; UNN+=("$(secs "$RWS" unpatch --no-sync "$DIR/out" -o "$DIR/back")"); sync
  cmp "$DIR/back" "$MODEL"
  rm -f "$DIR/out" "$DIR/back"; sync
  IN+=("$(secs "$RWS" patch --in-place "$DIR/work.safetensors" -s "$DIR/sig.rws")"); sync
  UNIN+=("$(secs "$RWS" unpatch --in-place "$DIR/work.safetensors")"); sync
  INN+=("$(secs "$RWS" patch --no-sync --in-place "$DIR/work.safetensors" -s "$DIR/sig.rws")"); sync
  "$RWS" unpatch --in-place "$DIR/work.safetensors" >/dev/null; sync
  if [ -n "$BASE" ]; then
    prime; BOUT+=("$(secs "$BASE" patch "$MODEL" -s "$DIR/sig.rws" -o "$DIR/out")"); sync
    prime; BUN+=("$(secs "$BASE" unpatch "$DIR/out" -o "$DIR/back")")
    cmp "$DIR/back" "$MODEL"
    rm -f "$DIR/out" "$DIR/back"; sync
    BIN+=("$(secs "$BASE" patch --in-place "$DIR/work.safetensors" -s "$DIR/sig.rws")"); sync
    "$BASE" unpatch --in-place "$DIR/work.safetensors" >/dev/null; sync
  fi
done
cmp "$DIR/work.safetensors" "$MODEL"
cp_t=$(median "${CP[@]}"); cps_t=$(median "${CPS[@]}")
out_t=$(median "${OUT[@]}"); outn_t=$(median "${OUTN[@]}"); un_t=$(median "${UN[@]}"); unn_t=$(median "${UNN[@]}")
in_t=$(median "${IN[@]}"); inn_t=$(median "${INN[@]}"); unin_t=$(median "${UNIN[@]}")
ratio() { echo "scale=3; $1 / $2" | bc -l; }
pct() { echo "scale=2; 100 * $1 / $2" | bc -l; }
echo "VGG-16 set, median of $REPS runs (seconds): cat of the 3 files $cat_t, cp+sync of one $vcp_t, extract first:6 none $exn_t, linear/8 $ex8_t, auto $exa_t"
echo "extract first:6 / cat of the set  = $(ratio "$exn_t" "$cat_t") (none), $(ratio "$ex8_t" "$cat_t") (linear/8), $(ratio "$exa_t" "$cat_t") (auto)"
echo "extract first:6 / cp+sync of one  = $(ratio "$exn_t" "$vcp_t") (none)"
echo "median of $REPS runs (seconds): cp $cp_t, cp+sync $cps_t"
echo "  durable (fsync, the default):   patch $out_t, unpatch $un_t, patch --in-place $in_t, unpatch --in-place $unin_t"
echo "  --no-sync (page cache, as cp):  patch $outn_t, unpatch $unn_t, patch --in-place $inn_t"
echo "out-of-place patch / cp+sync           = $(ratio "$out_t" "$cps_t")   (target ≤ 1.2; both durable)"
echo "out-of-place patch --no-sync / cp      = $(ratio "$outn_t" "$cp_t")   (target ≤ 1.2; neither durable)"
echo "out-of-place patch / cp                = $(ratio "$out_t" "$cp_t")   (durable against not)"
echo "unpatch / cp+sync                      = $(ratio "$un_t" "$cps_t"); unpatch --no-sync / cp = $(ratio "$unn_t" "$cp_t")"
echo "in-place patch / cp+sync               = $(pct "$in_t" "$cps_t") %   (target ≤ 5 %; both durable)"
echo "in-place patch --no-sync / cp          = $(pct "$inn_t" "$cp_t") %   (target ≤ 5 %; neither durable)"
echo "in-place patch / cp                    = $(pct "$in_t" "$cp_t") %   (durable against not)"
echo "in-place unpatch / cp+sync             = $(pct "$unin_t" "$cps_t") %"
if [ -n "$BASE" ]; then
  bout_t=$(median "${BOUT[@]}"); bun_t=$(median "${BUN[@]}"); bin_t=$(median "${BIN[@]}")
  echo "baseline $BASE, median of $REPS runs (seconds): patch $bout_t, unpatch $bun_t, patch --in-place $bin_t"
  echo "baseline out-of-place patch / cp+sync = $(ratio "$bout_t" "$cps_t"); unpatch / cp+sync = $(ratio "$bun_t" "$cps_t")"
  echo "baseline in-place patch / cp+sync     = $(pct "$bin_t" "$cps_t") %"
fi
echo "load at end: $(uptime)"
echo "(the model, copies and rws binary are in $DIR; remove it when done)"
