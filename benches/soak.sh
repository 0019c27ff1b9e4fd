#!/usr/bin/env bash
# Soak run (issue 13 item 7): mixed traffic through the release binary on
# loopback while the configuration changes under it, then checks that nothing
# failed, nothing went unrecorded and nothing grew.
#
# Traffic (benches/soak/drive.py, against benches/soak/upstream.py): `pass`
# (anonymous, and with an injected credential), a response policy and a request
# policy, policy refusals (403), a client outside its routes (403), unknown and
# missing keys (401), no route (404), 2 MB governed and 24 MiB streamed
# exports back to back, one WebSocket tunnel held open and used for the whole
# run and a short one every 5 s. Meanwhile, every 10 s the config is changed:
# replaced atomically (twice), SIGHUP, an invalid config (the reload must fail
# and the running configuration stay; the good one is put back at once); every
# 15 s the injected secret file is replaced atomically by a new token; and
# `audit.rotate_bytes` (1 MiB) rotates the crossing log every few seconds.
# Each change waits (up to 10 s) for its reload to be counted in
# `customs_config_reloads_total` before the next.
#
# Fails (exit 1) unless, at the end:
# - every request got the answer its class expects (200 for what should
#   cross, the right refusal otherwise), and the upstream saw every token the
#   script rotated in and nothing a caller sent;
# - every reload got its expected result, and the log holds one `reload`
#   event per reload;
# - `customs audit verify` passes over all rotated files and the live one;
# - the log holds one crossing per answer the driver counted, by
#   integration/route/status, and one `tunnel_closed` per tunnel (`closed`);
# - customs' RSS and open file descriptors (sampled from /proc) are flat:
#   the median of the last quarter of the run may exceed the median of the
#   as many samples after warm-up (the first quarter, at least 30 s) by at
#   most SOAK_RSS_GROWTH_PCT (20) % or
#   SOAK_RSS_SLACK_MB (16) MB, whichever is more, and by at most
#   SOAK_FD_SLACK (8) descriptors.
#
# Env: SOAK_SECONDS (600), SOAK_RATE (small requests/s, 150),
#      SOAK_ROTATE_BYTES (1MiB), CUSTOMS_BIN (skip the build),
#      SOAK_KEEP (dir to copy the log, samples and results to).
# Needs python3, curl and jq. Only loopback; kills everything it starts.
set -euo pipefail

DURATION=${SOAK_SECONDS:-600}
RATE=${SOAK_RATE:-150}
ROTATE_BYTES=${SOAK_ROTATE_BYTES:-1MiB}
RSS_GROWTH_PCT=${SOAK_RSS_GROWTH_PCT:-20}
RSS_SLACK_MB=${SOAK_RSS_SLACK_MB:-16}
FD_SLACK=${SOAK_FD_SLACK:-8}
SAMPLE_EVERY=$((DURATION / 120 > 0 ? DURATION / 120 : 1)) # about 120 samples
export PYTHONDONTWRITEBYTECODE=1

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HERE="$ROOT/benches/soak"

