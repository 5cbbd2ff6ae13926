#!/usr/bin/env bash
# Lints template.yaml offline with cfn-lint and `sam validate --lint`, and the partner API's
# OpenAPI document (openapi.yaml) with openapi-spec-validator (tools from install-tools.sh).
# Exits non-zero on any error or warning of any.
#
#   infra/scripts/lint-template.sh [TEMPLATE]     (default: template.yaml at the repo root)
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
TEMPLATE="${1:-template.yaml}"
OPENAPI="openapi.yaml"

TOOLS_DIR="$(bash "$SCRIPT_DIR/install-tools.sh" | tail -n 1)"
VENV_BIN="$TOOLS_DIR/venv/bin"
if [ ! -x "$VENV_BIN/cfn-lint" ] || [ ! -x "$VENV_BIN/sam" ] || [ ! -x "$VENV_BIN/openapi-spec-validator" ]; then
  echo "[lint-template] cfn-lint, sam or openapi-spec-validator missing in $VENV_BIN" >&2
  exit 1
fi

# Offline: no telemetry, no update check, dummy credentials, a fixed region.
export SAM_CLI_TELEMETRY=0
export SAM_CLI_DISABLE_UPDATE_CHECK=1 # unknown to older sam versions; harmless
export AWS_ACCESS_KEY_ID=test
export AWS_SECRET_ACCESS_KEY=test
export AWS_DEFAULT_REGION=eu-west-3
export AWS_REGION=eu-west-3
export AWS_EC2_METADATA_DISABLED=true
unset AWS_PROFILE AWS_SESSION_TOKEN

cd "$REPO_ROOT"
[ -f "$TEMPLATE" ] || { echo "[lint-template] $REPO_ROOT/$TEMPLATE not found" >&2; exit 1; }

status=0
echo "[lint-template] cfn-lint $TEMPLATE" >&2
"$VENV_BIN/cfn-lint" --regions eu-west-3 -- "$TEMPLATE" || status=1

echo "[lint-template] sam validate --lint $TEMPLATE" >&2
# Its own venv first on PATH, so that any helper it spawns comes from the same venv.
PATH="$VENV_BIN:$PATH" "$VENV_BIN/sam" validate --lint --region eu-west-3 --template-file "$TEMPLATE" || status=1

echo "[lint-template] openapi-spec-validator $OPENAPI" >&2
[ -f "$OPENAPI" ] || { echo "[lint-template] $REPO_ROOT/$OPENAPI not found" >&2; exit 1; }
"$VENV_BIN/openapi-spec-validator" "$OPENAPI" || status=1

if [ "$status" -eq 0 ]; then
  echo "[lint-template] OK: $TEMPLATE passes cfn-lint and sam validate --lint, $OPENAPI openapi-spec-validator" >&2
else
  echo "[lint-template] FAILED" >&2
fi
exit "$status"
