# Shared helpers of the deploy checks (sourced). Each check installs what it
# needs when missing and skips, with a printed reason, only when it cannot.
# shellcheck shell=bash
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
WORK="${DEPLOY_WORK:-$ROOT/target/deploy-checks}"
mkdir -p "$WORK"

skip() { echo "SKIP: $*"; exit 0; }
fail() { echo "FAIL: $*" >&2; exit 1; }

# need_apt COMMAND PACKAGE: installs PACKAGE from Debian when COMMAND is missing.
need_apt() {
  command -v "$1" >/dev/null 2>&1 && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing $2"
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null 2>&1; then
      apt-get update -qq >/dev/null 2>&1 || true
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null 2>&1 || true
    fi
  fi
  command -v "$1" >/dev/null 2>&1
}

# venv: a Python virtualenv for the PyPI tools, shared by the checks.
VENV="$WORK/venv"
need_pip() {
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV" >/dev/null 2>&1 || return 1
  local missing=()
  for p in "$@"; do
    "$VENV/bin/pip" show -q "${p%%[=<>]*}" >/dev/null 2>&1 || missing+=("$p")
  done
  [ ${#missing[@]} = 0 ] && return 0
  echo "installing ${missing[*]} (PyPI)"
  "$VENV/bin/pip" install -q --disable-pip-version-check "${missing[@]}" >/dev/null 2>&1
}

# The release binary every check runs: static, built once by deploy/image/build.sh.
BIN="$WORK/customs"
need_binary() {
  [ -x "$BIN" ] || "$ROOT/deploy/image/build.sh" binary "$BIN"
}

# free_port: a free loopback TCP port (the kernel picks it).
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

# wait_for CMD...: polls CMD up to 30 s (bounded), for readiness signals.
wait_for() {
  local _
  for _ in $(seq 1 300); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  return 1
}

# start_upstream DIR: the stand-in partner API; sets UPSTREAM=127.0.0.1:PORT.
start_upstream() {
  rm -f "$1/upstream.port"
  python3 "$ROOT/deploy/ci/upstream.py" "$1/upstream.port" &
  PIDS+=($!)
  wait_for test -s "$1/upstream.port" || fail "the stand-in upstream did not start"
  UPSTREAM="127.0.0.1:$(cat "$1/upstream.port")"
}

# ci_config DIR AUDIT_PATH ROTATE: writes DIR/customs.yaml for UPSTREAM.
ci_config() {
  sed -e "s#@UPSTREAM@#$UPSTREAM#; s#@POLICIES@#$ROOT/policies#; s#@AUDIT@#$2#; s#@ROTATE@#$3#" \
    "$ROOT/deploy/ci/customs.yaml.in" >"$1/customs.yaml"
}

# Processes a check started; killed by id on exit.
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

# The demo key, published on purpose (README).
export DEMO_KEY='cst_demo_public_key_replace_me'
random_hex() { head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