log() { printf '[soak] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

for tool in python3 curl jq; do
    command -v "$tool" >/dev/null || die "missing $tool (apt-get install -y $tool)"
done
if ! [[ $DURATION =~ ^[0-9]+$ ]] || ((DURATION < 60 || DURATION > 86400)); then
    die "SOAK_SECONDS must be 60..86400"
fi

BIN=${CUSTOMS_BIN:-$ROOT/target/release/customs}
if [[ -z ${CUSTOMS_BIN:-} ]]; then
    if [[ ! -x $BIN ]] || [[ -n $(find "$ROOT/src" "$ROOT/Cargo.toml" "$ROOT/Cargo.lock" -newer "$BIN" -print -quit) ]]; then
        log "building customs (release)"
        (cd "$ROOT" && timeout 3600 cargo build --release --locked --bin customs) >&2
    fi
fi
[[ -x $BIN ]] || die "no customs binary at $BIN"

WORK=$(mktemp -d /tmp/customs-soak.XXXXXX)
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do
        timeout 10 tail --pid="$pid" -f /dev/null 2>/dev/null || kill -9 "$pid" 2>/dev/null || true
    done
    if [[ -n ${SOAK_KEEP:-} ]]; then
        mkdir -p "$SOAK_KEEP"
        cp -r "$WORK"/audit "$WORK"/*.tsv "$WORK"/*.json "$WORK"/*.err "$WORK"/*.txt "$SOAK_KEEP/" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Waits up to $2 s (in 0.1 s steps) for command $3... to succeed.
wait_for() { # what seconds command...
    local what=$1 i
    shift
    for ((i = 0; i < $1 * 10; i++)); do
        if "${@:2}" 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    die "timed out waiting for $what"
}

# --- upstream ----------------------------------------------------------------
python3 "$HERE/upstream.py" "$WORK/upstream.port" >"$WORK/upstream.out" 2>"$WORK/upstream.err" &
UP_PID=$!
PIDS+=("$UP_PID")
wait_for "the upstream" 30 test -s "$WORK/upstream.port"
UP_PORT=$(cat "$WORK/upstream.port")

# --- customs -----------------------------------------------------------------
cp -r "$ROOT/policies" "$WORK/policies"
mkdir -p "$WORK/secrets" "$WORK/audit"
CUSTOMS_HASH_KEY=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
export CUSTOMS_HASH_KEY
key() { python3 -c 'import secrets; print("cst_soak_" + secrets.token_hex(16))'; }
DESK_KEY=$(key)
READER_KEY=$(key)
sha() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }
TODAY=$(date -u +%F)

# Atomic replace: a finished file renamed over the old one.
replace() { # path content
    printf '%s\n' "$2" >"$1.tmp"
    mv -f "$1.tmp" "$1"
}
ROTATIONS=0
rotate_secret() {
    replace "$WORK/secrets/acme-token" "soak-$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
    ROTATIONS=$((ROTATIONS + 1))
}

config() { # generation [broken]
    local write_response=pass
    [[ ${2:-} == broken ]] && write_response=no-such-policy
    cat <<EOF
# benches/soak.sh, generation $1
listen: { address: "127.0.0.1:0" }
admin: { address: "127.0.0.1:0" }
policies: policies/
audit: { path: "$WORK/audit/crossings.jsonl", rotate_bytes: $ROTATE_BYTES }
secrets: { hash_key: "\${env:CUSTOMS_HASH_KEY}" }
integrations:
  - name: acme
    owner: soak@example.com
    purpose: "soak generation $1"
    classification: confidential
    data: [pii, incident]
    boundary: external
    reviewed: $TODAY
    expires: 2099-12-31
    upstream:
      url: "http://127.0.0.1:$UP_PORT/acme"
      inject: { header: Authorization, value: "Bearer \${file:secrets/acme-token}", expires: 2099-12-31 }
    clients:
      - { id: desk, api_key: "sha256:$(sha "$DESK_KEY")", expires: 2099-12-31 }
      - { id: reader, api_key: "sha256:$(sha "$READER_KEY")", expires: 2099-12-31, routes: [read] }
    routes:
      - { id: read, methods: [GET], path: /items/*, request: pass, response: pass }
      - { id: incidents, methods: [GET], path: /incidents, request: pass, response: incident-inbound }
      - { id: export, methods: [GET], path: /export, request: pass, response: incident-inbound }
      - { id: dump, methods: [GET], path: /dump, request: pass, response: pass }
      - { id: write, methods: [POST], path: /incidents/*, request: incident-outbound, response: $write_response }
      - { id: ws, methods: [GET], path: /ws, request: pass, response: pass, upgrade: true }
  - name: open
    owner: soak@example.com
    classification: internal
    boundary: internal
    reviewed: $TODAY
    expires: 2099-12-31
    anonymous: true
    upstream: { url: "http://127.0.0.1:$UP_PORT/open" }
    routes:
      - { id: items, methods: [GET], path: /items/*, request: pass, response: pass }
EOF
}

rotate_secret
replace "$WORK/customs.yaml" "$(config 0)"
"$BIN" check --config "$WORK/customs.yaml" >"$WORK/check.out" 2>&1 || die "customs check: $(cat "$WORK/check.out")"
"$BIN" serve --config "$WORK/customs.yaml" >"$WORK/customs.out" 2>"$WORK/customs.err" &
CUSTOMS_PID=$!
PIDS+=("$CUSTOMS_PID")
ready() { grep -q '^ready ' "$WORK/customs.out" || { kill -0 "$CUSTOMS_PID" || die "customs exited: $(cat "$WORK/customs.err")"; false; }; }
wait_for "customs to be ready" 60 ready
PROXY_PORT=$(sed -n 's/^ready proxy=127\.0\.0\.1:\([0-9]*\).*/\1/p' "$WORK/customs.out")
ADMIN_PORT=$(sed -n 's/^ready .*admin=127\.0\.0\.1:\([0-9]*\).*/\1/p' "$WORK/customs.out")
[[ -n $PROXY_PORT && -n $ADMIN_PORT ]] || die "no ports in: $(cat "$WORK/customs.out")"

metric() { # name{labels} (exact series text)
    curl -sS --max-time 5 "http://127.0.0.1:$ADMIN_PORT/metrics" \
        | awk -v s="$1" '$1 == s { print $2; found = 1 } END { if (!found) print 0 }'
}
reloads() { metric "customs_config_reloads_total{result=\"$1\"}"; }

# --- the run -----------------------------------------------------------------
log "soak: ${DURATION}s, $RATE small requests/s, pid $CUSTOMS_PID, proxy :$PROXY_PORT"
python3 "$HERE/drive.py" "$PROXY_PORT" "$DURATION" "$RATE" "$DESK_KEY" "$READER_KEY" \
    "$WORK/driver.json" >"$WORK/driver.out" 2>"$WORK/driver.err" &
DRIVER_PID=$!
PIDS+=("$DRIVER_PID")

sample() { # t
    local rss threads fds
    rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$CUSTOMS_PID/status")
    threads=$(awk '/^Threads:/ { print $2 }' "/proc/$CUSTOMS_PID/status")
    fds=$(find "/proc/$CUSTOMS_PID/fd" -mindepth 1 -maxdepth 1 | wc -l)
    printf '%s\t%s\t%s\t%s\n' "$1" "$rss" "$fds" "$threads" >>"$WORK/samples.tsv"
}

# One config change; waits for its reload to be counted with `result`.
EXPECT_OK=0 EXPECT_ERROR=0 GENERATION=0
reload_and_wait() { # action result
    local before
    before=$(reloads "$2")
    case $1 in
        write) GENERATION=$((GENERATION + 1)); replace "$WORK/customs.yaml" "$(config "$GENERATION")" ;;
        broken) replace "$WORK/customs.yaml" "$(config "$GENERATION" broken)" ;;
        hup) kill -HUP "$CUSTOMS_PID" ;;
        secret) rotate_secret ;;
    esac
    if [[ $2 == ok ]]; then EXPECT_OK=$((EXPECT_OK + 1)); else EXPECT_ERROR=$((EXPECT_ERROR + 1)); fi
    changed() { (($(reloads "$1") > before)); }
    wait_for "a '$1' reload counted as $2" 10 changed "$2"
}

