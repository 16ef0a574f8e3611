#!/usr/bin/env bash
# Runs every fuzzer for a bounded time and replays every reproducer kept in
# fuzz/regressions/ (each must run clean). What CI calls.
#
#   fuzz/run.sh SECONDS [--only native|control-socket] [--seed N]
#
# SECONDS is per fuzzer. native: the libFuzzer targets (fuzz/*_fuzz.cc, built
# by fuzz/build.sh; regressions in fuzz/regressions/<target>/, seeds in
# fuzz/corpus/<target>/, new corpus and crashes under build/fuzz/).
# control-socket: fuzz/control-socket-fuzz.ts against a real daemon and a real
# emulator (regressions: fuzz/regressions/control-socket/*.json).
# Ids listed in fuzz/known-findings are reported-but-unfixed findings the
# fuzzers step around (OFFPATH_FUZZ_STRICT=1 to include them).
#
# Exit status: 0 clean; 1 a finding or a failing regression; 3 only when
# --only native was asked for and no clang with libFuzzer is installed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

usage() {
  echo "usage: fuzz/run.sh SECONDS [--only native|control-socket] [--seed N]" >&2
  exit 64
}
[ $# -ge 1 ] || usage
seconds=$1
shift
[[ "$seconds" =~ ^[0-9]+$ ]] || usage
only=""
seed=""
while [ $# -gt 0 ]; do
  case "$1" in
    --only) [ $# -ge 2 ] || usage; only=$2; shift 2 ;;
    --seed) [ $# -ge 2 ] || usage; seed=$2; shift 2 ;;
    *) usage ;;
  esac
done
case "$only" in "" | native | control-socket) ;; *) usage ;; esac

if [ "${OFFPATH_FUZZ_STRICT:-0}" != 1 ] && [ -f fuzz/known-findings ]; then
  ids=$( (grep -v '^[[:space:]]*#' fuzz/known-findings || true) | awk 'NF { print $1 }' | paste -sd, -)
  if [ -n "$ids" ]; then
    export OFFPATH_FUZZ_IGNORE="${OFFPATH_FUZZ_IGNORE:+$OFFPATH_FUZZ_IGNORE,}$ids"
    echo "fuzz: known findings, not fixed yet (fuzz/known-findings): $ids"
  fi
fi

# Undefined behaviour already reported (a suppression per line, with its id
# in a comment above it).
if [ "${OFFPATH_FUZZ_STRICT:-0}" != 1 ] && [ -f fuzz/known-findings.ubsan ] && grep -qv '^[[:space:]]*\(#\|$\)' fuzz/known-findings.ubsan; then
  export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:suppressions=$root/fuzz/known-findings.ubsan${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
fi

failed=0
logs="$root/build/fuzz/logs"
mkdir -p "$logs"

run_native() {
  local rc=0
  "$root/fuzz/build.sh" >"$logs/build.log" 2>&1 || rc=$?
  if [ $rc -eq 3 ]; then
    echo "fuzz: native targets skipped: no clang++ with libFuzzer (Debian: apt-get install clang libclang-rt-14-dev)"
    return 3
  fi
  if [ $rc -ne 0 ]; then
    echo "fuzz: building the native targets failed:"
    tail -n 40 "$logs/build.log"
    failed=1
    return 0
  fi
  local bin name input log
  for bin in "$root"/build/fuzz/*_fuzz; do
    [ -x "$bin" ] || continue
    name=$(basename "$bin" _fuzz)
    log="$logs/$name.log"
    for input in "$root/fuzz/regressions/$name"/*; do
      [ -f "$input" ] || continue
      if "$bin" "$input" >"$log" 2>&1; then
        local note="" id
        for id in ${OFFPATH_FUZZ_IGNORE:+${OFFPATH_FUZZ_IGNORE//,/ }}; do
          case "$(basename "$input")" in "$id"*) note=" (known finding $id, not fixed yet: its check is off)" ;; esac
        done
        echo "fuzz: $name regression ${input#"$root"/} passes$note"
      else
        echo "fuzz: $name REGRESSION FAILS: ${input#"$root"/}"
        grep -a -m1 -A2 'FINDING\|ERROR: \|runtime error' "$log" || tail -n 20 "$log"
        failed=1
      fi
    done
    local work="$root/build/fuzz/corpus/$name" artifacts="$root/build/fuzz/artifacts/$name"
    mkdir -p "$work" "$artifacts"
    rc=0
    "$bin" -max_total_time="$seconds" -timeout=25 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$artifacts/" ${seed:+-seed=$seed} "$work" "$root/fuzz/corpus/$name" >"$log" 2>&1 || rc=$?
    local done_line executed
    done_line=$(grep -a 'DONE\|pulse' "$log" | tail -n 1 | sed 's/^#[0-9]*[[:space:]]*//')
    executed=$(grep -a 'stat::number_of_executed_units' "$log" | awk '{ print $2 }')
    if [ $rc -eq 0 ]; then
      echo "fuzz: $name ${seconds}s: ${executed:-?} executions, ${done_line:-no stats}; no findings"
    else
      echo "fuzz: $name FINDING after ${executed:-?} executions (reproducer in ${artifacts#"$root"/}/):"
      grep -a -m1 -A2 'FINDING\|ERROR: \|runtime error' "$log" || tail -n 30 "$log"
      grep -a 'Test unit written' "$log" || true
      failed=1
    fi
  done
  return 0
}

run_control_socket() {
  local replay out
  for replay in "$root"/fuzz/regressions/control-socket/*.json; do
    [ -f "$replay" ] || continue
    if out=$(node --import tsx fuzz/control-socket-fuzz.ts --replay "$replay" 2>&1); then
      echo "fuzz: control-socket regression ${replay#"$root"/}: ${out##*; }"
    else
      echo "fuzz: control-socket REGRESSION FAILS: ${replay#"$root"/}"
      echo "$out" | tail -n 5
      failed=1
    fi
  done
  if ! node --import tsx fuzz/control-socket-fuzz.ts --seconds "$seconds" ${seed:+--seed "$seed"}; then
    failed=1
  fi
}

native_rc=0
if [ "$only" != control-socket ]; then run_native || native_rc=$?; fi
if [ "$only" != native ]; then run_control_socket; fi
if [ $failed -ne 0 ]; then exit 1; fi
if [ "$only" = native ] && [ $native_rc -eq 3 ]; then exit 3; fi
exit 0
