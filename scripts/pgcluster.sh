#!/usr/bin/env bash
#
# pgcluster.sh - manage a private PostgreSQL cluster for development and tests.
#
# Usage:
#   scripts/pgcluster.sh start  DATADIR PORT   # init if needed, start, wait, create db "perks"
#   scripts/pgcluster.sh stop   DATADIR        # fast stop if running (no error otherwise)
#   scripts/pgcluster.sh status DATADIR        # exit 0 if running, 3 if not
#   scripts/pgcluster.sh url    DATADIR PORT   # print the connection URL
#
# "start" is idempotent and safe to call concurrently from several processes:
# it serialises on flock(1) over the lock file DATADIR.lock.
#
# All progress messages go to stderr; stdout is reserved for "url" output.
#
# Environment:
#   PGCLUSTER_LOCK_TIMEOUT  seconds to wait for DATADIR.lock (default 300)
#   PGCLUSTER_READY_TIMEOUT seconds to wait for pg_isready   (default 30)
#   PGCLUSTER_PG_LIBDIR     fallback binary root             (default /usr/lib/postgresql)

set -euo pipefail

readonly PROG="${0##*/}"
readonly DB_NAME="perks"
readonly DB_USER="postgres"
readonly LISTEN_HOST="127.0.0.1"
readonly CONF_INCLUDE="perks.conf"
readonly LOCK_TIMEOUT="${PGCLUSTER_LOCK_TIMEOUT:-300}"
readonly READY_TIMEOUT="${PGCLUSTER_READY_TIMEOUT:-30}"
readonly PG_LIBDIR="${PGCLUSTER_PG_LIBDIR:-/usr/lib/postgresql}"

log() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() { printf '%s: error: %s\n' "$PROG" "$*" >&2; exit 1; }

usage() {
	cat >&2 <<EOF
usage:
  $PROG start  DATADIR PORT   init if needed, start if not running, create database '$DB_NAME'
  $PROG stop   DATADIR        fast stop if running
  $PROG status DATADIR        exit 0 if running, 3 if not
  $PROG url    DATADIR PORT   print the connection URL
EOF
	exit 2
}

# ---------------------------------------------------------------------------
# Binaries
# ---------------------------------------------------------------------------

INITDB="" PG_CTL="" PG_ISREADY="" PSQL=""

# Highest-versioned /usr/lib/postgresql/*/bin directory containing $1, if any.
pg_libdir_bin() {
	local name="$1" dir best=""
	while IFS= read -r dir; do
		[[ -x "$dir/$name" ]] && best="$dir"
	done < <(compgen -G "$PG_LIBDIR/*/bin" | sort -V || true)
	[[ -n "$best" ]] && printf '%s\n' "$best/$name"
	return 0
}

# find_bin NAME: PATH first, else highest version under /usr/lib/postgresql.
find_bin() {
	local name="$1" p
	if p="$(command -v "$name" 2>/dev/null)" && [[ -n "$p" ]]; then
		printf '%s\n' "$p"
		return 0
	fi
	pg_libdir_bin "$name"
}

find_server_bins() {
	INITDB="$(find_bin initdb)"
	PG_CTL="$(find_bin pg_ctl)"
	if [[ -z "$INITDB" || -z "$PG_CTL" ]]; then
		echo "PostgreSQL server binaries not found: install the Debian package 'postgresql' (apt-get install -y postgresql)" >&2
		exit 1
	fi
}

find_client_bins() {
	PG_ISREADY="$(find_bin pg_isready)"
	PSQL="$(find_bin psql)"
	if [[ -z "$PG_ISREADY" || -z "$PSQL" ]]; then
		echo "PostgreSQL server binaries not found: install the Debian package 'postgresql' (apt-get install -y postgresql)" >&2
		exit 1
	fi
}

# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------

