#!/usr/bin/env bash
# Load benchmark (issue 3 "Bar"; ratios for issues 4 and 5).
#
# Interleaved in one run, with wrk on loopback: direct-to-upstream, nginx as a
# plain reverse proxy, customs `pass`, customs `incident-inbound`, and at 16 KB
# also nginx writing a JSON access log, customs `pass` with API-key auth and
# with audit to /dev/null, and customs `pass` while two more connections pull
# 256 KB exports through the incident policy (isolation of light crossings).
# Upstream: nginx serving ~1 KB, 16 KB and 256 KB incident exports, and a
# 64 MB one (issue 17: a large `pass` download streamed through; nginx and
# customs `pass` only, with CPU per byte and each proxy's peak RSS).
# Beside req/s and latency, each run reports the CPU time of the proxy's own
# processes per request (utime + stime from /proc over the run, divided by the
# requests wrk counted): on a shared 2-core box far steadier than req/s.
# Then an abuse row: 150 concurrent slow 9 MiB uploads to a governed route,
# reporting customs' peak RSS and how many were refused (503 overloaded).
# Prints a markdown table for the README.
#
# Env: LOAD_DURATION (s, 10), LOAD_ROUNDS (3), LOAD_CONNECTIONS (16),
#      LOAD_THREADS (2), LOAD_WARMUP (s per target and size, 2; 0 = none),
#      LOAD_SIZES ("1k 16k 256k 64m"; 16k is required for the access-log, auth
#      and audit rows),
#      CUSTOMS_BIN (skip the build), LOAD_KEEP (dir to copy raw results to),
#      LOAD_BARE=1 (also a bare hyper proxy, examples/bare_proxy.rs: the
#      floor of customs' stack without policy, audit, auth or metrics),
#      LOAD_ABUSE_UPLOADS (150; 0 = no abuse row),
#      LOAD_BIG_CONNECTIONS (4: connections for the 64 MB row, each request
#      taking seconds; wrk's timeout there is 60 s).
set -euo pipefail

DURATION=${LOAD_DURATION:-10}
ROUNDS=${LOAD_ROUNDS:-3}
CONNS=${LOAD_CONNECTIONS:-16}
THREADS=${LOAD_THREADS:-2}
WARMUP=${LOAD_WARMUP:-2}
read -ra SIZES <<<"${LOAD_SIZES:-1k 16k 256k 64m}"

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HERE="$ROOT/benches/load"

