# fixture-nvme.sh: the NVMe/TCP fixture of guest/scenarios.sh (busybox sh;
# sourced after lib.sh and fixture-daemon.sh, never run).  The kernel NVMe
# host and target (nvmet) talk to each other over 127.0.0.1 (PSK
# handshakes, both going to the daemon under test); lib.sh configures the
# target and connects hosts, these helpers build the scenarios' steps.
#
# host1 sets HOST1NQN and HOST1ID; connect_wait (and connect_at_once) sets
# CTRLS and CONNECTS_MS.

CFS=/sys/kernel/config/nvmet
SUBNQN=nqn.2024-01.org.example.tlshd:vm-test
PORT=4420

TARGET_STATE=      # "", "ok" or "failed"
TARGET_DIAG=/tmp/target.diag
NVME_KR=

# Load modules, find the .nvme keyring, configure the nvmet subsystem and TLS
# port (nvmet_setup); done once, by the first scenario that needs it, whose
# diagnostics (and those of every later one, if it failed) tell how it went.
setup_target() {
	case $TARGET_STATE in
	ok) return 0 ;;
	failed) cat "$TARGET_DIAG" >>"$DIAG"; return 1 ;;
	esac
	TARGET_STATE=failed
	: >"$TARGET_DIAG"
	# (/init mounts configfs; nvmet_setup mounts it on a kernel where that
	# failed.)
	nvmet_setup 2>>"$TARGET_DIAG" || { cat "$TARGET_DIAG" >>"$DIAG"; return 1; }
	diag "nvmet port 1: $(cat "$CFS/ports/1/addr_traddr"):$PORT tsas=$(cat "$CFS/ports/1/addr_tsas") treq=$(cat "$CFS/ports/1/addr_treq"); .nvme keyring $NVME_KR"
	TARGET_STATE=ok
	return 0
}

# Reads completed by a disk (first field of /sys/block/<disk>/stat).
disk_reads() { awk '{ print $1 }' "/sys/block/$1/stat" 2>/dev/null || echo 0; }

# The host identity of the good connects (HOST1NQN, HOST1ID): made by the
# first scenario that needs one (scenario 1), reused by the later ones.
host1() {
	[ -n "${HOST1NQN:-}" ] && return 0
	new_host || return 1
	HOST1NQN=$HOSTNQN HOST1ID=$HOSTID
}

# good_connect HOSTNQN HOSTID: connect, read 16 MiB, kTLS active, client and
# server PSK handshakes logged, disconnect.
good_connect() {
	local mark rc=0
	mark=$(log_mark)
	nvme_connect "" "$1" "$2" || {
		fail "connect failed after ${CONNECT_MS} ms: $CONNECT_ERR"
		return 1
	}
	# (tools/demo.sh picks this line and read_over_tls's out of the TAP.)
	diag "connected nvme$CTRL in ${CONNECT_MS} ms"
	if read_over_tls "$CTRL" 16 && need_handshakes "$mark" auth=psk auth=psk; then
		handshake_tally "$mark"
	else
		rc=1
	fi
	disconnect "$CTRL" || { fail "could not delete controller nvme$CTRL"; rc=1; }
	return $rc
}

# nvme_connect_refused WHAT OPTIONS HOSTNQN HOSTID [MAX_MS]: a connect
# (nvme_connect) that must fail, and within MAX_MS if given.  WHAT says
# which in the failure ("with a mismatched PSK").
nvme_connect_refused() {
	if nvme_connect "$2" "$3" "$4"; then
		fail "connect $1 SUCCEEDED (nvme$CTRL) after ${CONNECT_MS} ms"
		disconnect "$CTRL"
		return 1
	fi
	diag "connect failed as expected after ${CONNECT_MS} ms: $CONNECT_ERR"
	[ -z "${5:-}" ] || [ "$CONNECT_MS" -le "$5" ] ||
		{ fail "failing connect took ${CONNECT_MS} ms (limit $5)"; return 1; }
}

