#!/usr/bin/env bash
# Runs the libFuzzer targets of fuzz/ (ASan + UBSan, build-san) for a fixed time each.
#   scripts/fuzz.sh TARGET SECONDS [extra libFuzzer args]   one target (tokenizer or tokenizer_fuzz)
#   scripts/fuzz.sh all SECONDS [extra libFuzzer args]      every target (CI: 60 s each), FUZZ_JOBS
#                                                           at a time (default: the core count)
#   scripts/fuzz.sh list                                    the targets
# Builds what is missing or stale in build-san first (scripts/build_san.sh; FUZZ_NO_BUILD=1
# skips that). Each run works on a scratch corpus, build-san/fuzz-work/<target>/, seeded from the
# committed fuzz/corpus/<target>/ (the repository is never written), also reads
# fuzz/regressions/<target>/, uses fuzz/dict/<target>.dict, and writes crash / timeout / leak
# inputs to build-san/fuzz-artifacts/<target>/. A hang (one input over 10 s) is a finding.
# Prints one summary line per target (executions, exec/s, cov/ft from libFuzzer's last status
# line, corpus size, findings = artifacts written by this run) and, with FUZZ_SUMMARY=FILE, writes
# them as JSON lines to FILE. Exits non-zero if any target had a finding (or failed to run).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
BUILD_DIR="${BUILD_DIR:-build-san}"
TARGETS=(tokenizer safetensors model_config server_config experiment_config http http_json grpc)

usage() {
  sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

# "tokenizer_fuzz" or "tokenizer" -> "tokenizer" (exit 2 for an unknown name).
target_name() {
  local t="${1%_fuzz}"
  for known in "${TARGETS[@]}"; do [[ "$t" == "$known" ]] && { echo "$t"; return; }; done
  echo "unknown fuzz target '$1' (known: ${TARGETS[*]})" >&2
  exit 2
}

# The value of key `k` in libFuzzer's final stats (-print_final_stats=1) of log $1.
stat() { sed -n "s/^stat::$2: *//p" "$1" | tail -1; }

# run_target NAME SECONDS [args]: fuzzes one target, prints its summary line, returns 0 when
# there were no findings.
run_target() {
  local name="$1" seconds="$2"
  shift 2
  local bin="$BUILD_DIR/fuzz/${name}_fuzz"
  local work="$BUILD_DIR/fuzz-work/$name" artifacts="$BUILD_DIR/fuzz-artifacts/$name"
  local log="$BUILD_DIR/fuzz-work/$name.log" stamp="$BUILD_DIR/fuzz-work/$name.start"
  mkdir -p "$work" "$artifacts"
  cp -n "fuzz/corpus/$name"/* "$work"/ 2>/dev/null || true
  touch "$stamp"
  local dirs=("$work" "fuzz/corpus/$name")
  [[ -d "fuzz/regressions/$name" ]] && dirs+=("fuzz/regressions/$name")
  local dict=()
  [[ -f "fuzz/dict/$name.dict" ]] && dict=(-dict="fuzz/dict/$name.dict")
  echo "== $name: ${seconds}s (log $log)" >&2
  "$bin" "${dirs[@]}" "${dict[@]}" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 \
    -print_final_stats=1 -artifact_prefix="$artifacts/" "$@" >"$log" 2>&1
  local rc=$?
  local status_line execs eps cov ft corpus findings
  status_line="$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -1)"
  cov="$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$status_line")"
  ft="$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$status_line")"
  execs="$(stat "$log" number_of_executed_units)"
  eps="$(stat "$log" average_exec_per_sec)"
  corpus="$(find "$work" -maxdepth 1 -type f | wc -l)"
  findings="$(find "$artifacts" -maxdepth 1 -type f -newer "$stamp" | wc -l)"
  if [[ $rc -ne 0 && $findings -eq 0 ]]; then
    findings=1  # it stopped without an artifact (setup failed, killed): count it, show the log
    tail -20 "$log" >&2
  fi
  printf '%-18s %5ss  execs %9s  exec/s %6s  cov %6s  ft %7s  corpus %6s  findings %s\n' \
    "$name" "$seconds" "${execs:-?}" "${eps:-?}" "${cov:-?}" "${ft:-?}" "$corpus" "$findings"
  if [[ -n "${FUZZ_SUMMARY:-}" ]]; then
    printf '{"target":"%s","seconds":%s,"executions":%s,"exec_per_sec":%s,"cov":%s,"ft":%s,"corpus":%s,"findings":%s,"exit_code":%s}\n' \
      "$name" "$seconds" "${execs:-null}" "${eps:-null}" "${cov:-null}" "${ft:-null}" "$corpus" \
      "$findings" "$rc" >>"$FUZZ_SUMMARY"
  fi
  if [[ $findings -gt 0 ]]; then
    find "$artifacts" -maxdepth 1 -type f -newer "$stamp" | sed 's/^/  finding: /' >&2
    grep -m3 -E 'ERROR: |runtime error|invariant violated|Test unit written' "$log" | sed 's/^/  /' >&2
    return 1
  fi
  return 0
}

[[ $# -ge 1 ]] || usage
if [[ "$1" == "list" ]]; then
  printf '%s\n' "${TARGETS[@]}"
  exit 0
fi
[[ $# -ge 2 && "$2" =~ ^[0-9]+$ ]] || usage
what="$1" seconds="$2"
shift 2
if [[ "$what" == "all" ]]; then
  names=("${TARGETS[@]}")
else
  names=("$(target_name "$what")") || exit 2
fi

if [[ "${FUZZ_NO_BUILD:-0}" != 1 ]]; then
  bash scripts/build_san.sh --target "${names[@]/%/_fuzz}" >/dev/null || {
    echo "build of ${names[*]} failed (BUILD_DIR=$BUILD_DIR)" >&2
    exit 2
  }
fi
[[ -n "${FUZZ_SUMMARY:-}" ]] && : >"$FUZZ_SUMMARY"
# Leaks are findings; UBSan reports already abort (-fno-sanitize-recover=undefined).
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

# Targets run FUZZ_JOBS at a time (default: one per core; each libFuzzer run uses one).
jobs_max="${FUZZ_JOBS:-$(nproc)}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
for i in "${!names[@]}"; do
  while [[ $(jobs -rp | wc -l) -ge $jobs_max ]]; do wait -n || true; done
  (
    run_target "${names[$i]}" "$seconds" "$@" >"$out/$i.line"
    echo $? >"$out/$i.rc"
  ) &
done
wait
failed=0
lines=()
for i in "${!names[@]}"; do
  lines+=("$(cat "$out/$i.line")")
  [[ "$(cat "$out/$i.rc" 2>/dev/null)" == 0 ]] || failed=1
  [[ ${#names[@]} -eq 1 ]] && echo "${lines[-1]}"
done
if [[ ${#names[@]} -gt 1 ]]; then
  echo
  echo "fuzz summary ($seconds s per target, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)):"
  printf '%s\n' "${lines[@]}"
fi
exit $failed
