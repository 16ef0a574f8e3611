#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/*_fuzz.cc) into build/fuzz/, each linked
# with the emulator's native sources -- without the N-API binding files, so a
# target runs the emulator in-process, no Node.js involved.
#
#   fuzz/build.sh              # build (incremental)
#   fuzz/build.sh --coverage   # a source-coverage build in build/fuzz-cov/
#                              # (no sanitizers; for llvm-cov, see fuzz/README.md)
#
# Environment: CXX (a clang++ with libFuzzer; otherwise clang++, clang++-19 ...
# clang++-14 are tried), OFFPATH_FUZZ_OUT (default build/fuzz),
# OFFPATH_FUZZ_JOBS (parallel compiles, default 2).
# Exit status: 0 built; 3 no clang with libFuzzer here (callers skip, and say
# why); anything else is a build failure.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
coverage=0
if [ "${1:-}" = --coverage ]; then coverage=1; fi
if [ $coverage -eq 1 ]; then default_out=$root/build/fuzz-cov; else default_out=$root/build/fuzz; fi
out=${OFFPATH_FUZZ_OUT:-$default_out}
jobs=${OFFPATH_FUZZ_JOBS:-2}
mkdir -p "$out/obj"

# A clang++ that links -fsanitize=fuzzer (Debian: clang + libclang-rt-NN-dev).
probe_dir=$(mktemp -d)
trap 'rm -rf "$probe_dir"' EXIT
printf '#include <cstddef>\n#include <cstdint>\nextern "C" int LLVMFuzzerTestOneInput(const uint8_t*, size_t) { return 0; }\n' >"$probe_dir/probe.cc"
cxx=""
for candidate in ${CXX:-} clang++ clang++-19 clang++-18 clang++-17 clang++-16 clang++-15 clang++-14; do
  command -v "$candidate" >/dev/null 2>&1 || continue
  if "$candidate" -fsanitize=fuzzer,address,undefined "$probe_dir/probe.cc" -o "$probe_dir/probe" >/dev/null 2>&1; then
    cxx=$candidate
    break
  fi
done
if [ -z "$cxx" ]; then
  echo "fuzz/build.sh: no clang++ with libFuzzer found (Debian: apt-get install clang libclang-rt-14-dev)" >&2
  exit 3
fi

includes=(-I"$root/addon/include" -I"$root/emulator/native")
# UBSan checks stay recoverable so that fuzz/known-findings.ubsan can
# suppress a reported one; the harness sets halt_on_error=1, so every other
# report still stops the run.
flags=(-std=c++17 -g -O1 -fno-omit-frame-pointer -D_GNU_SOURCE "${includes[@]}"
  -fsanitize=address,undefined)
if [ $coverage -eq 1 ]; then
  flags=(-std=c++17 -g -O1 -D_GNU_SOURCE "${includes[@]}" -fprofile-instr-generate -fcoverage-mapping)
fi

# The emulator's sources, minus the N-API side: the binding files by name,
# and anything whose includes need napi.h (the preprocessor cannot find it
# here, which is the test).
sources=()
for source in "$root"/emulator/native/*.cc; do
  name=$(basename "$source")
  case "$name" in
    *_binding.cc | store_config_js.cc | bench_client.cc) continue ;;
  esac
  if ! deps=$("$cxx" -std=c++17 "${includes[@]}" -MM "$source" 2>/dev/null) || grep -q 'napi\.h' <<<"$deps"; then
    echo "fuzz/build.sh: leaving out $name (needs N-API)" >&2
    continue
  fi
  sources+=("$source")
done

# Rebuilds an object when it is missing or older than anything it includes.
stale() {
  local object=$1 depfile=$1.d dep
  [ -f "$object" ] && [ -f "$depfile" ] || return 0
  [ "$0" -nt "$object" ] && return 0
  for dep in $(sed -e 's/^[^:]*://' -e 's/\\$//' "$depfile"); do
    [ "$dep" -nt "$object" ] && return 0
  done
  return 1
}

compile() {  # compile SOURCE OBJECT EXTRA-FLAGS...
  local source=$1 object=$2
  shift 2
  "$cxx" "${flags[@]}" "$@" -MMD -MF "$object.d" -c "$source" -o "$object"
}

pids=()
wait_one() {
  local pid=${pids[0]}
  pids=("${pids[@]:1}")
  wait "$pid"
}

objects=()
for source in "${sources[@]}"; do
  object="$out/obj/$(basename "${source%.cc}").o"
  objects+=("$object")
  if stale "$object"; then
    compile "$source" "$object" -fsanitize=fuzzer-no-link &
    pids+=($!)
    [ ${#pids[@]} -ge "$jobs" ] && wait_one
  fi
done
while [ ${#pids[@]} -gt 0 ]; do wait_one; done
# Objects of sources that are gone must not linger in the link.
for object in "$out"/obj/*.o; do
  [ -e "$object" ] || continue
  case "$object" in *.target.o) continue ;; esac
  case " ${objects[*]} " in *" $object "*) ;; *) rm -f "$object" "$object.d" ;; esac
done

for target in "$root"/fuzz/*_fuzz.cc; do
  name=$(basename "${target%.cc}")
  object="$out/obj/$name.target.o"
  if stale "$object"; then compile "$target" "$object" -fsanitize=fuzzer; fi
  # --wrap: the harness puts guard pages around every mapping the emulator makes.
  "$cxx" "${flags[@]}" -fsanitize=fuzzer "$object" "${objects[@]}" \
    -Wl,--wrap=mmap -Wl,--wrap=munmap -lpthread -o "$out/$name"
  echo "built $out/$name ($cxx)"
done
