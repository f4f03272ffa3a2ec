#!/usr/bin/env bash
# The command API's memory under dashboard logins (issue 18, item 8): a
# command-api binary in the dev profile (its seeded users), then
#
#   1. BURST concurrent logins of test@example.com with a wrong password
#      (default 500);
#   2. UNKNOWN concurrent logins for e-mails that do not exist, the dummy-hash
#      path (default 200);
#   3. the fuzz test's inputs (command-api/tests/fuzz_inputs.rs) for the two
#      endpoints that run argon2, one after another as the test sends them:
#      login (email, password) and merchant creation (name, email, password;
#      as a staff session), each field a NUL, a lone surrogate, 1 MiB of
#      text, 60 000 bytes of text and a number; then the login bodies twice
#      over all at once (20), and the merchant bodies all at once (15).
#
# Before and after each phase it reads VmRSS and VmHWM (the peak) from
# /proc/<pid>/status; "settled" is VmRSS 5 s after the phase's last answer.
# Per phase: the answers by status, each status's latency (curl's
# time_total, which includes the client's own start on the shared cores)
# and the phase's wall time.
#
#   bench/login_memory.sh [command-api binary]
#
# It creates (and afterwards drops) the database paystream_bench_login,
# applies the migrations with `command-api migrate`, and runs the API on a
# free port of 127.0.0.1 with the relay and the acquirer off: it only
# connects to NATS, and creates nothing there. KEEP=1 keeps the database;
# the API's log is kept (its path is printed at the end).
set -euo pipefail
bin=${1:-${CARGO_TARGET_DIR:-target}/release/command-api}
burst=${BURST:-500}
unknown=${UNKNOWN:-200}
db=paystream_bench_login
work=$(mktemp -d "${TMPDIR:-/tmp}/login_memory.XXXXXX")
pid=
cleanup() {
    [[ -n $pid ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    [[ -n ${KEEP:-} ]] || psql -X -q -h 127.0.0.1 -U postgres -d postgres -c "drop database if exists $db with (force)"
    echo "API log: $work/api.log"
}
trap cleanup EXIT
export PGOPTIONS=--client-min-messages=warning
psql -X -q -h 127.0.0.1 -U postgres -d postgres \
    -c "drop database if exists $db with (force)" -c "create database $db owner paystream"
url=postgres://paystream:paystream@127.0.0.1:5432/$db
PAYSTREAM_DATABASE_URL=$url "$bin" migrate >/dev/null
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
stream=BENCHLOGIN_$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n' | tr 'a-f' 'A-F')
base=http://127.0.0.1:$port
env -i PATH="$PATH" \
    PAYSTREAM_DATABASE_URL="$url" \
    PAYSTREAM_NATS_URL=nats://127.0.0.1:4222 \
    PAYSTREAM_PROFILE=dev \
    PAYSTREAM_COMMAND_API_ADDR=127.0.0.1:$port \
    PAYSTREAM_EVENTS_STREAM="$stream" \
    PAYSTREAM_EVENTS_SUBJECT_PREFIX="${stream,,}.events" \
    PAYSTREAM_RELAY=false PAYSTREAM_ACQUIRER=false \
    RUST_LOG=warn \
    "$bin" serve >"$work/api.log" 2>&1 &
pid=$!
for _ in $(seq 300); do
    curl -sf -o /dev/null "$base/health" && break
    kill -0 "$pid" || { cat "$work/api.log"; exit 1; }
    sleep 0.1
done
curl -sf -o /dev/null "$base/health"

kib() { awk -v key="$1:" '$1 == key { print $2 }' "/proc/$pid/status"; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
threads() { awk '$1 == "Threads:" { print $2 }' "/proc/$pid/status"; }

# One request per line of $1 (a file of body file names), all at once;
# prints "status seconds" per answer.
fire() {
    local list=$1 parallel=$2
    xargs -P "$parallel" -I{} curl -s -o /dev/null --max-time 120 \
        -w '%{http_code} %{time_total} %header{retry-after}\n' \
        -X POST "$3" -H 'Content-Type: application/json' -H "${4:-X-None: 1}" \
        --data-binary @{} <"$list"
}

# Summarises `fire`'s output ($1) over $2 seconds of wall time: answers by
# status, and each status's latency.
summary() {
    python3 - "$1" "$2" <<'PY'
import collections, sys
rows = [line.split() for line in open(sys.argv[1]) if line.strip()]
wall = float(sys.argv[2])
by_code = collections.defaultdict(list)
for row in rows:
    by_code[row[0]].append(float(row[1]) * 1000)
retry = collections.Counter(row[2] for row in rows if row[0] == "429" and len(row) > 2)
print(f"  {len(rows)} answers in {wall:.2f} s ({len(rows) / wall:.1f}/s); "
      f"{len(by_code.get('401', []))} checked ({len(by_code.get('401', [])) / wall:.1f} 401/s)"
      + (f"; Retry-After: {dict(retry)}" if retry else ""))
for code, times in sorted(by_code.items()):
    times.sort()
    pct = lambda p: times[min(len(times) - 1, int(p / 100 * len(times)))]
    print(f"  {code} x{len(times)}: latency ms p50 {pct(50):.0f}, p90 {pct(90):.0f}, "
          f"p99 {pct(99):.0f}, max {times[-1]:.0f}")
PY
}

# Runs one phase: $1 its name, then fire's arguments.
phase() {
    local name=$1 before start end
    shift
    before=$(kib VmRSS)
    start=$(date +%s.%N)
    fire "$@" >"$work/$name.out"
    end=$(date +%s.%N)
    local peak during
    peak=$(kib VmHWM)
    during=$(kib VmRSS)
    sleep 5
    printf '%s: RSS before %s MiB, at the end %s MiB, peak so far (VmHWM) %s MiB, settled (5 s) %s MiB, %s threads\n' \
        "$name" "$(mib "$before")" "$(mib "$during")" "$(mib "$peak")" "$(mib "$(kib VmRSS)")" "$(threads)"
    summary "$work/$name.out" "$(awk -v a="$start" -v b="$end" 'BEGIN { print b - a }')"
}

sleep 2
printf 'baseline: RSS %s MiB, VmHWM %s MiB, %s threads\n' "$(mib "$(kib VmRSS)")" "$(mib "$(kib VmHWM)")" "$(threads)"

# 1. Wrong passwords: one body, BURST times.
printf '{"email":"test@example.com","password":"wrong"}' >"$work/wrong.json"
seq "$burst" | sed "s|.*|$work/wrong.json|" >"$work/wrong.list"
phase "wrong-password x$burst" "$work/wrong.list" "$burst" "$base/api/v1/auth/login"

# 2. Unknown e-mails: a body each.
mkdir -p "$work/unknown"
for i in $(seq "$unknown"); do
    printf '{"email":"nobody-%d@example.com","password":"wrong"}' "$i" >"$work/unknown/$i.json"
    echo "$work/unknown/$i.json"
done >"$work/unknown.list"
phase "unknown-email x$unknown" "$work/unknown.list" "$unknown" "$base/api/v1/auth/login"

# 3. The fuzz test's hostile values in the argon2 endpoints' string fields.
token=$(curl -s -X POST "$base/api/v1/auth/login" -H 'Content-Type: application/json' \
    -d '{"email":"admin@example.com","password":"admin123"}' | python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])')
python3 - "$work" <<'PY'
import json, os, sys
work = sys.argv[1]
mutations = {
    "nul": r'"ab\u0000cd"',
    "surrogate": r'"\ud800"',
    "1mib": json.dumps("x" * 1024 * 1024),
    "60000b": json.dumps("é" * 30000, ensure_ascii=False),
    "number": "12345",
}
targets = {
    "login": ({"email": "admin@example.com", "password": "admin123"}, ["email", "password"]),
    "merchant": ({"name": "Acme", "email": "owner@acme.example", "password": "long enough"},
                 ["name", "email", "password"]),
}
for target, (body, fields) in targets.items():
    with open(f"{work}/fuzz-{target}.list", "w") as listing:
        for field in fields:
            for name, text in mutations.items():
                template = json.dumps({**body, field: "__fuzzed_value__"}, ensure_ascii=False)
                path = f"{work}/fuzz-{target}-{field}-{name}.json"
                with open(path, "w", encoding="utf-8") as out:
                    out.write(template.replace('"__fuzzed_value__"', text))
                listing.write(path + "\n")
PY
phase "fuzz login, one at a time" "$work/fuzz-login.list" 1 "$base/api/v1/auth/login"
phase "fuzz merchant creation, one at a time" "$work/fuzz-merchant.list" 1 "$base/api/v1/merchants" "Authorization: Bearer $token"
cat "$work/fuzz-login.list" "$work/fuzz-login.list" >"$work/fuzz-all.list"
phase "fuzz login, 2 x 10 at once" "$work/fuzz-all.list" 20 "$base/api/v1/auth/login"
phase "fuzz merchant creation, 15 at once" "$work/fuzz-merchant.list" 15 "$base/api/v1/merchants" "Authorization: Bearer $token"

# The right password still works.
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$base/api/v1/auth/login" \
    -H 'Content-Type: application/json' -d '{"email":"test@example.com","password":"test123"}')
echo "right password afterwards: $code"
printf 'end: RSS %s MiB, VmHWM %s MiB, %s threads\n' "$(mib "$(kib VmRSS)")" "$(mib "$(kib VmHWM)")" "$(threads)"
