#!/usr/bin/env bash
# The one test command (README, CI): installs what the tests need, starts the emulators
# (DynamoDB Local, moto server) with readiness probes, runs formatting, lint, every test
# of the workspace and the template checks, then stops the emulators it started.
#
#   infra/scripts/test.sh            everything
#   infra/scripts/test.sh -- ARGS    only `cargo test --workspace ARGS` (emulators still managed)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
EMULATORS="$ROOT/infra/scripts/emulators.sh"
log() { printf '\n[test] %s\n' "$*" >&2; }

# Stop at the end only what this run started: emulators a developer left running stay up.
started_here=1
status_before="$("$EMULATORS" status 2>/dev/null || true)"
if [ "$(grep -c 'running.*ready' <<<"$status_before")" -ge 2 ]; then
  started_here=0
fi
cleanup() {
  if [ "$started_here" = 1 ]; then
    "$EMULATORS" stop || true
  fi
}
trap cleanup EXIT

log "installing tools and starting emulators"
"$EMULATORS" start
eval "$("$EMULATORS" env)"

if [ "${1:-}" = "--" ]; then
  shift
  cargo test --workspace "$@"
  exit 0
fi

log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

# The benchmark is run on its own (`cargo run --release -p lambda-bench`), so without the
# features the tests' dev-dependencies turn on for the whole workspace above: its harness
# once used an in-memory adapter only the tests have, and only `cargo run` found out.
log "cargo check -p lambda-bench (its features alone, as the README runs it)"
cargo check -p lambda-bench

log "cargo test (unit and integration, against the emulators and the Intent simulator)"
cargo test --workspace

# The closer's benchmark is a binary lambda-bench runs, not a test: a smoke run on a few
# files keeps it working (it asserts every straggler closed; it once closed none for a
# week unseen, the run's clock being a week after the period's end).
log "closer-bench smoke run (20 files, no Intent latency)"
cargo run --quiet -p system-tests --bin closer-bench -- 20 0 >/dev/null

log "template lint (cfn-lint, sam validate --lint)"
"$ROOT/infra/scripts/lint-template.sh"

log "all checks passed"
