#!/usr/bin/env bash
# Where a claim's instructions go, counted (not timed): claim-intake and exchange-floor
# (a claim's HTTP exchanges and nothing else) under valgrind's callgrind, driven by
# lambda-bench as Lambda runs them (a Runtime API, DynamoDB Local, moto, the Intent
# simulator). Instruction counts repeat from run to run whatever else the machine does,
# where CPU times vary by a third; SHA-256 runs in software under valgrind (SHA-NI or the
# ARMv8 SHA instructions natively), so the signing's share is larger here than in a
# native profile.
#
#   infra/scripts/profile-claim.sh [LOW HIGH]
#
# Two runs, with LOW and HIGH warm claims (default 10 and 40): a warm claim is the
# difference of the two totals over HIGH - LOW, the start, first claim and exit what is
# left of the LOW run. Then the profile of the HIGH run: the workspace's own functions by
# inclusive cost, and every function by exclusive cost. Builds the functions with the
# `profiling` profile (release, symbols kept) into target/profiling; starts the emulators
# if they are not running (and stops them after). The callgrind files stay in
# target/profiling/callgrind/ for callgrind_annotate or kcachegrind.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
EMULATORS="$ROOT/infra/scripts/emulators.sh"
LOW="${1:-10}"
HIGH="${2:-40}"
log() { printf '[profile] %s\n' "$*" >&2; }

if [ "$HIGH" -le "$LOW" ]; then
  echo "usage: $0 [LOW HIGH] with LOW < HIGH" >&2
  exit 2
fi
for tool in valgrind callgrind_annotate; do
  command -v "$tool" >/dev/null 2>&1 || {
    echo "$tool is required (Debian: apt-get install valgrind)" >&2
    exit 1
  }
done

# The functions in one build, as lambda-bench builds them (their features unified with
# each other's only), then the floor.
log "building the functions and the floors (profile: profiling)"
cargo build --profile profiling -p claim-intake -p intervention-closure \
  -p document-forwarder -p oncall-closer -p exchange-floor --bins >&2
cargo build --profile profiling -p lambda-bench --bins >&2
BUILT="${CARGO_TARGET_DIR:-$ROOT/target}/profiling"

started_here=0
if [ "$("$EMULATORS" status 2>/dev/null | grep -c 'running.*ready' || true)" -lt 2 ]; then
  log "starting the emulators"
  "$EMULATORS" start >&2
  started_here=1
fi
OUT="$BUILT/callgrind"
BIN_DIR="$(mktemp -d)"
cleanup() {
  rm -rf "$BIN_DIR"
  if [ "$started_here" = 1 ]; then "$EMULATORS" stop >&2 || true; fi
}
trap cleanup EXIT
eval "$("$EMULATORS" env)"
rm -rf "$OUT" && mkdir -p "$OUT"

for binary in hello-lambda intervention-closure document-forwarder oncall-closer; do
  ln -s "$BUILT/$binary" "$BIN_DIR/$binary"
done

for requests in "$LOW" "$HIGH"; do
  # lambda-bench gives a function the environment Lambda would, not this one's: the run
  # is written into the wrapper.
  for binary in claim-intake exchange-floor; do
    cat >"$BIN_DIR/$binary" <<EOF
#!/bin/sh
exec valgrind --tool=callgrind --callgrind-out-file="$OUT/$binary.$requests.%p.out" "$BUILT/$binary" "\$@"
EOF
    chmod +x "$BIN_DIR/$binary"
  done
  log "lambda-bench with $requests warm claims, under callgrind"
  "$BUILT/lambda-bench" --no-build --skip-heavy \
    --only claim-intake --bin-dir "$BIN_DIR" --requests "$requests" --step-timeout 300 \
    >/dev/null
done

# The reports read only the head of callgrind_annotate's output.
set +o pipefail
total() {
  local files=("$OUT/$1.$2".*.out)
  callgrind_annotate "${files[0]}" 2>/dev/null | awk '/PROGRAM TOTALS/ && !done { gsub(",", "", $1); print $1; done = 1 }'
}

printf '\n| binary | warm request | start + first request + exit (%s-request run) |\n' "$LOW"
printf '| --- | ---: | ---: |\n'
declare -A warm
for binary in exchange-floor claim-intake; do
  low="$(total "$binary" "$LOW")"
  high="$(total "$binary" "$HIGH")"
  warm[$binary]=$(((high - low) / (HIGH - LOW)))
  rest=$((low - LOW * warm[$binary]))
  printf '| %s | %s instructions | %s instructions |\n' "$binary" "${warm[$binary]}" "$rest"
done
printf '\nA warm claim'"'"'s own work (claim-intake above exchange-floor): %s instructions\n' \
  "$((warm[claim-intake] - warm[exchange-floor]))"

claim_file=("$OUT/claim-intake.$HIGH".*.out)
printf '\nclaim-intake, the %s-request run (start, first claim, %s warm ones), the workspace'"'"'s\nfunctions by inclusive cost:\n\n' "$HIGH" "$HIGH"
callgrind_annotate --inclusive=yes --auto=no --threshold=100 "${claim_file[0]}" 2>/dev/null |
  grep -E "^ *[0-9,]+ \( *[0-9.]+%\)  ($ROOT/)?(shared|functions)/" | head -30 | cut -c1-220
printf '\nThe same run, every function by exclusive cost:\n\n'
callgrind_annotate --inclusive=no --auto=no --threshold=100 "${claim_file[0]}" 2>/dev/null |
  grep -E '^ *[0-9,]+ \( *[0-9.]+%\) ' | grep -v '(100.0%)' | head -30 | cut -c1-220
printf '\ncallgrind files: %s\n' "$OUT"
