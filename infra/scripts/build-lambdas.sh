#!/usr/bin/env bash
# Builds the four Lambda functions as they are deployed: release, arm64 (Graviton,
# `provided.al2023`), cross-compiled by cargo-lambda with Zig as the linker, then prints
# each `bootstrap`'s size. The tools come from install-tools.sh (pinned); the toolchain and
# its aarch64 target from rust-toolchain.toml.
#
#   infra/scripts/build-lambdas.sh            all four, into $CARGO_TARGET_DIR/lambda/<function>/bootstrap
#   infra/scripts/build-lambdas.sh --x86-64   the same for x86_64 (to compare sizes)
#
# `sam build` runs the same cargo-lambda per function (template.yaml's BuildMethod
# rust-cargolambda); this script builds the four in one cargo invocation (one feature
# resolution, each dependency compiled once), which is what CI runs.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
FUNCTIONS=(claim-intake intervention-closure document-forwarder oncall-closer)
log() { printf '[build-lambdas] %s\n' "$*" >&2; }

# ELF e_machine: 183 is aarch64, 62 is x86_64.
arch_flag="--arm64"
arch="arm64"
elf_machine=183
if [ "${1:-}" = "--x86-64" ]; then
  arch_flag="--x86-64"
  arch="x86_64"
  elf_machine=62
fi

bash infra/scripts/install-tools.sh >/dev/null
PATH="$(bash infra/scripts/install-tools.sh --path):$PATH"
export PATH

packages=()
for function in "${FUNCTIONS[@]}"; do packages+=(-p "$function"); done
log "cargo lambda build --release $arch_flag ${packages[*]}"
cargo lambda build --release "$arch_flag" "${packages[@]}"

target_dir="${CARGO_TARGET_DIR:-$ROOT/target}"
log "release binaries ($arch):"
status=0
for function in "${FUNCTIONS[@]}"; do
  binary="$target_dir/lambda/$function/bootstrap"
  if [ ! -f "$binary" ]; then
    log "  $function: missing ($binary)"
    status=1
    continue
  fi
  machine="$(od -An -t u2 -j 18 -N 2 "$binary" | tr -d ' ')"
  if [ "$machine" != "$elf_machine" ]; then
    log "  $function: not an $arch executable (ELF machine $machine)"
    status=1
    continue
  fi
  bytes="$(stat -c %s "$binary")"
  printf '[build-lambdas]   %-22s %6.2f MiB  %10d bytes\n' "$function" \
    "$(awk "BEGIN { print $bytes / 1048576 }")" "$bytes" >&2
done
exit "$status"
