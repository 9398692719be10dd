#!/usr/bin/env bash
# Long fuzzing runs of every libFuzzer target (issue 19; docs/fuzzing.md).
#
#   platform/fuzz.sh [--jobs N] [--no-build] [--no-merge] [SECONDS] [TARGET...]
#   (also: platform/dev.sh fuzz ...)
#
# Builds the `fuzz` preset (clang-14, -fsanitize=fuzzer,address,undefined),
# then runs each target (default: every tests/fuzz/*_fuzz.cc, discovered, not
# listed) for SECONDS (default 600) under `nice -n 19`, one at a time (--jobs
# N: N at once; the machines here have 2 cores shared with others).
#
# The corpus lives in the tree: tests/fuzz/corpus/TARGET/ is read, never
# written by the run itself (new inputs go to a scratch dir under
# build/fuzz/fuzz-work/TARGET/); afterwards `-merge=1` keeps only the scratch
# inputs that add coverage to the in-tree corpus, smallest first, at most
# EDGESPOOL_FUZZ_MAX_NEW (200) files and EDGESPOOL_FUZZ_MAX_BYTES (128 KiB)
# per target and run, each at most EDGESPOOL_FUZZ_MAX_FILE (4096) bytes, so
# the corpus stays small. --no-merge skips
# that (a run that must not touch the tree).
#
# Prints (and writes to build/fuzz/fuzz-work/summary.md) a table per target:
# executions, libFuzzer's coverage at the end of the run (cov: edges, ft:
# features), the in-tree corpus's coverage before and after the merge
# (a -runs=0 pass over it: reproducible by anyone from the tree) and the
# result. A crash, leak, timeout or OOM leaves its input in the work dir
# (crash-*, leak-*, ...) and makes the exit status 1; the other targets still run.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BUILD="$ROOT/build/fuzz"
WORK="$BUILD/fuzz-work"
MAX_NEW="${EDGESPOOL_FUZZ_MAX_NEW:-200}"
MAX_FILE="${EDGESPOOL_FUZZ_MAX_FILE:-4096}"
MAX_BYTES="${EDGESPOOL_FUZZ_MAX_BYTES:-131072}"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

