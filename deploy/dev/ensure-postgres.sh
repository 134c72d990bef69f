#!/usr/bin/env bash
# ensure-postgres.sh: make sure a PostgreSQL server accepts connections at
# 127.0.0.1:5432 as user "postgres" without a password (trust), for tests and
# `modledger dev`. Idempotent: run it as often as you like.
#
# It tries, in order:
#   1. a server already answering on 127.0.0.1:5432: nothing to do;
#   2. an existing Debian/Ubuntu cluster on port 5432 (pg_lsclusters): start it;
#   3. no PostgreSQL installed and running as root: apt-get install postgresql,
#      then start the cluster the package created;
#   4. a private cluster made with initdb/pg_ctl in $MODLEDGER_PG_DIR
#      (default /tmp/modledger-postgres), run as the postgres user when root.
#
# Usage: deploy/dev/ensure-postgres.sh [private-cluster-dir]
# Environment: MODLEDGER_PG_DIR (private cluster directory),
#              MODLEDGER_PG_WAIT (seconds to wait for readiness, default 60).
set -euo pipefail

HOST=127.0.0.1
PORT=5432
PGUSER_NAME=postgres
PRIVATE_DIR="${1:-${MODLEDGER_PG_DIR:-/tmp/modledger-postgres}}"
WAIT_SECONDS="${MODLEDGER_PG_WAIT:-60}"

log() { printf 'ensure-postgres: %s\n' "$*" >&2; }
die() {
	log "ERROR: $*"
	exit 1
}

is_root() { [ "$(id -u)" -eq 0 ]; }

# pg_bin NAME: the path of a PostgreSQL server program (initdb, pg_ctl,
# pg_isready), from PATH or the newest Debian version directory.
pg_bin() {
	local name=$1 dir
	if command -v "$name" >/dev/null 2>&1; then
		command -v "$name"
		return 0
	fi
	for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5,5 -rn); do
		if [ -x "$dir/$name" ]; then
			echo "$dir/$name"
			return 0
		fi
	done
	return 1
}

ready() {
	local isready
	isready=$(pg_bin pg_isready) || return 1
	"$isready" -q -h "$HOST" -p "$PORT" >/dev/null 2>&1
}

wait_ready() {
	local i
	for ((i = 0; i < WAIT_SECONDS * 5; i++)); do
		if ready; then
			return 0
		fi
		sleep 0.2
	done
	return 1
}

# check_trust: warn (it cannot be fixed from here) when the server wants a
# password from user postgres over TCP.
check_trust() {
	local psql
	psql=$(pg_bin psql) || return 0
	if ! PGCONNECT_TIMEOUT=5 "$psql" -w -X -q -h "$HOST" -p "$PORT" -U "$PGUSER_NAME" -d postgres \
		-c 'SELECT 1' >/dev/null 2>&1; then
		log "WARNING: the server at $HOST:$PORT is up but user $PGUSER_NAME cannot log in without a password."
		log "         Tests need trust auth for host $HOST, or set MODLEDGER_TEST_DATABASE_URL with credentials."
		return 1
	fi
}

done_ok() {
	log "PostgreSQL is ready at postgres://$PGUSER_NAME@$HOST:$PORT/postgres ($1)"
	check_trust || true
	exit 0
}

# debian_cluster: print "VERSION NAME" of a Debian cluster on $PORT.
debian_cluster() {
	command -v pg_lsclusters >/dev/null 2>&1 || return 1
	pg_lsclusters --no-header 2>/dev/null | awk -v port="$PORT" '$3 == port { print $1, $2; found = 1; exit } END { exit !found }'
}

# ensure_debian_trust VERSION NAME: make TCP logins from 127.0.0.1 as postgres
# trusted, if they are not yet, by prepending one pg_hba.conf line.
ensure_debian_trust() {
	local hba="/etc/postgresql/$1/$2/pg_hba.conf" line="host all $PGUSER_NAME $HOST/32 trust"
	[ -f "$hba" ] || return 0
	if grep -Eq "^[[:space:]]*host[[:space:]]+all[[:space:]]+(all|$PGUSER_NAME)[[:space:]]+$HOST/32[[:space:]]+trust" "$hba"; then
		return 0
	fi
	if ! is_root && [ ! -w "$hba" ]; then
		log "cannot edit $hba to allow trust logins (not root)"
		return 0
	fi
	log "adding '$line' to the top of $hba (development machine only)"
	local tmp
	tmp=$(mktemp)
	{
		echo "# Added by modledger deploy/dev/ensure-postgres.sh for local development."
		echo "$line"
		cat "$hba"
	} >"$tmp"
	cat "$tmp" >"$hba"
	rm -f "$tmp"
	pg_ctlcluster --skip-systemctl-redirect "$1" "$2" reload >/dev/null 2>&1 || true
}