STEPS=(write write hup broken write) # every 10 s, in turn
START=$(date +%s)
next_config=10 next_secret=15 next_sample=0 step=0
while (($(date +%s) - START < DURATION)); do
    t=$(($(date +%s) - START))
    if ((t >= next_sample)); then sample "$t"; next_sample=$((next_sample + SAMPLE_EVERY)); fi
    if ((t >= next_config)); then
        action=${STEPS[step % ${#STEPS[@]}]}
        step=$((step + 1))
        if [[ $action == broken ]]; then
            reload_and_wait broken error
            reload_and_wait write ok # the good config back at once
        else
            reload_and_wait "$action" ok
        fi
        next_config=$((next_config + 10))
    fi
    if ((t >= next_secret)); then reload_and_wait secret ok; next_secret=$((next_secret + 15)); fi
    kill -0 "$CUSTOMS_PID" 2>/dev/null || die "customs exited mid-run: $(tail -n 5 "$WORK/customs.err")"
    kill -0 "$DRIVER_PID" 2>/dev/null || break
    sleep 0.2
done

# --- wind down ---------------------------------------------------------------
driver_done() { ! kill -0 "$DRIVER_PID"; }
wait_for "the driver to finish" 120 driver_done
wait "$DRIVER_PID" || die "driver failed: $(tail -n 20 "$WORK/driver.err")"
sample "$(($(date +%s) - START))"
METRIC_OK=$(reloads ok) METRIC_ERROR=$(reloads error)
AUDIT_FAILURES=$(metric customs_audit_failures_total)
kill -TERM "$CUSTOMS_PID"
customs_done() { ! kill -0 "$CUSTOMS_PID"; }
wait_for "customs to drain and exit" 60 customs_done
wait "$CUSTOMS_PID" || die "customs exited with $?: $(tail -n 5 "$WORK/customs.err")"
kill -TERM "$UP_PID"
wait "$UP_PID" || true
UPSTREAM=$(tail -n 1 "$WORK/upstream.out")
[[ -n $UPSTREAM ]] || die "the upstream left no report: $(tail -n 5 "$WORK/upstream.err")"

# --- checks ------------------------------------------------------------------
FAILED=()
fail() { FAILED+=("$*"); log "FAIL: $*"; }

# Oldest first: rotated files by their first seq, then the live file.
mapfile -t FILES < <(find "$WORK/audit" -name 'crossings.*.jsonl' -printf '%f\n' | sort -t. -k2,2n | sed "s|^|$WORK/audit/|")
FILES+=("$WORK/audit/crossings.jsonl")
if VERIFY=$("$BIN" audit verify "${FILES[@]}" 2>&1); then :; else fail "audit verify: $VERIFY"; fi
cat "${FILES[@]}" >"$WORK/all.jsonl"

DRIVER_FAILED=$(jq '[.classes[].failed] | add' "$WORK/driver.json")
((DRIVER_FAILED == 0)) || fail "$DRIVER_FAILED requests failed: $(jq -c '[.classes | to_entries[] | select(.value.failed > 0) | {(.key): .value.samples}]' "$WORK/driver.json")"

# One crossing per answer, by integration/route/status.
jq -s 'map(select(has("event") | not)) | group_by("\(.integration // "")/\(.route // "")/\(.status)")
       | map({key: "\(.[0].integration // "")/\(.[0].route // "")/\(.[0].status)", value: length}) | from_entries' \
    "$WORK/all.jsonl" >"$WORK/records.json"
DIFF=$(jq -n --slurpfile a "$WORK/driver.json" --slurpfile r "$WORK/records.json" \
    '($a[0].answers) as $a | $r[0] as $r | ([$a, $r] | map(keys) | add | unique)
     | map(select(($a[.] // 0) != ($r[.] // 0)) | {(.): {answers: ($a[.] // 0), records: ($r[.] // 0)}}) | add // {}')
[[ $DIFF == "{}" ]] || fail "answers and records differ: $(jq -c . <<<"$DIFF")"

EVENTS=$(jq -s -c 'map(select(has("event"))) | group_by(.event + "/" + (.result // .why // ""))
                   | map({key: (.[0].event + "/" + (.[0].result // .[0].why // "")), value: length}) | from_entries' "$WORK/all.jsonl")
event() { jq -r --arg k "$1" '.[$k] // 0' <<<"$EVENTS"; }
((METRIC_OK == EXPECT_OK && METRIC_ERROR == EXPECT_ERROR)) \
    || fail "reloads counted ok=$METRIC_OK error=$METRIC_ERROR, expected ok=$EXPECT_OK error=$EXPECT_ERROR"
(($(event reload/ok) == EXPECT_OK && $(event reload/error) == EXPECT_ERROR)) \
    || fail "reload events $EVENTS, expected ok=$EXPECT_OK error=$EXPECT_ERROR"
TUNNELS=$(jq '.ws.tunnels' "$WORK/driver.json")
(($(event tunnel_closed/closed) == TUNNELS)) || fail "$TUNNELS tunnels, tunnel_closed events: $EVENTS"
TOKENS=$(jq '.tokens_seen' <<<"$UPSTREAM")
((TOKENS == ROTATIONS)) || fail "the upstream saw $TOKENS of the $ROTATIONS injected tokens"
((${#FILES[@]} > 1)) || fail "the crossing log never rotated"
((AUDIT_FAILURES == 0)) || fail "customs_audit_failures_total is $AUDIT_FAILURES"

# Flat: last quarter against the one after warm-up (the first quarter, at
# least 30 s: a short run's allocator is still warming up at 15 s).
FLAT=$(awk -v pct="$RSS_GROWTH_PCT" -v slack="$RSS_SLACK_MB" -v fdslack="$FD_SLACK" -v every="$SAMPLE_EVERY" '
    function median(a, lo, hi,   n, i, j, t, b) {
        n = 0; for (i = lo; i < hi; i++) b[n++] = a[i]
        for (i = 1; i < n; i++) for (j = i; j > 0 && b[j-1] > b[j]; j--) { t = b[j]; b[j] = b[j-1]; b[j-1] = t }
        return n % 2 ? b[int(n/2)] : (b[n/2-1] + b[n/2]) / 2
    }
    { rss[NR-1] = $2; fd[NR-1] = $3; if ($2 > prss) prss = $2; if ($3 > pfd) pfd = $3 }
    END {
        n = NR; q = int(n / 4); w = int(30 / every); if (w < q) w = q
        if (w > q) q = int((n - w) / 2)
        if (q < 1) q = 1
        r2 = median(rss, w, w+q); r4 = median(rss, n-q, n); f2 = median(fd, w, w+q); f4 = median(fd, n-q, n)
        printf "rss_mb start=%.1f after_warmup=%.1f peak=%.1f last_quarter=%.1f end=%.1f\n", rss[0]/1024, r2/1024, prss/1024, r4/1024, rss[n-1]/1024
        printf "fds start=%d after_warmup=%d peak=%d last_quarter=%d end=%d\n", fd[0], f2, pfd, f4, fd[n-1]
        allowed = r2 * pct / 100; if (allowed < slack * 1024) allowed = slack * 1024
        if (r4 - r2 > allowed) printf "GROWTH rss grew %.1f MB (allowed %.1f)\n", (r4-r2)/1024, allowed/1024
        if (f4 - f2 > fdslack) printf "GROWTH fds grew by %d (allowed %d)\n", f4-f2, fdslack
    }' "$WORK/samples.tsv")
while read -r line; do
    if [[ $line == GROWTH* ]]; then fail "${line#GROWTH }"; fi
done <<<"$FLAT"

# --- report ------------------------------------------------------------------
{
    echo "duration_s=$DURATION rate=$RATE samples=$(wc -l <"$WORK/samples.tsv") every=${SAMPLE_EVERY}s"
    echo "answers=$(jq '[.answers[]] | add' "$WORK/driver.json") ($(jq -r '[.answers[]] | add / '"$DURATION"' | floor' "$WORK/driver.json")/s) failed=$DRIVER_FAILED; per class (websocket: messages echoed):"
    jq -r '.classes | to_entries[] | "  \(.key): ok=\(.value.ok) failed=\(.value.failed)"' "$WORK/driver.json"
    echo "websocket: tunnels=$TUNNELS messages=$(jq '.ws.messages' "$WORK/driver.json")"
    echo "records: crossings=$(jq '[.[]] | add' "$WORK/records.json") events=$EVENTS"
    echo "  by outcome: $(jq -s -c 'map(select(has("event") | not)) | group_by(.outcome) | map({key: .[0].outcome, value: length}) | from_entries' "$WORK/all.jsonl")"
    echo "reloads: ok=$METRIC_OK error=$METRIC_ERROR (expected ok=$EXPECT_OK error=$EXPECT_ERROR; config generations=$GENERATION)"
    echo "secret rotations=$ROTATIONS, tokens seen by the upstream=$TOKENS"
    echo "audit files=${#FILES[@]} (rotations=$((${#FILES[@]} - 1)), rotate_bytes=$ROTATE_BYTES) verify: $(tail -n 1 <<<"$VERIFY")"
    grep -v '^GROWTH' <<<"$FLAT"
    echo "upstream: $(jq -c '.served' <<<"$UPSTREAM")"
} | tee "$WORK/report.txt"
if ((${#FAILED[@]})); then
    log "${#FAILED[@]} check(s) failed"
    exit 1
fi
log "ok"
