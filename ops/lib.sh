#!/usr/bin/env bash
# shellcheck shell=bash disable=SC2034 # constants here are used by the scripts that source this file
# ops/lib.sh: shared by ops/up, ops/down, ops/test and ops/mailctl. Source it, do not run it.
#
# Runs the local stores (PostgreSQL, Redis, Garage S3; for the tests also a private clamd) from one
# git-ignored state folder, on ports that do not clash with system services, and installs whatever
# is missing (apt for PostgreSQL, Redis, swaks, python3-venv and clamav-daemon; `cargo install` for
# Garage; pip, into a venv, for the Python tools of the tests). Every ensure_* function is
# idempotent: it reuses what is already initialised and running, and starts only what is not.

OPS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
REPO=$(cd "$OPS_DIR/.." && pwd -P)
STATE="$REPO/.state"
LOG_DIR="$STATE/logs"
RUN_DIR="$STATE/run"

PG_PORT=55432
REDIS_PORT=56379
GARAGE_S3_PORT=53900
GARAGE_RPC_PORT=53901
GARAGE_ADMIN_PORT=53903
CLAMD_PORT=53310
GARAGE_VERSION=2.5.0
GARAGE_REGION=garage
GARAGE_KEY_NAME=mailcluster-key
GARAGE_BUCKETS=(mailcluster mailcluster-test)
GARAGE_DIR="$STATE/garage"
GARAGE_CONF="$GARAGE_DIR/garage.toml"
GARAGE_CREDENTIALS="$GARAGE_DIR/credentials.env"
TEST_ENV="$STATE/test.env"
PYTHON_VENV="$STATE/venv"
CLAMAV_DIR="$STATE/clamav"
CLAMD_CONF="$CLAMAV_DIR/clamd.conf"
CLAMD_PIDFILE="$RUN_DIR/clamd.pid"
PYTHON_REQUIREMENTS="$OPS_DIR/python-requirements.txt"

ADMIN_API_ADDR=127.0.0.1:8080
METRICS_ADDR=127.0.0.1:9104
SMTP_MX_ADDR=127.0.0.1:2525
SMTP_SUBMISSION_ADDR=127.0.0.1:2587
SMTP_SUBMISSIONS_ADDR=127.0.0.1:2465
SMTP_METRICS_ADDR=127.0.0.1:9101
DELIVERY_METRICS_ADDR=127.0.0.1:9103
IMAP_ADDR=127.0.0.1:2143
IMAPS_ADDR=127.0.0.1:2993
POP3_ADDR=127.0.0.1:2110
POP3S_ADDR=127.0.0.1:2995
ACCESS_METRICS_ADDR=127.0.0.1:9102
TLS_DIR="$STATE/tls"

PORT_HINT="(the local stack of another checkout? stop it with its ops/down)"

# Seconds to wait for a store to answer after starting it.
START_TIMEOUT=60
# Seconds a service may drain after SIGTERM before it is killed (its shutdown_grace_secs is 30).
SERVICE_STOP_TIMEOUT=40