log() { printf '[load] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# --- tools -------------------------------------------------------------------
missing=()
for tool in wrk nginx curl python3; do
    command -v "$tool" >/dev/null || missing+=("$tool")
done
if ((${#missing[@]})); then
    if [[ $(id -u) -eq 0 ]]; then
        log "installing ${missing[*]}"
        timeout 600 apt-get install -y "${missing[@]}" >/dev/null \
            || { timeout 300 apt-get update >/dev/null && timeout 600 apt-get install -y "${missing[@]}" >/dev/null; }
    else
        die "missing ${missing[*]}; run: sudo apt-get install -y ${missing[*]}"
    fi
fi
NGINX=$(command -v nginx)

# --- build -------------------------------------------------------------------
BIN=${CUSTOMS_BIN:-$ROOT/target/release/customs}
if [[ -z ${CUSTOMS_BIN:-} ]]; then
    if [[ ! -x $BIN ]] || [[ -n $(find "$ROOT/src" "$ROOT/Cargo.toml" "$ROOT/Cargo.lock" -newer "$BIN" -print -quit) ]]; then
        log "building customs (release)"
        (cd "$ROOT" && timeout 3600 cargo build --release --bin customs) >&2
    fi
fi
[[ -x $BIN ]] || die "no customs binary at $BIN"

# --- temp dir and cleanup ----------------------------------------------------
WORK=$(mktemp -d /tmp/customs-load.XXXXXX)
chmod 755 "$WORK" # nginx workers run as nobody when started by root
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do
        timeout 10 tail --pid="$pid" -f /dev/null 2>/dev/null || kill -9 "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Waits up to 20 s for a TCP port to accept.
wait_port() {
    local i
    for ((i = 0; i < 200; i++)); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    return 1
}

# --- payloads ----------------------------------------------------------------
mkdir -p "$WORK/data"
python3 "$HERE/gen_json.py" "$WORK/data" 1k=1024 16k=16384 256k=262144
if [[ " ${SIZES[*]} " == *" 64m "* ]]; then
    python3 "$HERE/gen_json.py" "$WORK/data" 64m=67108864
fi
chmod 644 "$WORK"/data/*.json

# --- nginx: upstream and reverse proxy ---------------------------------------
nginx_conf() { # dir port server-block
    cat <<EOF
worker_processes auto;
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path $1/tmp/body;
    proxy_temp_path $1/tmp/proxy;
    fastcgi_temp_path $1/tmp/fastcgi;
    uwsgi_temp_path $1/tmp/uwsgi;
    scgi_temp_path $1/tmp/scgi;
$3
}
EOF
}

declare -A PROC # target group -> pid of its (master) process
start_nginx() { # name port server-block
    local dir="$WORK/$1"
    mkdir -p "$dir/tmp"
    nginx_conf "$dir" "$2" "$3" >"$dir/nginx.conf"
    "$NGINX" -p "$dir/" -c "$dir/nginx.conf" -e "$dir/error.log" -g 'daemon off;' \
        >"$dir/stdout.log" 2>&1 &
    PIDS+=("$!")
    PROC[$1]=$!
    wait_port "$2" || die "nginx $1 did not start: $(cat "$dir/error.log" 2>/dev/null)"
}

UP_PORT=$(free_port)
start_nginx upstream "$UP_PORT" "    types { }
    default_type application/json;
    server { listen 127.0.0.1:$UP_PORT; root $WORK/data; }"

NGX_PORT=$(free_port)
start_nginx proxy "$NGX_PORT" "    upstream up { server 127.0.0.1:$UP_PORT; keepalive 32; keepalive_requests 1000000; }
    server {
        listen 127.0.0.1:$NGX_PORT;
        location / {
            proxy_pass http://up;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
        }
    }"

# The same proxy writing one JSON access-log line per request: the nearest
# thing nginx has to customs' crossing log (which customs cannot turn off).
NGX_LOG_PORT=$(free_port)
start_nginx proxy-log "$NGX_LOG_PORT" "    upstream up { server 127.0.0.1:$UP_PORT; keepalive 32; keepalive_requests 1000000; }
    log_format crossing escape=json '{\"ts\":\"\$time_iso8601\",\"request_id\":\"\$request_id\",'
        '\"method\":\"\$request_method\",\"path\":\"\$uri\",\"status\":\$status,'
        '\"upstream_status\":\"\$upstream_status\",\"bytes_out\":\$body_bytes_sent,'
        '\"duration\":\$request_time}';
    server {
        listen 127.0.0.1:$NGX_LOG_PORT;
        access_log $WORK/proxy-log/access.jsonl crossing;
        location / {
            proxy_pass http://up;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
        }
    }"

# --- customs -----------------------------------------------------------------
cp -r "$ROOT/policies" "$WORK/policies"
CUSTOMS_HASH_KEY=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
export CUSTOMS_HASH_KEY
API_KEY=cst_bench_$(python3 -c 'import secrets; print(secrets.token_hex(16))')
API_HASH=$(printf '%s' "$API_KEY" | sha256sum | cut -d' ' -f1)
TODAY=$(date -u +%F)

integration() { # name response-policy [clients-yaml]
    cat <<EOF
  - name: $1
    owner: bench@example.com
    classification: internal
    boundary: internal
    reviewed: $TODAY
    expires: 2099-12-31
    upstream: { url: "http://127.0.0.1:$UP_PORT" }
${3:-    anonymous: true}
    routes:
      - { id: get, methods: [GET], path: "/**", request: pass, response: $2 }
EOF
}

customs_conf() { # audit-path integrations...
    cat <<EOF
listen: { address: "127.0.0.1:0" }
admin: { address: "127.0.0.1:0" }
policies: policies/
audit: { path: "$1" }
secrets: { hash_key: "\${env:CUSTOMS_HASH_KEY}" }
integrations:
EOF
    shift
    printf '%s\n' "$@"
}

# Starts customs with config $2; sets CUSTOMS_PORT and CUSTOMS_PID.
start_customs() { # name config-text
    local dir="$WORK" i
    printf '%s\n' "$2" >"$dir/$1.yaml"
    "$BIN" serve --config "$dir/$1.yaml" >"$dir/$1.out" 2>"$dir/$1.err" &
    CUSTOMS_PID=$!
    PIDS+=("$CUSTOMS_PID")
    for ((i = 0; i < 300; i++)); do
        if grep -q '^ready ' "$dir/$1.out" 2>/dev/null; then break; fi
        kill -0 "$CUSTOMS_PID" 2>/dev/null || die "customs $1 exited: $(cat "$dir/$1.err")"
        sleep 0.1
    done
    CUSTOMS_PORT=$(sed -n 's/^ready proxy=127\.0\.0\.1:\([0-9]*\).*/\1/p' "$dir/$1.out")
    [[ -n $CUSTOMS_PORT ]] || die "customs $1 not ready: $(cat "$dir/$1.err")"
}

start_customs main "$(customs_conf "$WORK/audit/crossings.jsonl" \
    "$(integration pass pass)" \
    "$(integration incident incident-inbound)" \
    "$(integration auth pass "    clients:
      - { id: bench, api_key: \"sha256:$API_HASH\", expires: 2099-12-31 }")")"
MAIN_PORT=$CUSTOMS_PORT MAIN_PID=$CUSTOMS_PID
PROC[main]=$MAIN_PID
start_customs audit-off "$(customs_conf /dev/null "$(integration pass pass)")"
OFF_PORT=$CUSTOMS_PORT OFF_PID=$CUSTOMS_PID
PROC[audit-off]=$OFF_PID

BARE=()
if [[ ${LOAD_BARE:-0} == 1 ]]; then
    (cd "$ROOT" && timeout 3600 cargo build --release --example bare_proxy) >&2
    "$ROOT/target/release/examples/bare_proxy" 127.0.0.1:0 "http://127.0.0.1:$UP_PORT" >"$WORK/bare.out" 2>&1 &
    PIDS+=("$!")
    PROC[bare]=$!
    for ((i = 0; i < 100; i++)); do grep -q '^ready ' "$WORK/bare.out" && break; sleep 0.1; done
    BARE_PORT=$(sed -n 's/^ready proxy=127\.0\.0\.1:\([0-9]*\).*/\1/p' "$WORK/bare.out")
    [[ -n $BARE_PORT ]] || die "bare proxy not ready: $(cat "$WORK/bare.out")"
    BARE=(hyper-bare)
fi

# --- targets -----------------------------------------------------------------
targets_for() { # size
    if [[ $1 == 64m ]]; then
        # A bare proxy that buffers whole bodies has no place here.
        echo direct nginx customs-pass
    elif [[ $1 == 16k ]]; then
        echo direct nginx nginx-log "${BARE[@]}" customs-pass customs-incident customs-pass-auth customs-pass-audit-off customs-pass-beside-exports
    else
        echo direct nginx "${BARE[@]}" customs-pass customs-incident
    fi
}

url_for() { # target size
    case $1 in
        direct) echo "http://127.0.0.1:$UP_PORT/$2.json" ;;
        nginx) echo "http://127.0.0.1:$NGX_PORT/$2.json" ;;
        nginx-log) echo "http://127.0.0.1:$NGX_LOG_PORT/$2.json" ;;
        hyper-bare) echo "http://127.0.0.1:$BARE_PORT/$2.json" ;;
        customs-pass | customs-pass-beside-exports) echo "http://127.0.0.1:$MAIN_PORT/pass/$2.json" ;;
        customs-incident) echo "http://127.0.0.1:$MAIN_PORT/incident/$2.json" ;;
        customs-pass-auth) echo "http://127.0.0.1:$MAIN_PORT/auth/$2.json" ;;
        customs-pass-audit-off) echo "http://127.0.0.1:$OFF_PORT/pass/$2.json" ;;
        *) die "unknown target $1" ;;
    esac
}