secs=600 secs_set=0 jobs=1 build=1 merge=1 targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --jobs) jobs="$2"; shift ;;
    --jobs=*) jobs="${1#--jobs=}" ;;
    --no-build) build=0 ;;
    --no-merge) merge=0 ;;
    -h|--help) sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "fuzz: unknown option $1" >&2; exit 64 ;;
    *)
      if [[ "$1" =~ ^[0-9]+$ ]] && [ ${#targets[@]} -eq 0 ] && [ "$secs_set" -eq 0 ]; then
        secs="$1" secs_set=1
      else
        targets+=("${1%.cc}")
      fi ;;
  esac
  shift
done
[[ "$jobs" =~ ^[1-9][0-9]*$ ]] || { echo "fuzz: --jobs wants a positive number" >&2; exit 64; }

all=()
for src in tests/fuzz/*_fuzz.cc; do all+=("$(basename "$src" .cc)"); done
if [ ${#targets[@]} -eq 0 ]; then
  targets=("${all[@]}")
else
  for t in "${targets[@]}"; do
    [ -f "tests/fuzz/$t.cc" ] || { echo "fuzz: no target $t (have: ${all[*]})" >&2; exit 64; }
  done
fi

if [ "$build" -eq 1 ]; then
  command -v clang++-14 >/dev/null || { echo "fuzz: clang-14 missing (platform/dev.sh deps)" >&2; exit 69; }
  log "build: preset fuzz, ${#targets[@]} targets"
  # CI builds with gcc and -Werror; a warning only clang-14 gives must not
  # stop a fuzzing run (it is reported, and fixed in the code, not here).
  cmake --preset fuzz -DEDGESPOOL_WERROR=OFF >/dev/null
  cmake --build --preset fuzz -j "$(nproc)" --target "${targets[@]}"
fi
mkdir -p "$WORK"

# "cov: N ft: M" of the last status line of a libFuzzer log (INITED/DONE/...).
cov_of() { grep -aoE 'cov: [0-9]+ ft: [0-9]+' "$1" | tail -1 | awk '{print $2 " / " $4}'; }
count_files() { find "$1" -maxdepth 1 -type f | wc -l; }

# The in-tree corpus's coverage: run every input once, no mutation.
corpus_cov() {
  local bin="$1" dir="$2" log="$3"
  nice -n 19 "$bin" -runs=0 -rss_limit_mb=2048 "$dir" >"$log" 2>&1 || true
  cov_of "$log"
}

fuzz_one() {
  set +e  # a subshell of its own: a failing grep must not end it early
  local t="$1" bin="$BUILD/tests/fuzz/$1" dir="$WORK/$1" corpus="$ROOT/tests/fuzz/corpus/$1"
  [ -x "$bin" ] || { echo "| $t | - | - | - | - | - | not built |" >"$WORK/$t.row"; return 0; }
  rm -rf "$dir"; mkdir -p "$dir/new" "$corpus"
  local before; before="$(corpus_cov "$bin" "$corpus" "$dir/before.log")"
  log "$t: ${secs}s (corpus: $(count_files "$corpus") files, cov/ft $before)"
  local rc=0
  # New inputs land in the first dir (scratch); the in-tree one is only read.
  nice -n 19 "$bin" -max_total_time="$secs" -print_final_stats=1 -timeout=10 \
    -rss_limit_mb=2048 -artifact_prefix="$dir/" "$dir/new" "$corpus" >"$dir/run.log" 2>&1 || rc=$?
  local end execs rate result added=0
  end="$(cov_of "$dir/run.log")"
  execs="$(grep -aoE 'stat::number_of_executed_units: +[0-9]+' "$dir/run.log" | awk '{print $2}')"
  rate="$(grep -aoE 'stat::average_exec_per_sec: +[0-9]+' "$dir/run.log" | awk '{print $2}')"
  if [ "$rc" -eq 0 ]; then
    result="ok"
  else
    local art; art="$(cd "$dir" && ls -1 crash-* leak-* timeout-* oom-* slow-unit-* 2>/dev/null | head -1 || true)"
    result="**finding** (exit $rc${art:+, $dir/$art}; see $dir/run.log)"
  fi
  if [ "$merge" -eq 1 ]; then
    # Merge into a copy of the corpus; the files it adds are the candidates.
    rm -rf "$dir/stage"; cp -r "$corpus" "$dir/stage"
    nice -n 19 "$bin" -merge=1 -timeout=10 -rss_limit_mb=2048 "$dir/stage" "$dir/new" \
      >"$dir/merge.log" 2>&1 || true
    local f size bytes=0
    while read -r size f; do
      [ "$added" -ge "$MAX_NEW" ] && break
      [ $((bytes + size)) -gt "$MAX_BYTES" ] && break
      cp "$dir/stage/$f" "$corpus/$f"; added=$((added + 1)); bytes=$((bytes + size))
    done < <(cd "$dir/stage" && for f in *; do
               [ -e "$corpus/$f" ] && continue
               s=$(stat -c %s "$f"); [ "$s" -le "$MAX_FILE" ] && echo "$s $f"
             done | sort -n)
  fi
  local after; after="$(corpus_cov "$bin" "$corpus" "$dir/after.log")"
  echo "| $t | $secs | ${execs:-?} | ${rate:-?} | ${end:-?} | $before -> $after | $(count_files "$corpus") (+$added) | $result |" \
    >"$WORK/$t.row"
  log "$t: done: cov/ft ${end:-?}, corpus +$added, $result"
  [ "$rc" -eq 0 ]
}

failed=0 running=0
for t in "${targets[@]}"; do
  rm -f "$WORK/$t.row"
  fuzz_one "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    wait -n || failed=1
    running=$((running - 1))
  fi
done
while [ "$running" -gt 0 ]; do wait -n || failed=1; running=$((running - 1)); done

{
  echo "fuzzing: $(date -u +%FT%TZ), $(git rev-parse --short HEAD 2>/dev/null || echo '?'), ${secs}s per target, $jobs at once, nice 19"
  echo
  echo "| target | seconds | executions | exec/s | end of run: cov / ft | in-tree corpus cov / ft: before -> after | corpus files (added) | result |"
  echo "|---|---|---|---|---|---|---|---|"
  for t in "${targets[@]}"; do cat "$WORK/$t.row" 2>/dev/null || echo "| $t | - | - | - | - | - | - | no result |"; done
} >"$WORK/summary.md"
cat "$WORK/summary.md"
exit "$failed"