log() { printf '==> %s\n' "$*" >&2; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

is_root() { [ "$(id -u)" -eq 0 ]; }

# Runs a command as root: directly when we are root, else through sudo.
as_root() {
    if is_root; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root (or sudo) to run: $*"
    fi
}

random_hex() { # bytes
    od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'
}

# Prints the file's content, creating it first with a random hex value (mode 600) if missing.
secret_file() { # path bytes
    if [ ! -s "$1" ]; then
        (umask 077 && random_hex "$2" >"$1.tmp") && mv "$1.tmp" "$1"
    fi
    cat "$1"
}

port_open() { # port
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

wait_for_port() { # port [timeout-seconds]
    local deadline=$((SECONDS + ${2:-$START_TIMEOUT}))
    until port_open "$1"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.2
    done
}

wait_for_port_closed() { # port [timeout-seconds]
    local deadline=$((SECONDS + ${2:-$START_TIMEOUT}))
    while port_open "$1"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.2
    done
}

# Retries a command until it succeeds or the timeout passes.
wait_until() { # timeout-seconds command...
    local deadline=$((SECONDS + $1))
    shift
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || return 1
        sleep 0.3
    done
}

# True when the pid file names a live process whose command line contains the pattern, so that a
# stale pid file never makes us signal an unrelated process that reused the pid.
pidfile_alive() { # pidfile pattern
    local pid
    [ -s "$1" ] || return 1
    pid=$(<"$1")
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$2"
}

# Stops the process of a pid file (SIGTERM, then SIGKILL after the timeout) and removes the file.
stop_pidfile() { # pidfile pattern name [timeout-seconds]
    local pid deadline
    if pidfile_alive "$1" "$2"; then
        pid=$(<"$1")
        log "stopping $3 (pid $pid)"
        kill "$pid" 2>/dev/null || true
        deadline=$((SECONDS + ${4:-20}))
        while kill -0 "$pid" 2>/dev/null; do
            if ((SECONDS >= deadline)); then
                warn "$3 did not stop after ${4:-20}s; killing it"
                kill -9 "$pid" 2>/dev/null || true
                break
            fi
            sleep 0.2
        done
    fi
    rm -f "$1"
}

# Starts a long-running program in the background, detached from the terminal (own session, so a
# Ctrl-C in the calling shell does not reach it), with its output appended to a log file.
start_background() { # pidfile logfile command...
    local pidfile=$1 logfile=$2
    shift 2
    setsid nohup "$@" >>"$logfile" 2>&1 </dev/null 9>&- &
    echo $! >"$pidfile"
}

make_state_dirs() {
    mkdir -p "$STATE" "$STATE/redis" "$GARAGE_DIR" "$LOG_DIR" "$RUN_DIR"
    # .state/pg may be a link to a cluster folder outside the checkout (see pg_paths).
    [ -L "$STATE/pg" ] || mkdir -p "$STATE/pg"
}

# ---------------------------------------------------------------------------------------------
# Packages

# Installs apt packages (output in .state/logs/apt.log); runs `apt-get update` once per script run.
APT_UPDATED=0
apt_install() { # packages...
    local logfile="$LOG_DIR/apt.log"
    command -v apt-get >/dev/null 2>&1 || die "missing packages ($*) and no apt-get here: install them by hand"
    make_state_dirs
    log "installing with apt-get: $* (log: $logfile)"
    {
        if [ "$APT_UPDATED" = 0 ]; then
            as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update
        fi
        as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y \
            --no-install-recommends "$@"
    } </dev/null >>"$logfile" 2>&1 || {
        tail -n 30 "$logfile" >&2 || true
        die "apt-get failed (log: $logfile)"
    }
    APT_UPDATED=1
}

# Prints the bin folder of the PostgreSQL server tools: the version that initialised our cluster if
# it is installed, else the newest one under /usr/lib/postgresql, else wherever initdb is in PATH.
pg_bindir() {
    local dir version newest=""
    if [ -s "$STATE/pg/data/PG_VERSION" ]; then
        version=$(<"$STATE/pg/data/PG_VERSION")
        if [ -x "/usr/lib/postgresql/$version/bin/pg_ctl" ]; then
            echo "/usr/lib/postgresql/$version/bin"
            return
        fi
    fi
    for dir in /usr/lib/postgresql/*/bin; do
        [ -x "$dir/initdb" ] && newest=$(printf '%s\n%s\n' "$newest" "$dir" | sed '/^$/d' | sort -V | tail -n1)
    done
    if [ -n "$newest" ]; then
        echo "$newest"
    elif command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
        dirname "$(readlink -f "$(command -v initdb)")"
    else
        return 1
    fi
}

# Installs, in one apt-get run, the packages behind the named needs: postgres, redis, swaks,
# python, mail-clients (mbsync and fetchmail, independent IMAP and POP3 clients for the tests),
# clamav (clamd, the virus scanner of the anti-virus tests).
ensure_packages() { # needs...
    local need packages=()
    for need in "$@"; do
        case $need in
            postgres) pg_bindir >/dev/null || packages+=(postgresql) ;;
            redis)
                command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1 ||
                    packages+=(redis-server redis-tools)
                ;;
            swaks)
                # libnet-ssleay-perl gives swaks its STARTTLS/TLS support.
                command -v swaks >/dev/null 2>&1 || packages+=(swaks libnet-ssleay-perl)
                ;;
            mail-clients)
                command -v mbsync >/dev/null 2>&1 || packages+=(isync)
                command -v fetchmail >/dev/null 2>&1 || packages+=(fetchmail)
                ;;
            clamav) find_clamd || packages+=(clamav-daemon) ;;
            python)
                # Debian's python3 has the venv module but leaves ensurepip (which venv needs to put
                # pip into the venv) to python3-venv.
                python3 -m venv --help >/dev/null 2>&1 && python3 -c 'import ensurepip' >/dev/null 2>&1 ||
                    packages+=(python3 python3-venv)
                ;;
            *) die "ensure_packages: unknown need '$need'" ;;
        esac
    done
    if ((${#packages[@]})); then
        apt_install "${packages[@]}"
    fi
}

# ---------------------------------------------------------------------------------------------
# PostgreSQL
#
# PostgreSQL refuses to run as root. As root we run initdb/pg_ctl as the `postgres` user created
# by the apt package and give it the cluster folder; otherwise we run them as ourselves.

PG_BIN=""
PG_ROOT=""
PG_DATA=""
PG_SOCKET_DIR=""
PG_LOG=""

pg_as_owner() { # command...
    if is_root; then
        (cd / && runuser -u postgres -- "$@")
    else
        "$@"
    fi
}

# Sets PG_BIN, PG_ROOT (cluster folder: data/, socket/, postgres.log), PG_DATA, PG_SOCKET_DIR,
# PG_LOG. As root, when the postgres user cannot reach .state (e.g. a checkout under /root), the
# cluster lives in /var/tmp/mailcluster-pg-<hash of the repo path>, linked from .state/pg.
pg_paths() {
    local alt
    PG_BIN=$(pg_bindir) || die "PostgreSQL server tools not found"
    make_state_dirs
    PG_ROOT="$STATE/pg"
    if is_root; then
        id postgres >/dev/null 2>&1 || die "no 'postgres' user: PostgreSQL cannot run as root (install the postgresql package)"
        if [ -L "$PG_ROOT" ]; then
            PG_ROOT=$(readlink -f "$PG_ROOT")
            if [ ! -d "$PG_ROOT" ]; then # e.g. /var/tmp was cleaned: start a new cluster
                mkdir -p "$PG_ROOT"
                chown postgres: "$PG_ROOT"
                chmod 700 "$PG_ROOT"
            fi
            runuser -u postgres -- test -w "$PG_ROOT/." 2>/dev/null ||
                die "the postgres user cannot write $PG_ROOT (linked from $STATE/pg)"
        else
            chown postgres: "$PG_ROOT"
            chmod 700 "$PG_ROOT"
        fi
        if ! runuser -u postgres -- test -w "$PG_ROOT/." 2>/dev/null; then
            rmdir "$PG_ROOT" 2>/dev/null ||
                die "the postgres user cannot reach $PG_ROOT (not empty, so not moving it): check the folder permissions"
            alt="/var/tmp/mailcluster-pg-$(printf '%s' "$REPO" | cksum | cut -d' ' -f1)"
            mkdir -p "$alt"
            chown postgres: "$alt"
            chmod 700 "$alt"
            ln -s "$alt" "$PG_ROOT"
            log "the postgres user cannot reach $STATE; the PostgreSQL cluster lives in $alt (linked from .state/pg)"
            PG_ROOT=$alt
        fi
    fi
    PG_DATA="$PG_ROOT/data"
    PG_LOG="$PG_ROOT/postgres.log"
    PG_SOCKET_DIR="$PG_ROOT/socket"
    # A unix socket path must fit in 107 bytes; fall back to /tmp for deep checkouts.
    if ((${#PG_SOCKET_DIR} > 90)); then
        PG_SOCKET_DIR=/tmp
    fi
    pg_as_owner mkdir -p "$PG_SOCKET_DIR"
    ln -sfn "$PG_LOG" "$LOG_DIR/postgres.log"
}

psql_cmd() { # psql arguments...
    "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres "$@"
}

pg_running() {
    [ -s "$PG_DATA/PG_VERSION" ] && pg_as_owner "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1
}

ensure_postgres() {
    ensure_packages postgres
    pg_paths
    if [ ! -s "$PG_DATA/PG_VERSION" ]; then
        log "initialising PostgreSQL cluster in $PG_DATA"
        pg_as_owner "$PG_BIN/initdb" -D "$PG_DATA" -A trust -U postgres -E UTF8 --locale=C --no-sync \
            >"$PG_ROOT/initdb.log" 2>&1 || {
            cat "$PG_ROOT/initdb.log" >&2
            die "initdb failed"
        }
        printf "\ninclude_if_exists = 'mailcluster.conf'\n" | pg_as_owner tee -a "$PG_DATA/postgresql.conf" >/dev/null
    fi
    # Our settings, rewritten on every run so that changes here reach existing clusters.
    # max_connections: the tests run in parallel, each with its own database and pool.
    pg_as_owner tee "$PG_DATA/mailcluster.conf" >/dev/null <<EOF
# Written by ops/lib.sh; edits are overwritten.
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_SOCKET_DIR'
max_connections = 300
EOF
    if pg_running; then
        wait_until "$START_TIMEOUT" "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" ||
            die "PostgreSQL is running but does not answer on 127.0.0.1:$PG_PORT (log: $PG_LOG)"
        log "PostgreSQL already running on 127.0.0.1:$PG_PORT"
        return
    fi
    port_open "$PG_PORT" && die "port $PG_PORT is taken by another process; PostgreSQL cannot start. $PORT_HINT"
    log "starting PostgreSQL on 127.0.0.1:$PG_PORT"
    pg_as_owner "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t "$START_TIMEOUT" -s start 9>&- || {
        tail -n 20 "$PG_LOG" >&2 || true
        die "PostgreSQL did not start (log: $PG_LOG)"
    }
}

stop_postgres() {
    PG_BIN=$(pg_bindir) || return 0
    [ -e "$STATE/pg" ] || return 0
    pg_paths
    if pg_running; then
        log "stopping PostgreSQL"
        pg_as_owner "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t "$START_TIMEOUT" -s stop
    fi
}

pg_database_exists() { # name
    [ "$(psql_cmd -d postgres -At -c "SELECT 1 FROM pg_database WHERE datname = '$1'")" = 1 ]
}

ensure_database() { # name
    if ! pg_database_exists "$1"; then
        log "creating database $1"
        "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres "$1"
    fi
}

# ---------------------------------------------------------------------------------------------
# Redis

REDIS_PIDFILE="$RUN_DIR/redis.pid"

redis_ping() {
    [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]
}

ensure_redis() {
    ensure_packages redis
    make_state_dirs
    if redis_ping; then
        local dir
        dir=$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" config get dir 2>/dev/null | sed -n 2p)
        [ "$dir" = "$STATE/redis" ] ||
            die "the Redis on port $REDIS_PORT keeps its data in '$dir', not $STATE/redis: $PORT_HINT"
        log "Redis already running on 127.0.0.1:$REDIS_PORT"
        return
    fi
    port_open "$REDIS_PORT" && die "port $REDIS_PORT is taken by another process; Redis cannot start. $PORT_HINT"
    log "starting Redis on 127.0.0.1:$REDIS_PORT"
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$STATE/redis" --daemonize yes \
        --pidfile "$REDIS_PIDFILE" --logfile "$LOG_DIR/redis.log" 9>&- >/dev/null
    wait_until "$START_TIMEOUT" redis_ping || {
        tail -n 20 "$LOG_DIR/redis.log" >&2 || true
        die "Redis did not start (log: $LOG_DIR/redis.log)"
    }
}

stop_redis() {
    if redis_ping; then
        log "stopping Redis"
        # SHUTDOWN saves a final snapshot (default save points), so a restarted local stack sees a
        # consistent state rather than an older periodic snapshot.
        redis-cli -h 127.0.0.1 -p "$REDIS_PORT" shutdown >/dev/null 2>&1 || true
        wait_for_port_closed "$REDIS_PORT" 20 || true
    fi
    stop_pidfile "$REDIS_PIDFILE" redis-server Redis
}

# ---------------------------------------------------------------------------------------------
# Garage (S3)

GARAGE_BIN=""
GARAGE_PIDFILE="$RUN_DIR/garage.pid"

find_garage() {
    local candidate
    for candidate in "$(command -v garage 2>/dev/null || true)" "${CARGO_HOME:-$HOME/.cargo}/bin/garage" "$HOME/.cargo/bin/garage"; do
        if [ -n "$candidate" ] && [ -x "$candidate" ]; then
            GARAGE_BIN=$candidate
            return 0
        fi
    done
    return 1
}

# Builds Garage with cargo (several minutes, once), printing a heartbeat so CI logs do not go quiet.
install_garage() {
    local cargo pid next_report status=0 started=$SECONDS logfile="$LOG_DIR/garage-install.log"
    cargo=$(command -v cargo 2>/dev/null || echo "${CARGO_HOME:-$HOME/.cargo}/bin/cargo")
    [ -x "$cargo" ] || die "garage is not installed and cargo was not found to build it"
    if ! command -v cc >/dev/null 2>&1 || ! command -v make >/dev/null 2>&1; then
        apt_install build-essential pkg-config
    fi
    log "installing Garage $GARAGE_VERSION with cargo install (takes several minutes, once; log: $logfile)"
    "$cargo" install garage --locked --version "$GARAGE_VERSION" >"$logfile" 2>&1 </dev/null 9>&- &
    pid=$!
    next_report=$((SECONDS + 60))
    while kill -0 "$pid" 2>/dev/null; do
        sleep 2
        if ((SECONDS >= next_report)); then
            log "still building Garage ($((SECONDS - started))s, $(grep -c '^ *Compiling' "$logfile" || true) crates compiled)"
            next_report=$((next_report + 60))
        fi
    done
    wait "$pid" || status=$?
    if ((status != 0)); then
        tail -n 30 "$logfile" >&2 || true
        die "cargo install garage failed (log: $logfile)"
    fi
    find_garage || die "garage was installed but is neither in PATH nor in ~/.cargo/bin"
    log "Garage installed in $((SECONDS - started))s: $GARAGE_BIN"
}

garage_cli() { # garage subcommand arguments...
    "$GARAGE_BIN" -c "$GARAGE_CONF" "$@"
}

write_garage_config() {
    local rpc_secret admin_token tmp="$GARAGE_CONF.tmp" engine=lmdb
    rpc_secret=$(secret_file "$GARAGE_DIR/rpc_secret" 32)
    admin_token=$(secret_file "$GARAGE_DIR/admin_token" 32)
    # LMDB (Garage's default engine) costs about a third of SQLite's CPU per PUT here (ops/bench-smtp:
    # 174 against 541 us per 2 KiB message). State made by an earlier version with SQLite keeps it,
    # since Garage cannot open one engine's metadata with the other.
    if [ -e "$GARAGE_DIR/meta/db.sqlite" ]; then
        engine=sqlite
        log "Garage keeps its SQLite metadata engine; for the faster LMDB, run ops/down and delete $GARAGE_DIR"
    fi
    (umask 077 && cat >"$tmp") <<EOF
# Written by ops/lib.sh; edits are overwritten. The secrets come from the rpc_secret and
# admin_token files next to this one (generated once, kept).
metadata_dir = "$GARAGE_DIR/meta"
data_dir = "$GARAGE_DIR/data"
db_engine = "$engine"
replication_factor = 1

rpc_bind_addr = "127.0.0.1:$GARAGE_RPC_PORT"
rpc_public_addr = "127.0.0.1:$GARAGE_RPC_PORT"
rpc_secret = "$rpc_secret"

[s3_api]
api_bind_addr = "127.0.0.1:$GARAGE_S3_PORT"
s3_region = "$GARAGE_REGION"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:$GARAGE_ADMIN_PORT"
admin_token = "$admin_token"
EOF
    if cmp -s "$tmp" "$GARAGE_CONF"; then
        rm -f "$tmp"
    else
        mv "$tmp" "$GARAGE_CONF"
    fi
}

# One-time layout: while the cluster layout is at version 0, give our single node a role and
# capacity and apply layout version 1 (re-assigning is harmless if a run died between the two).
garage_layout() {
    local version node_id
    version=$(garage_cli layout show | sed -n 's/^Current cluster layout version: *//p')
    [ -n "$version" ] || die "could not read the Garage layout version from 'garage layout show'"
    ((version == 0)) || return 0
    node_id=$(garage_cli node id -q | cut -d@ -f1)
    [ -n "$node_id" ] || die "could not read the Garage node id"
    log "Garage: one-time layout (node ${node_id:0:16}, zone dc1, 1G)"
    garage_cli layout assign -z dc1 -c 1G "$node_id" >/dev/null
    garage_cli layout apply --version 1 >/dev/null
}

garage_buckets_and_key() {
    local bucket key_id secret
    for bucket in "${GARAGE_BUCKETS[@]}"; do
        if ! garage_cli bucket info "$bucket" >/dev/null 2>&1; then
            log "Garage: creating bucket $bucket"
            garage_cli bucket create "$bucket" >/dev/null
        fi
    done
    # Key names are not unique in Garage: create the key only when none has our name.
    if ! garage_cli key info "$GARAGE_KEY_NAME" >/dev/null 2>&1; then
        log "Garage: creating key $GARAGE_KEY_NAME"
        garage_cli key create "$GARAGE_KEY_NAME" >/dev/null
    fi
    for bucket in "${GARAGE_BUCKETS[@]}"; do
        garage_cli bucket allow --read --write --owner "$bucket" --key "$GARAGE_KEY_NAME" >/dev/null
    done
    key_id=$(garage_cli key info --key-id "$GARAGE_KEY_NAME")
    secret=$(garage_cli key info --secret-key "$GARAGE_KEY_NAME")
    [[ $key_id =~ ^GK[0-9a-f]+$ && $secret =~ ^[0-9a-f]+$ ]] ||
        die "unexpected key id or secret from 'garage key info $GARAGE_KEY_NAME'"
    (umask 077 && printf 'KEY_ID=%s\nSECRET=%s\n' "$key_id" "$secret" >"$GARAGE_CREDENTIALS")
}

ensure_garage() {
    make_state_dirs
    find_garage || install_garage
    "$GARAGE_BIN" --version 2>/dev/null | grep -qE "[: v]$GARAGE_VERSION( |$)" ||
        warn "$GARAGE_BIN is not Garage $GARAGE_VERSION ($("$GARAGE_BIN" --version 2>&1 | head -n1)); using it anyway"
    write_garage_config
    mkdir -p "$GARAGE_DIR/meta" "$GARAGE_DIR/data"
    if garage_cli status >/dev/null 2>&1; then
        log "Garage already running on 127.0.0.1:$GARAGE_S3_PORT"
    else
        local port
        for port in "$GARAGE_S3_PORT" "$GARAGE_RPC_PORT" "$GARAGE_ADMIN_PORT"; do
            port_open "$port" && die "port $port is taken by another process; Garage cannot start. $PORT_HINT"
        done
        log "starting Garage (S3 on 127.0.0.1:$GARAGE_S3_PORT)"
        start_background "$GARAGE_PIDFILE" "$LOG_DIR/garage.log" \
            env NO_COLOR=1 RUST_LOG="${GARAGE_RUST_LOG:-garage=info}" "$GARAGE_BIN" -c "$GARAGE_CONF" server
        wait_until "$START_TIMEOUT" garage_cli status || {
            tail -n 20 "$LOG_DIR/garage.log" >&2 || true
            die "Garage did not start (log: $LOG_DIR/garage.log)"
        }
    fi
    garage_layout
    garage_buckets_and_key
    wait_for_port "$GARAGE_S3_PORT" || die "Garage S3 API does not answer on 127.0.0.1:$GARAGE_S3_PORT"
}

stop_garage() {
    stop_pidfile "$GARAGE_PIDFILE" garage Garage
}

# ---------------------------------------------------------------------------------------------
# clamd (ClamAV) for the anti-virus tests
#
# A private clamd, not the system service: its own config, database folder and port. The database
# holds only test signatures written here (no freshclam, no network): the EICAR test file as an MD5
# hash (.hdb) and as a body pattern (.ndb), so it is found whether the file is scanned alone or
# inside a MIME attachment that clamd decodes. The EICAR string is kept in hex so that no scanner
# flags this script.

CLAMD_BIN=""
EICAR_HEX=58354f2150254041505b345c505a58353428505e2937434329377d2445494341522d5354414e444152442d414e544956495255532d544553542d46494c452124482b482a
EICAR_MD5=44d88612fea8a8f36de82e1278abb02f

find_clamd() {
    local candidate
    for candidate in "$(command -v clamd 2>/dev/null || true)" /usr/sbin/clamd /usr/local/sbin/clamd; do
        if [ -n "$candidate" ] && [ -x "$candidate" ]; then
            CLAMD_BIN=$candidate
            return 0
        fi
    done
    return 1
}

# True when a clamd answers PING on our port.
clamd_ping() {
    local reply
    reply=$(
        exec 3<>"/dev/tcp/127.0.0.1/$CLAMD_PORT" || exit 1
        printf 'zPING\0' >&3
        IFS= read -r -d '' -t 5 answer <&3 || true
        printf '%s' "${answer:-}"
    ) 2>/dev/null || return 1
    [ "$reply" = PONG ]
}

# Writes stdin to a file when it differs from the file's content; true when it did.
write_if_changed() { # path
    local tmp="$1.tmp"
    cat >"$tmp"
    if cmp -s "$tmp" "$1"; then
        rm -f "$tmp"
        return 1
    fi
    mv "$tmp" "$1"
}

# Writes clamd's config and test database; true when any of them changed.
write_clamd_config() {
    local changed=1
    mkdir -p "$CLAMAV_DIR/db" "$CLAMAV_DIR/tmp"
    # Anything else in the database folder (e.g. a copied official database) would be loaded too.
    find "$CLAMAV_DIR/db" -mindepth 1 -maxdepth 1 ! -name 'mailcluster-test.*' -exec rm -rf {} +
    write_if_changed "$CLAMAV_DIR/db/mailcluster-test.hdb" <<EOF && changed=0
$EICAR_MD5:68:Eicar-Test-Signature
EOF
    write_if_changed "$CLAMAV_DIR/db/mailcluster-test.ndb" <<EOF && changed=0
Eicar-Test-Signature-Body:0:*:$EICAR_HEX
EOF
    # No Bytecode (no bytecode database), no self-check (the database never changes while it
    # runs); StreamMaxLength above the largest antivirus_max_scan_kb the tests use.
    write_if_changed "$CLAMD_CONF" <<EOF && changed=0
# Written by ops/lib.sh; edits are overwritten.
TCPAddr 127.0.0.1
TCPSocket $CLAMD_PORT
DatabaseDirectory $CLAMAV_DIR/db
TemporaryDirectory $CLAMAV_DIR/tmp
LogFile $LOG_DIR/clamd.log
LogTime yes
Foreground yes
MaxThreads 4
StreamMaxLength 64M
SelfCheck 0
ConcurrentDatabaseReload no
Bytecode no
ScanMail yes
EOF
    return "$changed"
}

# Installs clamd if missing, writes its config and test database under .state/clamav and starts it
# on 127.0.0.1:$CLAMD_PORT; adds MAILCLUSTER_TEST_CLAMD to .state/test.env (run ensure_stores,
# which rewrites that file, first).
ensure_clamd() {
    local line="export MAILCLUSTER_TEST_CLAMD=127.0.0.1:$CLAMD_PORT" started
    make_state_dirs
    ensure_packages clamav
    find_clamd || die "clamd not found after installing clamav-daemon"
    if write_clamd_config && pidfile_alive "$CLAMD_PIDFILE" "$CLAMD_CONF"; then
        log "clamd configuration changed; restarting it"
        stop_clamd
    fi
    if pidfile_alive "$CLAMD_PIDFILE" "$CLAMD_CONF" && wait_until "$START_TIMEOUT" clamd_ping; then
        log "clamd already running on 127.0.0.1:$CLAMD_PORT"
    else
        port_open "$CLAMD_PORT" && die "port $CLAMD_PORT is taken by another process; clamd cannot start. $PORT_HINT"
        log "starting clamd on 127.0.0.1:$CLAMD_PORT (test signatures only)"
        started=$SECONDS
        # clamd repeats its log on stdout in the foreground: that copy goes to clamd.out, which
        # also catches what it prints before it opened its log.
        start_background "$CLAMD_PIDFILE" "$LOG_DIR/clamd.out" \
            "$CLAMD_BIN" --foreground --config-file="$CLAMD_CONF"
        wait_until "$START_TIMEOUT" clamd_ping || {
            tail -n 20 "$LOG_DIR/clamd.out" >&2 || true
            die "clamd did not start (log: $LOG_DIR/clamd.log, $LOG_DIR/clamd.out)"
        }
        log "clamd ready in $((SECONDS - started))s"
    fi
    if [ -e "$TEST_ENV" ] && ! grep -qxF "$line" "$TEST_ENV"; then
        echo "$line" >>"$TEST_ENV"
    fi
}

stop_clamd() {
    stop_pidfile "$CLAMD_PIDFILE" "$CLAMD_CONF" clamd
}

# ---------------------------------------------------------------------------------------------
# All stores

write_test_env() {
    local KEY_ID SECRET
    # shellcheck source=/dev/null
    . "$GARAGE_CREDENTIALS"
    (umask 077 && cat >"$TEST_ENV") <<EOF
# Written by ops/lib.sh for the tests: source it.
export MAILCLUSTER_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:$PG_PORT/postgres
export MAILCLUSTER_TEST_REDIS_URL=redis://127.0.0.1:$REDIS_PORT
export MAILCLUSTER_TEST_S3_ENDPOINT=http://127.0.0.1:$GARAGE_S3_PORT
export MAILCLUSTER_TEST_S3_REGION=$GARAGE_REGION
export MAILCLUSTER_TEST_S3_BUCKET=mailcluster-test
export MAILCLUSTER_TEST_S3_ACCESS_KEY_ID=$KEY_ID
export MAILCLUSTER_TEST_S3_SECRET_ACCESS_KEY=$SECRET
EOF
    # The Python tools, once ensure_python_tools made them (it adds this line itself the first
    # time).
    if [ -s "$PYTHON_VENV/requirements.sha256" ]; then
        echo "export MAILCLUSTER_TEST_VENV=$PYTHON_VENV" >>"$TEST_ENV"
    fi
    # clamd, once ensure_clamd set it up (it adds this line itself the first time).
    if [ -s "$CLAMD_CONF" ]; then
        echo "export MAILCLUSTER_TEST_CLAMD=127.0.0.1:$CLAMD_PORT" >>"$TEST_ENV"
    fi
}

# Installs what is missing, starts PostgreSQL, Redis and Garage, writes .state/test.env.
ensure_stores() {
    local started=$SECONDS
    make_state_dirs
    # One bootstrap at a time per checkout (e.g. ops/up and ops/test started together).
    if command -v flock >/dev/null 2>&1; then
        exec 9>"$RUN_DIR/stores.lock"
        flock -w 1800 9 || die "another ops script holds $RUN_DIR/stores.lock"
    fi
    ensure_packages postgres redis
    ensure_postgres
    ensure_redis
    ensure_garage
    write_test_env
    if command -v flock >/dev/null 2>&1; then
        exec 9>&-
    fi
    log "stores ready in $((SECONDS - started))s"
}

stop_stores() {
    stop_clamd
    stop_redis
    stop_garage
    stop_postgres
}

# ---------------------------------------------------------------------------------------------
# Python tools of the tests (tests/tools/: an SMTP receiver, a DKIM verifier)

# A venv in .state/venv holding the pinned packages of ops/python-requirements.txt; reinstalled only
# when that file changed (its hash is kept in the venv). Adds MAILCLUSTER_TEST_VENV to
# .state/test.env, so run ensure_stores (which rewrites that file) first.
ensure_python_tools() {
    local wanted installed="" stamp="$PYTHON_VENV/requirements.sha256" logfile="$LOG_DIR/pip.log"
    local line="export MAILCLUSTER_TEST_VENV=$PYTHON_VENV"
    make_state_dirs
    ensure_packages python
    # One install at a time per checkout (e.g. two ops/test started together).
    if command -v flock >/dev/null 2>&1; then
        exec 9>"$RUN_DIR/venv.lock"
        flock -w 600 9 || die "another ops script holds $RUN_DIR/venv.lock"
    fi
    wanted=$(sha256sum <"$PYTHON_REQUIREMENTS" | cut -d' ' -f1)
    # A venv whose python no longer runs (e.g. the system python was upgraded) is made anew.
    if [ -x "$PYTHON_VENV/bin/python" ] && "$PYTHON_VENV/bin/python" -c '' >/dev/null 2>&1; then
        [ -s "$stamp" ] && installed=$(<"$stamp")
    else
        log "creating the Python venv $PYTHON_VENV"
        rm -rf "$PYTHON_VENV"
        python3 -m venv "$PYTHON_VENV" >>"$logfile" 2>&1 || {
            tail -n 30 "$logfile" >&2 || true
            die "python3 -m venv $PYTHON_VENV failed (log: $logfile)"
        }
    fi
    if [ "$installed" != "$wanted" ]; then
        log "installing the Python test tools with pip (log: $logfile)"
        rm -f "$stamp"
        "$PYTHON_VENV/bin/python" -m pip install --disable-pip-version-check --no-input \
            -r "$PYTHON_REQUIREMENTS" </dev/null >>"$logfile" 2>&1 || {
            tail -n 30 "$logfile" >&2 || true
            die "pip install -r $PYTHON_REQUIREMENTS failed (log: $logfile)"
        }
        echo "$wanted" >"$stamp"
    fi
    if [ -e "$TEST_ENV" ] && ! grep -qxF "$line" "$TEST_ENV"; then
        echo "$line" >>"$TEST_ENV"
    fi
    if command -v flock >/dev/null 2>&1; then
        exec 9>&-
    fi
}

# ---------------------------------------------------------------------------------------------
# Services (ops/up, ops/down, ops/mailctl)

ADMIN_TOKEN_FILE="$STATE/admin-token"
SERVICE_CONFIG="$STATE/mailcluster.toml"

# MAILCLUSTER_PROFILE=dev (default) or release selects the cargo profile of the service binaries.
case ${MAILCLUSTER_PROFILE:-dev} in
    dev | debug) CARGO_PROFILE_ARGS=() PROFILE_DIR=debug ;;
    release) CARGO_PROFILE_ARGS=(--release) PROFILE_DIR=release ;;
    *) die "MAILCLUSTER_PROFILE must be dev or release, not '${MAILCLUSTER_PROFILE}'" ;;