# The processes whose CPU time a target's requests cost: the proxy (its master
# and workers), or the upstream nginx for `direct`.
proc_for() { # target
    case $1 in
        direct) echo "${PROC[upstream]}" ;;
        nginx) echo "${PROC[proxy]}" ;;
        nginx-log) echo "${PROC[proxy-log]}" ;;
        hyper-bare) echo "${PROC[bare]}" ;;
        customs-pass-audit-off) echo "${PROC[audit-off]}" ;;
        customs-*) echo "${PROC[main]}" ;;
    esac
}

# utime + stime in clock ticks of a process and its children (nginx workers).
cpu_ticks() { # pid
    local total=0 pid fields
    for pid in "$1" $(pgrep -P "$1"); do
        [[ -r /proc/$pid/stat ]] || continue
        read -ra fields < <(sed 's/^.*) //' "/proc/$pid/stat")
        total=$((total + fields[11] + fields[12]))
    done
    echo "$total"
}

headers_for() { # target
    if [[ $1 == customs-pass-auth ]]; then printf '%s\n' -H "X-Api-Key: $API_KEY"; fi
}

# --- sanity: every target answers 200 with the expected body ----------------
for size in "${SIZES[@]}"; do
    for target in $(targets_for "$size"); do
        mapfile -t hdr < <(headers_for "$target")
        body="$WORK/check.json"
        code=$(curl -sS --max-time 10 -o "$body" -w '%{http_code}' "${hdr[@]}" "$(url_for "$target" "$size")")
        [[ $code == 200 ]] || die "$target $size: HTTP $code: $(head -c 300 "$body")"
        if [[ $target == customs-incident ]]; then
            ! grep -q -e 'internal_notes' -e '4111 1111 1111 1111' "$body" \
                || die "incident policy did not apply at $size"
        else
            cmp -s "$body" "$WORK/data/$size.json" || die "$target $size: body differs from the file"
        fi
    done