start_debian_cluster() {
	local version=$1 name=$2
	log "starting Debian cluster $version/$name on port $PORT"
	ensure_debian_trust "$version" "$name"
	if ! pg_ctlcluster --skip-systemctl-redirect "$version" "$name" start; then
		# "already running" also exits non-zero; readiness decides.
		log "pg_ctlcluster start $version $name returned an error"
	fi
	if wait_ready; then
		done_ok "Debian cluster $version/$name"
	fi
	log "Debian cluster $version/$name did not become ready; see /var/log/postgresql/postgresql-$version-$name.log"
	return 1
}

# run_as_pg CMD...: run a command as the postgres user when root (initdb and
# pg_ctl refuse to run as root), else as ourselves.
run_as_pg() {
	if is_root; then
		runuser -u "$PGUSER_NAME" -- "$@"
	else
		"$@"
	fi
}

start_private_cluster() {
	local initdb pg_ctl data="$PRIVATE_DIR/data" logfile="$PRIVATE_DIR/postgres.log"
	initdb=$(pg_bin initdb) || die "no initdb found (PATH or /usr/lib/postgresql/*/bin); install PostgreSQL"
	pg_ctl=$(pg_bin pg_ctl) || die "no pg_ctl found next to initdb"

	if is_root && ! id "$PGUSER_NAME" >/dev/null 2>&1; then
		log "creating system user $PGUSER_NAME"
		useradd --system --home-dir "$PRIVATE_DIR" --shell /bin/bash "$PGUSER_NAME" ||
			die "could not create user $PGUSER_NAME"
	fi
	mkdir -p "$PRIVATE_DIR"
	if is_root; then
		chown "$PGUSER_NAME": "$PRIVATE_DIR"
	fi
	chmod 700 "$PRIVATE_DIR"

	if [ ! -f "$data/PG_VERSION" ]; then
		log "initialising a private cluster in $data"
		run_as_pg "$initdb" -D "$data" -A trust -U "$PGUSER_NAME" -E UTF8 --no-instructions >"$PRIVATE_DIR/initdb.log" 2>&1 ||
			die "initdb failed; see $PRIVATE_DIR/initdb.log"
	fi

	log "starting the private cluster in $data on $HOST:$PORT (log: $logfile)"
	# The Unix socket goes in the cluster directory: /var/run/postgresql may
	# not exist or be writable.
	run_as_pg "$pg_ctl" -D "$data" -l "$logfile" -w -t "$WAIT_SECONDS" \
		-o "-c listen_addresses=$HOST -c port=$PORT -c unix_socket_directories=$PRIVATE_DIR" start ||
		die "pg_ctl start failed; see $logfile"
	wait_ready || die "the private cluster did not become ready; see $logfile"
	done_ok "private cluster in $data; stop it with: $(is_root && echo "runuser -u $PGUSER_NAME -- ")$pg_ctl -D $data stop"
}

main() {
	if ready; then
		done_ok "already running"
	fi
	log "nothing answers on $HOST:$PORT"

	local cluster
	if cluster=$(debian_cluster); then
		# shellcheck disable=SC2086 # two words on purpose
		start_debian_cluster $cluster || true
	elif ! pg_bin initdb >/dev/null 2>&1; then
		if is_root && command -v apt-get >/dev/null 2>&1; then
			log "PostgreSQL is not installed; installing it with apt-get"
			export DEBIAN_FRONTEND=noninteractive
			apt-get update -q
			apt-get install -y -q postgresql
			if cluster=$(debian_cluster); then
				# shellcheck disable=SC2086
				start_debian_cluster $cluster || true
			fi
		else
			die "PostgreSQL is not installed and this script cannot install it (needs root and apt-get). Install PostgreSQL, or set MODLEDGER_TEST_DATABASE_URL / DATABASE_URL to a server you have."
		fi
	fi

	if ready; then
		done_ok "started"
	fi
	log "falling back to a private cluster"
	start_private_cluster
}

main