# disconnect_each CTRL...: delete these controllers (disconnect); fails if
# one stays.
disconnect_each() {
	local c rc=0
	for c; do
		disconnect "$c" || { fail "could not delete controller nvme$c"; rc=1; }
	done
	return $rc
}

# new_hosts N: N new host identities (new_host) for connect_at_once.
new_hosts() {
	local i=1
	while [ "$i" -le "$1" ]; do
		new_host || return 1
		echo "$HOSTNQN $HOSTID" >"/tmp/host.$i"
		i=$((i + 1))
	done
}

# connect_start N: start connecting the N hosts of new_hosts concurrently
# (many handshakes at once), in the background; connect_wait collects them.
connect_start() {
	local i=1
	CONNECT_N=$1 CONNECT_PIDS='' CONNECT_T0=$(now_ms)
	while [ "$i" -le "$1" ]; do
		rm -f "/tmp/connected.$i"
		(
			read -r nqn id <"/tmp/host.$i"
			if nvme_connect "" "$nqn" "$id"; then
				echo "ok $CTRL $CONNECT_MS" >"/tmp/connected.$i"
			else
				echo "fail $CONNECT_MS $CONNECT_ERR" >"/tmp/connected.$i"
			fi
		) &
		CONNECT_PIDS="$CONNECT_PIDS $!"
		i=$((i + 1))
	done
}

# connect_wait: wait for the connects of connect_start.  CTRLS lists the
# controllers that connected, CONNECTS_MS the time each connect took;
# fails if any connect did.
connect_wait() {
	local i=1 rc=0
	CTRLS='' CONNECTS_MS=''
	# (A bare "wait" would also wait for the daemon.)
	wait $CONNECT_PIDS
	diag "$CONNECT_N concurrent connects done in $(($(now_ms) - CONNECT_T0)) ms"
	while [ "$i" -le "$CONNECT_N" ]; do
		set -- $(cat "/tmp/connected.$i" 2>/dev/null)
		if [ "${1:-}" = ok ]; then
			CTRLS="$CTRLS $2" CONNECTS_MS="$CONNECTS_MS $3"
		else
			fail "connect $i failed: $*"
			rc=1
		fi
		i=$((i + 1))
	done
	return $rc
}

# connect_at_once N: connect_start and connect_wait.
connect_at_once() {
	connect_start "$1"
	connect_wait
}

# read_through_each CTRL...: read 16 MiB through controllers of the
# subsystem and check that each of them (each TLS connection) carried some
# of the reads, over kTLS on both sides.
read_through_each() {
	local c d f n p paths='' devs='' bytes t0 rc=0 nctrl=$#
	# With native NVMe multipath the controllers are paths to one
	# namespace head: spread the reads over them (round-robin).  Without
	# multipath every controller has its own block device; the same loop
	# reads each.
	for f in /sys/class/nvme-subsystem/*/iopolicy; do
		[ -e "$f" ] && echo round-robin >"$f" 2>/dev/null
	done
	for c; do
		wait_ns "$c" 15 || { fail "no namespace block device for nvme$c within 15 s"; rc=1; continue; }
		paths="$paths $c:$NS_PATH:$(disk_reads "$NS_PATH")"
		case " $devs " in *" $NS_DEV "*) ;; *) devs="$devs $NS_DEV" ;; esac
	done
	t0=$(now_ms)
	for d in $devs; do
		bytes=$(read_bytes "$d" 16)
		[ "$bytes" = 16777216 ] || { fail "read $bytes bytes from $d, want 16777216"; rc=1; }
	done
	diag "read 16 MiB from each of:$devs in $(($(now_ms) - t0)) ms"
	for p in $paths; do
		c=${p%%:*} d=${p#*:} ; d=${d%%:*}
		n=$(($(disk_reads "$d") - ${p##*:}))
		diag "nvme$c ($d): $n reads"
		[ "$n" -gt 0 ] || { fail "no reads went through controller nvme$c ($d)"; rc=1; }
	done
	ktls_stat
	diag "controllers: $*; $KTLS"
	# At least one host and one target socket per controller.
	need_ktls $((2 * nctrl)) || rc=1
	return $rc
}
