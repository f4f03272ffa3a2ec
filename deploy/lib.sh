# shellcheck shell=bash
# Helpers shared by deploy/dev (sourced, not executed).
# Generic pieces only: logging, waiting, ports, pid files, apt.

# ---------------------------------------------------------------- logging

log()  { printf '==> %s\n' "$*"; }
info() { printf '    %s\n' "$*"; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die()  { printf 'error: %s\n' "$*" >&2; exit 1; }

# Seconds elapsed since $1 (a value of $SECONDS), printed as e.g. "1m05s".
elapsed_since() {
    local secs=$(( SECONDS - $1 ))
    if (( secs >= 60 )); then
        printf '%dm%02ds' $(( secs / 60 )) $(( secs % 60 ))
    else
        printf '%ds' "$secs"
    fi
}

# ---------------------------------------------------------------- privileges

# Run a command as root (directly when we are root, else via sudo).
as_root() {
    if (( EUID == 0 )); then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root (or sudo) to run: $*"
    fi
}

# Run a command as the postgres OS user, from / so it can read its cwd.
as_postgres() {
    if (( EUID == 0 )); then
        (cd / && runuser -u postgres -- "$@")
    else
        (cd / && sudo -u postgres -- "$@")
    fi
}

# ---------------------------------------------------------------- apt

APT_UPDATED=0

# apt_install PKG... : install packages, running `apt-get update` at most once.
apt_install() {
    (( $# > 0 )) || return 0
    if (( APT_UPDATED == 0 )); then
        log "apt-get update"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
        APT_UPDATED=1
    fi
    log "apt-get install -y $*"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"
}

# ---------------------------------------------------------------- waiting

# wait_until TIMEOUT_SECS DESCRIPTION COMMAND... : poll COMMAND every 0.5 s
# until it succeeds; return 1 (with a message) after TIMEOUT_SECS.
wait_until() {
    local timeout=$1 what=$2
    shift 2
    local deadline=$(( SECONDS + timeout ))
    until "$@" >/dev/null 2>&1; do
        if (( SECONDS >= deadline )); then
            warn "timed out after ${timeout}s waiting for $what"
            return 1
        fi
        sleep 0.5
    done
}

# ---------------------------------------------------------------- network

# port_open HOST PORT : true when something accepts TCP connections there.
port_open() {
    # shellcheck disable=SC2016  # $0/$1 are expanded by the inner bash
    timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$1" "$2" 2>/dev/null
}

# http_ok URL : true when URL answers with a 2xx status.
http_ok() {
    curl -fsS -o /dev/null --max-time 2 "$1" 2>/dev/null
}

# http_status URL : print the HTTP status URL answers with (000 when nothing
# answers within 2 s).
http_status() {
    curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$1" 2>/dev/null || true
}

# http_answers URL : true when an HTTP server answers at URL, whatever the status.
http_answers() {
    [[ $(http_status "$1") != 000 ]]
}

# loopback_has_ipv6 : true when ::1 is configured (so a server can listen there).
loopback_has_ipv6() {
    [[ -r /proc/net/if_inet6 ]] && grep -qE '^0{31}1 .* lo$' /proc/net/if_inet6
}

# ---------------------------------------------------------------- templates

# render_template TEXT KEY=VALUE... : print TEXT with every @KEY@ replaced by
# VALUE; fail when a @PLACEHOLDER@ is left over (template and caller disagree).
render_template() {
    local text=$1 pair key
    shift
    for pair in "$@"; do
        key=${pair%%=*}
        text=${text//"@$key@"/"${pair#*=}"}
    done
    if [[ $text =~ @[A-Z0-9_]+@ ]]; then
        warn "template placeholder ${BASH_REMATCH[0]} has no value"
        return 1
    fi
    printf '%s\n' "$text"
}

# ---------------------------------------------------------------- processes

# pid_file_read FILE : print the pid stored in FILE (empty if none).
pid_file_read() {
    [[ -f $1 ]] || return 0
    tr -dc '0-9' <"$1"
}

# pid_is NAME PID : true when PID is alive and its program is called NAME
# (guards against a recycled pid belonging to something else). A program that
# rewrites its argv (nginx: "nginx: master process ...") is known by its comm.
pid_is() {
    local name=$1 pid=$2 argv0 comm
    [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 1
    argv0=$(tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | head -n 1) || return 1
    [[ ${argv0##*/} == "$name" ]] && return 0
    comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
    [[ $comm == "$name" ]]
}

# stop_pid NAME PID TIMEOUT_SECS : SIGTERM the process group led by PID
# (we start everything with setsid), wait, then SIGKILL.
stop_pid() {
    local name=$1 pid=$2 timeout=$3
    if pid_gone "$pid"; then
        return 0
    fi
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    if wait_until "$timeout" "$name (pid $pid) to exit" pid_gone "$pid"; then
        info "stopped $name (pid $pid)"
    else
        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
        wait_until 5 "$name (pid $pid) to die" pid_gone "$pid" || true
        info "killed $name (pid $pid) after ${timeout}s"
    fi
}

# pid_gone PID : true when PID has exited (a zombie that nobody reaped counts).
pid_gone() {
    local stat
    kill -0 "$1" 2>/dev/null || return 0
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
    stat=${stat##*) }            # the fields after "pid (comm) "
    [[ ${stat%% *} == Z ]]
}

# wait_started NAME PID TIMEOUT_SECS COMMAND... : poll COMMAND until it
# succeeds; fail early if PID exits, or after TIMEOUT_SECS.
wait_started() {
    local name=$1 pid=$2 timeout=$3
    shift 3
    local deadline=$(( SECONDS + timeout ))
    until "$@" >/dev/null 2>&1; do
        if pid_gone "$pid"; then
            warn "$name (pid $pid) exited during startup"
            return 1
        fi
        if (( SECONDS >= deadline )); then
            warn "$name (pid $pid) not ready after ${timeout}s"
            return 1
        fi
        sleep 0.5
    done
}

# show_log_tail FILE : last lines of a log, to explain a failed start.
show_log_tail() {
    [[ -f $1 ]] || return 0
    printf -- '---- last lines of %s ----\n' "$1" >&2
    tail -n 30 "$1" >&2
    printf -- '----\n' >&2
}