done
code=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' "$(url_for customs-pass-auth 16k)")
[[ $code == 401 || $code == 403 ]] || die "auth integration admitted a request without a key ($code)"

# --- measure -----------------------------------------------------------------
run_wrk() { # target size seconds outfile
    local hdr beside=
    mapfile -t hdr < <(headers_for "$1")
    if [[ $1 == customs-pass-beside-exports ]]; then
        timeout $(($3 + 30)) wrk -t1 -c2 -d"$(($3 + 1))s" --timeout 5s \
            "$(url_for customs-incident 256k)" >"$4.exports" 2>&1 &
        beside=$!
        sleep 0.5
    fi
    local pid before conns=$CONNS limit=5s
    if [[ $2 == 64m ]]; then conns=${LOAD_BIG_CONNECTIONS:-4} limit=60s; fi
    pid=$(proc_for "$1")
    before=$(cpu_ticks "$pid")
    timeout $(($3 + 90)) wrk -t"$THREADS" -c"$conns" -d"$3s" --timeout "$limit" --latency \
        "${hdr[@]}" "$(url_for "$1" "$2")" >"$4" 2>&1 || log "wrk $1 $2 failed (see output)"
    echo "ticks=$(($(cpu_ticks "$pid") - before)) clk_tck=$(getconf CLK_TCK)" >"$4.cpu"
    if [[ -n $beside ]]; then wait "$beside" || log "export load beside $1 failed"; fi
}