# Absolute, normalised path for $1 (which need not exist).
abspath() {
	local p="$1"
	[[ -n "$p" ]] || die "empty DATADIR"
	[[ "$p" == /* ]] || p="$PWD/$p"
	# realpath -m normalises ".", ".." and duplicate slashes without
	# requiring the path to exist.
	realpath -m -- "$p"
}

validate_port() {
	local port="$1"
	[[ "$port" =~ ^[0-9]+$ ]] && ((10#$port >= 1 && 10#$port <= 65535)) ||
		die "invalid PORT '$port' (want 1-65535)"
}

IS_ROOT=0
[[ "$(id -u)" -eq 0 ]] && IS_ROOT=1
RUN_AS=""   # user that owns / runs the cluster when we are root
RUNUSER=""  # path to runuser(1), or empty to fall back to su(1)

# Run a command as the cluster owner (postgres when we are root).
# Runs from / so that an inaccessible cwd does not upset initdb/pg_ctl.
as_pg() {
	if ((IS_ROOT)); then
		if [[ -n "$RUNUSER" ]]; then
			(cd / && "$RUNUSER" -u "$RUN_AS" -- "$@")
		else
			# shellcheck disable=SC2016 # expanded by the inner shell
			# "--" stops su's option parsing; the rest becomes $0 "$@".
			(cd / && su -s /bin/sh -c 'exec "$@"' -- "$RUN_AS" sh "$@")
		fi
	else
		(cd / && "$@")
	fi
}

# Decide which user runs the server when invoked as root.
pick_run_as() {
	local datadir="$1" owner
	((IS_ROOT)) || return 0
	RUN_AS="postgres"
	if [[ -f "$datadir/PG_VERSION" ]]; then
		owner="$(stat -c %U -- "$datadir")"
		if [[ "$owner" != "root" && "$owner" != "UNKNOWN" ]]; then
			RUN_AS="$owner"
		fi
	fi
	id -u "$RUN_AS" >/dev/null 2>&1 ||
		die "user '$RUN_AS' does not exist; cannot run PostgreSQL as root (create it, e.g. apt-get install -y postgresql)"
	local p
	RUNUSER=""
	for p in "$(command -v runuser 2>/dev/null || true)" /usr/sbin/runuser /sbin/runuser; do
		if [[ -n "$p" && -x "$p" ]]; then
			RUNUSER="$p"
			break
		fi
	done
	if [[ -z "$RUNUSER" ]] && ! command -v su >/dev/null 2>&1; then
		die "neither runuser nor su found (needed to drop root privileges)"
	fi
	# Make sure privilege dropping works before relying on it (e.g. for the
	# directory traversal checks below).
	as_pg true || die "cannot run commands as user '$RUN_AS'"
}

# mkdir -p DIR; when root, make every directory we create traversable by
# others (o+x) so the unprivileged cluster user can reach the data dir.
make_parents() {
	local dir="$1" created=() d
	while [[ ! -e "$dir" ]]; do
		created+=("$dir")
		dir="$(dirname -- "$dir")"
	done
	mkdir -p -- "$1"
	if ((IS_ROOT)); then
		for d in "${created[@]}"; do
			chmod o+x -- "$d"
		done
	fi
}

# Take an exclusive lock on DATADIR.lock (held until the script exits).
take_lock() {
	local datadir="$1" lock="$1.lock"
	make_parents "$(dirname -- "$datadir")"
	exec 9>>"$lock" || die "cannot open lock file $lock"
	if ! flock -n 9; then
		log "waiting for lock $lock"
		flock -w "$LOCK_TIMEOUT" 9 || die "timed out after ${LOCK_TIMEOUT}s waiting for lock $lock"
	fi
}

is_initialised() { [[ -f "$1/PG_VERSION" ]]; }

# Exit status of "pg_ctl status": 0 running, 3 not running, 4 no data dir.
pg_running() {
	local datadir="$1"
	is_initialised "$datadir" || return 3
	as_pg "$PG_CTL" status -D "$datadir" >/dev/null 2>&1
}

# Port the running postmaster listens on (from postmaster.pid line 4).
running_port() {
	local pidfile="$1/postmaster.pid"
	[[ -r "$pidfile" ]] || return 0
	sed -n '4p' -- "$pidfile" 2>/dev/null | tr -d '[:space:]'
}

# When running as root, make DATADIR exist, be owned by the cluster user
# and be reachable (every parent traversable) by that user.
prepare_datadir_as_root() {
	local datadir="$1" dir d
	make_parents "$(dirname -- "$datadir")"
	mkdir -p -- "$datadir"

	# Every parent must be traversable by the cluster user. Check from /
	# downwards (a parent's verdict depends on its ancestors) and add o+x
	# only where it is actually missing.
	if ! as_pg test -x "$datadir"; then
		local parents=()
		dir="$(dirname -- "$datadir")"
		while [[ "$dir" != "/" ]]; do
			parents=("$dir" "${parents[@]}")
			dir="$(dirname -- "$dir")"
		done
		for d in "${parents[@]}"; do
			if ! as_pg test -x "$d"; then
				log "making $d traversable (chmod o+x) for user $RUN_AS"
				chmod o+x -- "$d"
			fi
		done
	fi

	# The data directory itself must belong to the cluster user.
	if [[ "$(stat -c %U -- "$datadir")" != "$RUN_AS" ]]; then
		if is_initialised "$datadir"; then
			log "changing ownership of $datadir to $RUN_AS"
			chown -R -- "$RUN_AS:" "$datadir"
		else
			chown -- "$RUN_AS:" "$datadir"
		fi
	fi
	chmod 0700 -- "$datadir"
}

init_cluster() {
	local datadir="$1" extra=() locale
	if [[ -e "$datadir" && ! -d "$datadir" ]]; then
		die "$datadir exists and is not a directory"
	fi
	if [[ -d "$datadir" ]] && [[ -n "$(ls -A -- "$datadir" 2>/dev/null)" ]]; then
		die "$datadir is not empty but has no PG_VERSION; refusing to initialise over it (remove it first)"
	fi

	if ((IS_ROOT)); then
		prepare_datadir_as_root "$datadir"
	else
		mkdir -p -- "$datadir"
		chmod 0700 -- "$datadir"
	fi

	if "$INITDB" --help 2>/dev/null | grep -q -- '--no-instructions'; then
		extra+=(--no-instructions)
	fi

	for locale in C.UTF-8 C; do
		log "initialising cluster in $datadir (locale $locale)"
		if as_pg "$INITDB" -D "$datadir" -U "$DB_USER" --auth=trust -E UTF8 \
			--locale="$locale" "${extra[@]}" >"$datadir.initdb.log" 2>&1; then
			rm -f -- "$datadir.initdb.log"
			return 0
		fi
		log "initdb with locale $locale failed:"
		tail -n 20 -- "$datadir.initdb.log" >&2 || true
		# initdb removes what it created on failure, but be defensive so a
		# retry starts from an empty directory.
		if [[ -d "$datadir" ]] && ! is_initialised "$datadir"; then
			find "$datadir" -mindepth 1 -delete 2>/dev/null || true
		fi
	done
	die "initdb failed (see $datadir.initdb.log)"
}

# Write the managed settings; idempotent (only rewrites when content changes,
# adds the include directive to postgresql.conf at most once).
configure_cluster() {
	local datadir="$1" port="$2" conf="$1/postgresql.conf" inc="$1/$CONF_INCLUDE"
	local sockdir="$datadir" content tmp

	# Unix socket paths are limited to ~107 bytes; if the data dir path is
	# too long, disable the socket (everything here connects over TCP).
	if ((${#sockdir} + ${#port} + 12 > 100)); then
		log "data dir path too long for a unix socket; disabling unix sockets"
		sockdir=""
	fi

	content="# Managed by scripts/pgcluster.sh - do not edit; rewritten on start.
listen_addresses = '$LISTEN_HOST'
port = $port
unix_socket_directories = '$sockdir'
max_connections = 600
shared_buffers = 256MB
fsync = on
synchronous_commit = on
"
	if [[ ! -f "$inc" ]] || [[ "$(cat -- "$inc")"$'\n' != "$content" ]]; then
		tmp="$inc.tmp.$$"
		printf '%s' "$content" >"$tmp"
		((IS_ROOT)) && chown -- "$RUN_AS:" "$tmp"
		chmod 0600 -- "$tmp"
		mv -f -- "$tmp" "$inc"
	fi

	if ! grep -qE "^[[:space:]]*include_if_exists[[:space:]]*=[[:space:]]*'$CONF_INCLUDE'" -- "$conf"; then
		printf '\n# Added by scripts/pgcluster.sh\ninclude_if_exists = '\''%s'\''\n' "$CONF_INCLUDE" >>"$conf"
	fi
}

wait_ready() {
	local port="$1" deadline=$((SECONDS + READY_TIMEOUT))
	while :; do
		if "$PG_ISREADY" -q -h "$LISTEN_HOST" -p "$port" -U "$DB_USER" -d postgres -t 2 >/dev/null 2>&1; then
			return 0
		fi
		((SECONDS >= deadline)) && return 1
		sleep 0.2
	done
}

psql_admin() {
	local port="$1"
	shift
	PGCONNECT_TIMEOUT=10 "$PSQL" -X -q -v ON_ERROR_STOP=1 \
		"host=$LISTEN_HOST port=$port user=$DB_USER dbname=postgres sslmode=disable" "$@"
}

ensure_database() {
	local port="$1" exists
	exists="$(psql_admin "$port" -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'")" ||
		die "cannot query databases on $LISTEN_HOST:$port"
	if [[ "$exists" == "1" ]]; then
		return 0
	fi
	log "creating database $DB_NAME"
	if ! psql_admin "$port" -c "CREATE DATABASE \"$DB_NAME\"" >/dev/null 2>&1; then
		# Someone else (not using our lock) may have created it concurrently.
		exists="$(psql_admin "$port" -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'" || true)"
		[[ "$exists" == "1" ]] || die "failed to create database $DB_NAME"
	fi
}

# ---------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------

cmd_start() {
	local datadir="$1" port="$2" rport logfile rc=0
	validate_port "$port"
	find_server_bins
	find_client_bins
	take_lock "$datadir"
	pick_run_as "$datadir"

	logfile="$datadir/server.log"

	if ! is_initialised "$datadir"; then
		init_cluster "$datadir"
	elif ((IS_ROOT)); then
		prepare_datadir_as_root "$datadir"
	fi

	pg_running "$datadir" || rc=$?
	if ((rc == 0)); then
		rport="$(running_port "$datadir")"
		if [[ -n "$rport" && "$rport" != "$port" ]]; then
			die "cluster in $datadir is already running on port $rport, not $port (stop it first)"
		fi
		configure_cluster "$datadir" "$port"
		log "cluster in $datadir already running on port $port"
	else
		configure_cluster "$datadir" "$port"
		log "starting cluster in $datadir on port $port (log: $logfile)"
		# fd 9 (the lock) must not leak into the postmaster, or the lock
		# would be held for the server's whole lifetime.
		if ! as_pg "$PG_CTL" start -D "$datadir" -l "$logfile" -w -t 60 -s >&2 9>&-; then
			echo "$PROG: error: pg_ctl start failed; last 30 lines of $logfile:" >&2
			tail -n 30 -- "$logfile" >&2 2>/dev/null || echo "(no server log)" >&2
			exit 1
		fi
	fi

	if ! wait_ready "$port"; then
		echo "$PROG: error: server on $LISTEN_HOST:$port not ready after ${READY_TIMEOUT}s; last 30 lines of $logfile:" >&2
		tail -n 30 -- "$logfile" >&2 2>/dev/null || true
		exit 1
	fi

	ensure_database "$port"
	log "ready: $(cmd_url "$datadir" "$port")"
}

cmd_stop() {
	local datadir="$1" rc=0
	if ! is_initialised "$datadir"; then
		log "no cluster in $datadir; nothing to stop"
		return 0
	fi
	find_server_bins
	take_lock "$datadir"
	pick_run_as "$datadir"
	pg_running "$datadir" || rc=$?
	if ((rc != 0)); then
		log "cluster in $datadir is not running"
		return 0
	fi
	log "stopping cluster in $datadir"
	as_pg "$PG_CTL" stop -D "$datadir" -m fast -w -t 60 -s >&2 9>&- ||
		die "pg_ctl stop failed for $datadir"
}

cmd_status() {
	local datadir="$1"
	if ! is_initialised "$datadir"; then
		log "no cluster in $datadir"
		exit 3
	fi
	find_server_bins
	pick_run_as "$datadir"
	if pg_running "$datadir"; then
		log "running (port $(running_port "$datadir"))"
		exit 0
	fi
	log "not running"
	exit 3
}

cmd_url() {
	local port="$2"
	validate_port "$port"
	printf 'postgres://%s@%s:%s/%s?sslmode=disable\n' "$DB_USER" "$LISTEN_HOST" "$port" "$DB_NAME"
}

main() {
	(($# >= 1)) || usage
	local cmd="$1"
	shift
	case "$cmd" in
	start)
		(($# == 2)) || usage
		cmd_start "$(abspath "$1")" "$2"
		;;
	stop)
		(($# == 1)) || usage
		cmd_stop "$(abspath "$1")"
		;;
	status)
		(($# == 1)) || usage
		cmd_status "$(abspath "$1")"
		;;
	url)
		(($# == 2)) || usage
		cmd_url "$(abspath "$1")" "$2"
		;;
	-h | --help | help) usage ;;
	*) usage ;;
	esac
}

main "$@"