esac

# The folder holding the built binaries of the selected profile.
target_dir() {
    local dir=${CARGO_TARGET_DIR:-$REPO/target}
    [[ $dir == /* ]] || dir="$REPO/$dir"
    echo "$dir/$PROFILE_DIR"
}

# Prints the HTTP status code of a GET (000 when nothing answers), with whatever client exists.
http_status() { # url
    local url=$1 hostport path reply
    if command -v curl >/dev/null 2>&1; then
        curl -s -o /dev/null -m 5 -w '%{http_code}' "$url" || true
    elif command -v python3 >/dev/null 2>&1; then
        python3 - "$url" <<'PY' 2>/dev/null || echo 000
import sys, urllib.request, urllib.error
try:
    print(urllib.request.urlopen(sys.argv[1], timeout=5).status)
except urllib.error.HTTPError as e:
    print(e.code)
PY
    else
        hostport=${url#http://}
        path="/${hostport#*/}"
        hostport=${hostport%%/*}
        reply=$(
            exec 3<>"/dev/tcp/${hostport%:*}/${hostport##*:}" || exit 0
            printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$path" "$hostport" >&3
            head -n1 <&3
        ) 2>/dev/null || true
        reply=${reply#HTTP/* }
        echo "${reply:0:3}" | grep -E '^[0-9]{3}$' || echo 000
    fi
}

# A self-signed certificate for localhost in $TLS_DIR (for STARTTLS and implicit TLS on the local
# stack). Prints nothing and returns 1 when openssl is missing.
ensure_local_certificate() {
    [ -s "$TLS_DIR/cert.pem" ] && [ -s "$TLS_DIR/key.pem" ] && return 0
    command -v openssl >/dev/null 2>&1 || return 1
    mkdir -p "$TLS_DIR"
    (umask 077 && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$TLS_DIR/key.pem" -out "$TLS_DIR/cert.pem" -days 3650 -subj /CN=localhost \
        -addext subjectAltName=DNS:localhost,IP:127.0.0.1 >/dev/null 2>&1)
}

# Starts one service in the background and waits until its /readyz answers 200.
start_service() { # name ready-url command...
    local name=$1 ready_url=$2 deadline
    shift 2
    log "starting $name (log: $LOG_DIR/$name.log)"
    printf '\n--- %s ops/up\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >>"$LOG_DIR/$name.log"
    start_background "$RUN_DIR/$name.pid" "$LOG_DIR/$name.log" env NO_COLOR=1 "$@"
    deadline=$((SECONDS + START_TIMEOUT))
    until [ "$(http_status "$ready_url")" = 200 ]; do
        # Alive is enough here: right after the fork the process may not have exec'd the service
        # yet, so its command line (what pidfile_alive matches) can still be this shell's.
        if ! kill -0 "$(<"$RUN_DIR/$name.pid")" 2>/dev/null; then
            rm -f "$RUN_DIR/$name.pid"
            tail -n 30 "$LOG_DIR/$name.log" >&2 || true
            die "$name exited during startup (log: $LOG_DIR/$name.log)"
        fi
        if ((SECONDS >= deadline)); then
            tail -n 30 "$LOG_DIR/$name.log" >&2 || true
            die "$name not ready after ${START_TIMEOUT}s at $ready_url (log: $LOG_DIR/$name.log)"
        fi
        sleep 0.3
    done
}

# Stops every service ops/up started: each .state/run/<name>.pid except the stores'.
stop_services() {
    local pidfile name
    for pidfile in "$RUN_DIR"/*.pid; do
        [ -e "$pidfile" ] || continue
        name=$(basename "$pidfile" .pid)
        case $name in
            redis | garage | clamd) continue ;;
        esac
        stop_pidfile "$pidfile" "$name" "$name" "$SERVICE_STOP_TIMEOUT"
    done
}