runs=0
for size in "${SIZES[@]}"; do
    read -ra t <<<"$(targets_for "$size")"
    runs=$((runs + ${#t[@]}))
done
log "$runs targets × $ROUNDS rounds × ${DURATION}s (+ ${WARMUP}s warm-up each): ~$(((runs * (ROUNDS * DURATION + WARMUP)) / 60 + 1)) min"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

mkdir -p "$WORK/res"
if ((WARMUP > 0)); then
    for size in "${SIZES[@]}"; do
        for target in $(targets_for "$size"); do
            run_wrk "$target" "$size" "$WARMUP" "$WORK/warmup.txt"
        done
    done
fi
for ((round = 1; round <= ROUNDS; round++)); do
    log "round $round/$ROUNDS"
    for size in "${SIZES[@]}"; do
        for target in $(targets_for "$size"); do
            run_wrk "$target" "$size" "$DURATION" "$WORK/res/r$round.$size.$target.txt"
        done
    done
done

# --- abuse: many slow, large uploads to a governed route ----------------------
hwm_kb() { sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$1/status"; }
# Peak RSS of a process and its children (nginx master and workers), summed.
hwm_tree_kb() {
    local total=0 pid kb
    for pid in "$1" $(pgrep -P "$1"); do
        kb=$(hwm_kb "$pid" 2>/dev/null) || continue
        total=$((total + ${kb:-0}))
    done
    echo "$total"
}
UPLOADS=${LOAD_ABUSE_UPLOADS:-150}
ABUSE=""
if ((UPLOADS > 0)); then
    python3 "$HERE/gen_json.py" "$WORK/data" 9m=9437184
    start_customs abuse "$(customs_conf "$WORK/abuse-audit/crossings.jsonl" "  - name: abuse
    owner: bench@example.com
    classification: internal
    boundary: internal
    reviewed: $TODAY
    expires: 2099-12-31
    upstream: { url: \"http://127.0.0.1:$UP_PORT\" }
    anonymous: true
    routes:
      - { id: up, methods: [POST], path: \"/**\", request: incident-inbound, response: pass }")"
    ABUSE_PID=$CUSTOMS_PID
    idle_kb=$(hwm_kb "$ABUSE_PID")
    log "abuse: $UPLOADS concurrent 9 MiB uploads at 3 MB/s each"
    mkdir -p "$WORK/abuse"
    for ((i = 0; i < UPLOADS; i++)); do
        curl -sS --max-time 120 --limit-rate 3M -o /dev/null -w '%{http_code}\n' \
            -H 'content-type: application/json' --data-binary "@$WORK/data/9m.json" \
            "http://127.0.0.1:$CUSTOMS_PORT/abuse/x" >"$WORK/abuse/$i.code" 2>/dev/null &
    done
    wait_uploads=$(date +%s)
    while (($(find "$WORK/abuse" -name '*.code' -size +0 | wc -l) < UPLOADS)) && (($(date +%s) - wait_uploads < 180)); do
        sleep 1
    done
    codes=$(cat "$WORK"/abuse/*.code | sort | uniq -c | awk '{printf "%s×%s ", $1, $2}')
    ABUSE="abuse_uploads=$UPLOADS
abuse_rss_kb_idle=$idle_kb
abuse_rss_kb_peak=$(hwm_kb "$ABUSE_PID")
abuse_codes=$codes"
fi

# --- report ------------------------------------------------------------------
{
    echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "nproc=$(nproc)"
    echo "cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)"
    echo "kernel=$(uname -r)"
    echo "load_before=$LOAD_BEFORE"
    echo "load_after=$(cut -d' ' -f1-3 /proc/loadavg)"
    echo "threads=$THREADS"
    echo "connections=$CONNS"
    echo "big_connections=${LOAD_BIG_CONNECTIONS:-4}"
    echo "rounds=$ROUNDS"
    echo "duration=$DURATION"
    echo "sizes=${SIZES[*]}"
    for size in "${SIZES[@]}"; do echo "targets_$size=$(targets_for "$size")"; done
    echo "file_sizes=$(for size in "${SIZES[@]}"; do printf '%s %s B, ' "$size" "$(stat -c %s "$WORK/data/$size.json")"; done | sed 's/, $//')"
    echo "rss_kb_main=$(hwm_kb "$MAIN_PID")"
    echo "rss_kb_audit_off=$(hwm_kb "$OFF_PID")"
    echo "rss_kb_nginx=$(hwm_tree_kb "${PROC[proxy]}")"
    echo "audit_bytes=$(du -cb "$WORK/audit" | tail -n1 | cut -f1)"
    [[ -z $ABUSE ]] || echo "$ABUSE"
} >"$WORK/meta.txt"

if [[ -n ${LOAD_KEEP:-} ]]; then
    mkdir -p "$LOAD_KEEP"
    cp -r "$WORK/res" "$WORK/meta.txt" "$LOAD_KEEP/"
fi
python3 "$HERE/report.py" "$WORK/res" "$WORK/meta.txt"
