#!/bin/sh
# Guest side of the tlshd VM tests (busybox sh, runs as root under /init).
#
# Drives real NVMe/TCP-over-TLS handshakes through the kernel's "handshake"
# netlink family: the kernel NVMe host and the kernel NVMe target (nvmet) talk
# to each other over 127.0.0.1, and both ask the daemon under test (tlshd) for
# their side of the TLS 1.3 PSK handshake.
#
# Output on stdout (the serial console), between markers:
#   @@TAP-BEGIN@@ ... @@TAP-END@@        TAP: plan, one ok/not ok per scenario,
#                                        "#" diagnostics
#   @@DAEMON-LOG-BEGIN@@ ... -END@@      the daemon's stderr
#   @@DMESG-BEGIN@@ ... -END@@           kernel messages about nvme/tls/...
#
# Scenarios to run come from the kernel command line:
#   tlshd_vm.scenarios=1,2,3,4,5  (default: all)
# The TAP test number of a scenario is its scenario number, so the host can
# tell which one is missing if the VM dies half-way.

TLSHD=/usr/sbin/tlshd
TLSHD_LOG=/tmp/tlshd.log
TLSHD_CONF=/etc/tlshd.conf
CFS=/sys/kernel/config/nvmet
SUBNQN=nqn.2024-01.org.example.tlshd:vm-test
PORT=4420
DIAG=/tmp/diag

KVER=$(uname -r)
KLABEL=${KVER%%[+-]*}          # "6.12.95+deb12-cloud-amd64" -> "6.12.95"

# ---------------------------------------------------------------- helpers ---

# Diagnostics of the running scenario; printed as "#" lines after its
# result.
diag() { echo "$*" >>"$DIAG"; }
fail() { diag "FAIL: $*"; return 1; }

now_ms() { awk '{ printf "%d\n", $1 * 1000 }' /proc/uptime; }

new_uuid() { cat /proc/sys/kernel/random/uuid; }

# Number of lines in a file (0 if missing).
lines_of() { if [ -f "$1" ]; then wc -l <"$1"; else echo 0; fi; }

# Daemon log lines after a mark (a line count taken with log_mark).
log_mark() { lines_of "$TLSHD_LOG"; }
log_since() { tail -n +"$(($1 + 1))" "$TLSHD_LOG" 2>/dev/null; }
log_count() { log_since "$1" | grep -c -e "$2"; }

# Wait up to $3 seconds until at least $4 (default 1) daemon log lines after
# mark $1 match $2.
log_wait() {
	local mark=$1 pat=$2 secs=$3 want=${4:-1} i=0
	while [ "$i" -lt $((secs * 10)) ]; do
		[ "$(log_count "$mark" "$pat")" -ge "$want" ] && return 0
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

dmesg_mark() { dmesg | wc -l; }
# Kernel messages after a mark that are worth showing.
dmesg_since() {
	dmesg | tail -n +"$(($1 + 1))" |
		grep -i -E 'nvme|tls|handshake|key|bug|warn|oops|panic|call trace|error' | tail -n 40
}

tls_stat() { awk -v k="$1" '$1 == k { print $2 }' /proc/net/tls_stat 2>/dev/null; }

# Serial of the kernel's .nvme keyring, in decimal.
nvme_keyring() {
	local hex
	hex=$(awk '$8 == "keyring" && $9 == ".nvme:" { print $1; exit }' /proc/keys)
	[ -n "$hex" ] || return 1
	echo $((0x$hex))
}

# add_psk KEYRING HOSTNQN FILE: store a retained SHA-256 (version 0) PSK for
# HOSTNQN -> SUBNQN; prints the key serial.
add_psk() {
	keyctl padd psk "NVMe0R01 $2 $SUBNQN" "$1" <"$3"
}

# ------------------------------------------------------------- the daemon ---

DAEMON_PID=

daemon_running() {
	[ -n "$DAEMON_PID" ] || return 1
	kill -0 "$DAEMON_PID" 2>/dev/null || return 1
	# A zombie still answers kill -0.
	[ "$(awk '{ print $3 }' "/proc/$DAEMON_PID/stat" 2>/dev/null)" != Z ]
}

start_daemon() {
	daemon_running && return 0
	[ -x "$TLSHD" ] || { fail "no tlshd binary in the initramfs"; return 1; }
	printf '[debug]\nloglevel=1\n' >"$TLSHD_CONF"
	"$TLSHD" -s -c "$TLSHD_CONF" 2>>"$TLSHD_LOG" </dev/null &
	DAEMON_PID=$!
	# No readiness signal: wait until the daemon owns a generic netlink
	# socket (protocol 16 in /proc/net/netlink), then a little longer for
	# it to join the multicast group.
	local i=0
	while [ "$i" -lt 50 ]; do
		daemon_running || {
			wait "$DAEMON_PID"
			fail "tlshd exited at startup with status $?"
			DAEMON_PID=
			return 1
		}
		# (libnl's port ids are pid + n << 22.)
		awk -v p="$DAEMON_PID" '$2 == 16 && $3 % 4194304 == p { f = 1 } END { exit !f }' /proc/net/netlink && break
		sleep 0.1
		i=$((i + 1))
	done
	sleep 0.3
	daemon_running || { fail "tlshd died right after startup"; return 1; }
	return 0
}

# Check that the daemon is still alive (it must survive every scenario).
check_daemon_alive() {
	daemon_running && return 0
	if [ -n "$DAEMON_PID" ]; then
		wait "$DAEMON_PID"
		fail "tlshd (pid $DAEMON_PID) is gone, exit status $?"
		DAEMON_PID=
	else
		fail "tlshd is not running"
	fi
	return 1
}

# ------------------------------------------------- NVMe target and host ---

TARGET_STATE=      # "", "ok" or "failed"
TARGET_DIAG=/tmp/target.diag
NVME_KR=

modload() {
	# Modules built into this kernel are not in modules.dep: fine.
	if grep -q -E "/$1\.ko:|/$(echo "$1" | tr _ -)\.ko:|/$(echo "$1" | tr - _)\.ko:" \
		"/lib/modules/$KVER/modules.dep"; then
		modprobe "$1" || { echo "modprobe $1 failed" >>"$TARGET_DIAG"; return 1; }
	fi
	return 0
}

# Subsystem $SUBNQN (any host, namespace 1 on /dev/nullb0) on TLS port 1.
configure_nvmet() {
	local s=$CFS/subsystems/$SUBNQN p=$CFS/ports/1
	mkdir "$s" &&
		echo 1 >"$s/attr_allow_any_host" &&
		mkdir "$s/namespaces/1" &&
		echo -n /dev/nullb0 >"$s/namespaces/1/device_path" &&
		echo 1 >"$s/namespaces/1/enable" &&
		mkdir "$p" &&
		echo tcp >"$p/addr_trtype" &&
		echo ipv4 >"$p/addr_adrfam" &&
		echo 127.0.0.1 >"$p/addr_traddr" &&
		echo "$PORT" >"$p/addr_trsvcid" &&
		echo tls1.3 >"$p/addr_tsas" &&
		ln -s "$s" "$p/subsystems/$SUBNQN"
	# (addr_tsas must be set before the link enables the port.)
}

# Load modules, find the .nvme keyring, configure the nvmet subsystem and TLS
# port.  Done once, by the first scenario that needs it.
setup_target() {
	case $TARGET_STATE in
	ok) return 0 ;;
	failed) cat "$TARGET_DIAG" >>"$DIAG"; return 1 ;;
	esac
	TARGET_STATE=failed
	: >"$TARGET_DIAG"
	local m
	for m in configfs nvme-keyring tls nvme-fabrics nvme-tcp nvmet nvmet-tcp null_blk; do
		modload "$m" || { cat "$TARGET_DIAG" >>"$DIAG"; return 1; }
	done
	# (/init mounts configfs; this is for a kernel where that failed.)
	grep -q configfs /proc/mounts || mount -t configfs configfs /sys/kernel/config
	NVME_KR=$(nvme_keyring) || {
		echo "no .nvme keyring in /proc/keys" >>"$TARGET_DIAG"
		cat "$TARGET_DIAG" >>"$DIAG"
		return 1
	}
	local i=0
	while [ ! -b /dev/nullb0 ] && [ "$i" -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
	configure_nvmet 2>>"$TARGET_DIAG" || {
		echo "nvmet configfs setup failed" >>"$TARGET_DIAG"
		cat "$TARGET_DIAG" >>"$DIAG"
		return 1
	}
	diag "nvmet port 1: $(cat "$CFS/ports/1/addr_traddr"):$PORT tsas=$(cat "$CFS/ports/1/addr_tsas") treq=$(cat "$CFS/ports/1/addr_treq"); .nvme keyring $NVME_KR"
	TARGET_STATE=ok
	return 0
}

# nvme_connect "extra,fabrics,options" HOSTNQN HOSTID
# On success sets CTRL (controller instance number); on failure CONNECT_ERR.
# CONNECT_MS is the time the write to /dev/nvme-fabrics took.
nvme_connect() {
	local opts="transport=tcp,traddr=127.0.0.1,trsvcid=$PORT,nqn=$SUBNQN,hostnqn=$2,hostid=$3,tls${1:+,$1}"
	local t0 out rc
	CTRL= CONNECT_ERR=
	t0=$(now_ms)
	# One write() of the whole option string (dd reports the errno if it
	# fails), then read back "instance=N,cntlid=M" from the same open file.
	# timeout guards against a hung connect.
	out=$(timeout 60 sh -c 'exec 3<>/dev/nvme-fabrics || exit 1
		printf "%s" "$1" | dd bs=4096 2>/tmp/connect.err.$$ >&3 ||
			{ grep -v records /tmp/connect.err.$$ | sed "s|standard output|/dev/nvme-fabrics|"; exit 1; }
		cat <&3' _ "$opts" 2>&1)
	rc=$?
	CONNECT_MS=$(($(now_ms) - t0))
	if [ "$rc" -ne 0 ]; then
		CONNECT_ERR="exit $rc: $(echo "$out" | tr '\n' ' ')"
		return 1
	fi
	CTRL=$(echo "$out" | sed -n 's/.*instance=\([0-9]*\).*/\1/p')
	[ -n "$CTRL" ] || { CONNECT_ERR="unexpected answer '$out'"; return 1; }
	return 0
}

# Namespace 1 of controller $1: wait up to $2 s for it and set
#   NS_PATH  the controller's own disk in sysfs: "nvme0c1n1" with native NVMe
#            multipath (one hidden path disk per controller), else "nvme1n1";
#   NS_DEV   the block device to read: the multipath head "/dev/nvme0n1"
#            (shared by every controller of the subsystem), else /dev/nvme1n1.
wait_ns() {
	local i=0 d
	NS_PATH= NS_DEV=
	while [ "$i" -lt $(($2 * 10)) ]; do
		for d in "/sys/class/nvme/nvme$1"/nvme*n1; do
			[ -e "$d/stat" ] || continue
			NS_PATH=${d##*/}
			NS_DEV=/dev/$(echo "$NS_PATH" | sed 's/c[0-9]*n/n/')
			[ -b "$NS_DEV" ] && return 0
		done
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

# Reads completed by a disk (first field of /sys/block/<disk>/stat).
disk_reads() { awk '{ print $1 }' "/sys/block/$1/stat" 2>/dev/null || echo 0; }

disconnect() {
	[ -e "/sys/class/nvme/nvme$1/delete_controller" ] || return 0
	echo 1 >"/sys/class/nvme/nvme$1/delete_controller" 2>/dev/null
	local i=0
	while [ -e "/sys/class/nvme/nvme$1" ] && [ "$i" -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
	[ ! -e "/sys/class/nvme/nvme$1" ]
}

disconnect_all() {
	local c
	for c in /sys/class/nvme/nvme*; do
		[ -e "$c" ] || continue
		disconnect "${c##*/nvme}" || diag "could not delete controller ${c##*/}"
	done
}

# Bytes read from a block device with O_DIRECT (bypassing the page cache,
# so every byte comes through the TLS connection).
read_bytes() {
	dd if="$1" bs=1M count="$2" iflag=direct 2>/dev/null | wc -c
}

# A host identity (hostnqn with a fresh uuid, hostid = that uuid) and its
# PSK in the .nvme keyring.  Sets HOSTNQN, HOSTID, PSK_SERIAL.
new_host() {
	HOSTID=$(new_uuid)
	HOSTNQN="nqn.2014-08.org.nvmexpress:uuid:$HOSTID"
	head -c 32 /dev/urandom >"/tmp/psk.$HOSTID"
	PSK_SERIAL=$(add_psk "$NVME_KR" "$HOSTNQN" "/tmp/psk.$HOSTID") || {
		fail "keyctl padd psk into .nvme ($NVME_KR) failed"
		return 1
	}
}

# The scenario-1 check, reused after the failure scenarios: connect with
# HOSTNQN/HOSTID, read 16 MiB, kTLS active, client+server handshakes logged,
# disconnect.
good_connect() {
	local mark tx rx n1 n2 bytes t0 ok=0
	mark=$(log_mark)
	nvme_connect "" "$HOSTNQN" "$HOSTID" || {
		fail "connect failed after ${CONNECT_MS} ms: $CONNECT_ERR"
		return 1
	}
	diag "connected nvme$CTRL in ${CONNECT_MS} ms"
	while :; do
		wait_ns "$CTRL" 15 || { fail "no namespace block device for nvme$CTRL within 15 s"; break; }
		t0=$(now_ms)
		bytes=$(read_bytes "$NS_DEV" 16)
		[ "$bytes" = 16777216 ] || { fail "read $bytes bytes from $NS_DEV, want 16777216"; break; }
		tx=$(tls_stat TlsCurrTxSw) rx=$(tls_stat TlsCurrRxSw)
		diag "read $bytes bytes from $NS_DEV in $(($(now_ms) - t0)) ms; tls_stat TlsCurrTxSw=${tx:-?} TlsCurrRxSw=${rx:-?}"
		[ "${tx:-0}" -gt 0 ] && [ "${rx:-0}" -gt 0 ] || { fail "kTLS not active (TlsCurrTxSw=$tx TlsCurrRxSw=$rx)"; break; }
		log_wait "$mark" 'handshake succeeded: role=client auth=psk' 5 ||
			{ fail "no 'handshake succeeded: role=client auth=psk' line in the daemon log"; break; }
		log_wait "$mark" 'handshake succeeded: role=server auth=psk' 5 ||
			{ fail "no 'handshake succeeded: role=server auth=psk' line in the daemon log"; break; }
		n1=$(log_count "$mark" 'handshake succeeded: role=client')
		n2=$(log_count "$mark" 'handshake succeeded: role=server')
		diag "handshakes logged: $n1 client, $n2 server; $(log_since "$mark" | grep -o 'cipher=[^ ]*' | sort | uniq -c | tr -s ' \n' ' ')"
		ok=1
		break
	done
	disconnect "$CTRL" || { fail "could not delete controller nvme$CTRL"; ok=0; }
	[ "$ok" = 1 ]
}

# -------------------------------------------------------------- scenarios ---

DESC1="nvme-tls loopback: connect, 16 MiB read, kTLS active, both handshakes logged"
scenario_1() {
	setup_target || return 1
	start_daemon || return 1
	new_host || return 1
	# Scenarios 3 to 5 reuse this identity.
	HOST1NQN=$HOSTNQN HOST1ID=$HOSTID
	good_connect || return 1
	check_daemon_alive
}

NCTRL=4
DESC2="$NCTRL controllers connected at once (concurrent connects, own PSK each): all handshakes succeed, reads through every controller"
scenario_2() {
	setup_target || return 1
	start_daemon || return 1
	local i mark ctrls='' c d f n p paths devs bytes tx rx n1 n2 nf t0 pids='' rc=0
	mark=$(log_mark)
	i=1
	while [ "$i" -le "$NCTRL" ]; do
		new_host || return 1
		echo "$HOSTNQN $HOSTID" >"/tmp/s2.host.$i"
		i=$((i + 1))
	done
	# Connect all controllers concurrently: many handshakes at once.
	t0=$(now_ms)
	i=1
	while [ "$i" -le "$NCTRL" ]; do
		(
			read -r nqn id <"/tmp/s2.host.$i"
			if nvme_connect "" "$nqn" "$id"; then
				echo "ok $CTRL $CONNECT_MS" >"/tmp/s2.res.$i"
			else
				echo "fail $CONNECT_MS $CONNECT_ERR" >"/tmp/s2.res.$i"
			fi
		) &
		pids="$pids $!"
		i=$((i + 1))
	done
	# (A bare "wait" would also wait for the daemon.)
	wait $pids
	diag "$NCTRL concurrent connects done in $(($(now_ms) - t0)) ms"
	i=1
	while [ "$i" -le "$NCTRL" ]; do
		set -- $(cat "/tmp/s2.res.$i" 2>/dev/null)
		if [ "${1:-}" = ok ]; then
			ctrls="$ctrls $2"
		else
			fail "connect $i failed: $*"
			rc=1
		fi
		i=$((i + 1))
	done
	if [ "$rc" = 0 ]; then
		# All controllers reach the same subsystem, so with native NVMe
		# multipath they are 4 paths to one namespace head: spread the
		# reads over them (round-robin) and check that each controller
		# (each TLS connection) carried some.  Without multipath every
		# controller has its own block device; the same loop reads each.
		for f in /sys/class/nvme-subsystem/*/iopolicy; do
			[ -e "$f" ] && echo round-robin >"$f" 2>/dev/null
		done
		paths= devs=
		for c in $ctrls; do
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
		tx=$(tls_stat TlsCurrTxSw) rx=$(tls_stat TlsCurrRxSw)
		diag "controllers:$ctrls; tls_stat TlsCurrTxSw=${tx:-?} TlsCurrRxSw=${rx:-?}"
		# At least one host and one target socket per controller.
		[ "${tx:-0}" -ge $((2 * NCTRL)) ] && [ "${rx:-0}" -ge $((2 * NCTRL)) ] ||
			{ fail "expected >= $((2 * NCTRL)) kTLS sockets each way"; rc=1; }
	fi
	log_wait "$mark" 'handshake succeeded: role=client auth=psk' 5 "$NCTRL" ||
		{ fail "fewer than $NCTRL successful client handshakes logged"; rc=1; }
	log_wait "$mark" 'handshake succeeded: role=server auth=psk' 5 "$NCTRL" ||
		{ fail "fewer than $NCTRL successful server handshakes logged"; rc=1; }
	n1=$(log_count "$mark" 'handshake succeeded: role=client')
	n2=$(log_count "$mark" 'handshake succeeded: role=server')
	nf=$(log_count "$mark" 'handshake failed')
	diag "handshakes logged: $n1 client ok, $n2 server ok, $nf failed"
	[ "$nf" = 0 ] || { fail "$nf handshakes failed"; rc=1; }
	for c in $ctrls; do
		disconnect "$c" || { fail "could not delete controller nvme$c"; rc=1; }
	done
	check_daemon_alive || rc=1
	return $rc
}

MISMATCH_MAX_MS=15000
DESC3="mismatched PSK: connect fails within $((MISMATCH_MAX_MS / 1000)) s, client and server failures logged, good connect afterwards"
scenario_3() {
	setup_target || return 1
	start_daemon || return 1
	[ -n "${HOST1NQN:-}" ] || { new_host || return 1; HOST1NQN=$HOSTNQN HOST1ID=$HOSTID; }
	local ring key mark rc=0
	# A private keyring with a "psk" key of the same identity as the
	# target's key in .nvme, but different bytes.
	ring=$(keyctl newring tlshd-mismatch @u) || { fail "keyctl newring failed"; return 1; }
	head -c 32 /dev/urandom >/tmp/psk.bad
	key=$(add_psk "$ring" "$HOST1NQN" /tmp/psk.bad) || { fail "keyctl padd into $ring failed"; return 1; }
	diag "keyring $ring, mismatched key $key"
	mark=$(log_mark)
	if nvme_connect "keyring=$ring" "$HOST1NQN" "$HOST1ID"; then
		fail "connect with a mismatched PSK SUCCEEDED (nvme$CTRL) after ${CONNECT_MS} ms"
		disconnect "$CTRL"
		rc=1
	else
		diag "connect failed as expected after ${CONNECT_MS} ms: $CONNECT_ERR"
		[ "$CONNECT_MS" -le "$MISMATCH_MAX_MS" ] ||
			{ fail "failing connect took ${CONNECT_MS} ms (limit $MISMATCH_MAX_MS)"; rc=1; }
	fi
	log_wait "$mark" 'handshake failed: role=client auth=psk' 5 ||
		{ fail "no 'handshake failed: role=client auth=psk' line in the daemon log"; rc=1; }
	log_wait "$mark" 'handshake failed: role=server auth=psk' 5 ||
		{ fail "no 'handshake failed: role=server auth=psk' line in the daemon log"; rc=1; }
	diag "$(log_since "$mark" | grep 'handshake failed' | head -n 4)"
	keyctl unlink "$ring" @u >/dev/null 2>&1
	disconnect_all
	check_daemon_alive || return 1
	HOSTNQN=$HOST1NQN HOSTID=$HOST1ID
	good_connect || { fail "good connect after the mismatch failed"; return 1; }
	return $rc
}

DESC4="garbage peer (non-TLS bytes): server handshake fails, daemon keeps serving"
scenario_4() {
	setup_target || return 1
	start_daemon || return 1
	[ -n "${HOST1NQN:-}" ] || { new_host || return 1; HOST1NQN=$HOSTNQN HOST1ID=$HOSTID; }
	local mark t0 rc=0
	mark=$(log_mark)
	t0=$(now_ms)
	printf 'GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' | timeout 20 nc 127.0.0.1 "$PORT" >/tmp/s4.out 2>&1
	diag "nc exited with status $? after $(($(now_ms) - t0)) ms, received $(wc -c </tmp/s4.out) bytes"
	log_wait "$mark" 'handshake failed: role=server' 12 ||
		{ fail "no 'handshake failed: role=server' line in the daemon log"; rc=1; }
	diag "$(log_since "$mark" | grep 'handshake' | head -n 3)"
	check_daemon_alive || return 1
	HOSTNQN=$HOST1NQN HOSTID=$HOST1ID
	good_connect || { fail "good connect after the garbage peer failed"; return 1; }
	return $rc
}

NODAEMON_MAX_MS=5000
DESC5="no daemon running: connect fails fast (< $((NODAEMON_MAX_MS / 1000)) s), no hang"
scenario_5() {
	setup_target || return 1
	[ -n "${HOST1NQN:-}" ] || { new_host || return 1; HOST1NQN=$HOSTNQN HOST1ID=$HOSTID; }
	local i rc=0 dm
	if daemon_running; then
		kill "$DAEMON_PID"
		i=0
		while daemon_running && [ "$i" -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
		if daemon_running; then
			fail "tlshd did not exit within 5 s of SIGTERM; sending SIGKILL"
			kill -9 "$DAEMON_PID"
			rc=1
		fi
		wait "$DAEMON_PID"
		diag "tlshd exited with status $?"
		DAEMON_PID=
	fi
	# No tlshd process at all may remain (e.g. handshake workers).
	i=0
	while pidof tlshd >/dev/null && [ "$i" -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
	pidof tlshd >/dev/null && { fail "tlshd processes still running: $(pidof tlshd)"; return 1; }
	dm=$(dmesg_mark)
	if nvme_connect "" "$HOST1NQN" "$HOST1ID"; then
		fail "connect without a daemon SUCCEEDED (nvme$CTRL) after ${CONNECT_MS} ms"
		disconnect "$CTRL"
		return 1
	fi
	diag "connect failed as expected after ${CONNECT_MS} ms: $CONNECT_ERR"
	diag "$(dmesg | tail -n +"$((dm + 1))" | grep -i -E 'tls|nvme' | head -n 3)"
	# -ESRCH (-3) from the handshake upcall: the kernel found no listener,
	# i.e. the connect failed because there is no daemon, not for another
	# reason.
	dmesg | tail -n +"$((dm + 1))" | grep -q 'failed to start TLS.*-3' ||
		{ fail "no 'failed to start TLS ... -3' (ESRCH) kernel message"; rc=1; }
	[ "$CONNECT_MS" -lt "$NODAEMON_MAX_MS" ] ||
		{ fail "failing connect took ${CONNECT_MS} ms (limit $NODAEMON_MAX_MS)"; rc=1; }
	disconnect_all
	return $rc
}

# ------------------------------------------------------------------ main ---

SCENARIOS=$(sed -n 's/.*tlshd_vm\.scenarios=\([0-9,]*\).*/\1/p' /proc/cmdline | tr , ' ')
[ -n "$SCENARIOS" ] || SCENARIOS="1 2 3 4 5"
MAX=0
for n in $SCENARIOS; do [ "$n" -gt "$MAX" ] && MAX=$n; done

echo "@@TAP-BEGIN@@"
echo "1..$MAX"
echo "# kernel $KVER, tlshd $( [ -x "$TLSHD" ] && echo present || echo MISSING ), scenarios: $SCENARIOS"
for n in $SCENARIOS; do
	: >"$DIAG"
	t0=$(now_ms)
	dm=$(dmesg_mark)
	eval "desc=\$DESC$n"
	if "scenario_$n"; then res=ok; else res="not ok"; fi
	# Clean up whatever a failed scenario left connected.
	[ "$res" = ok ] || disconnect_all
	echo "$res $n - [$KLABEL] $desc"
	echo "# scenario $n took $(($(now_ms) - t0)) ms"
	sed -e '/^$/d' -e 's/^/#   /' "$DIAG"
	if [ "$res" != ok ]; then
		echo "#   kernel messages during the scenario:"
		dmesg_since "$dm" | sed 's/^/#     /'
		echo "#   daemon log tail:"
		tail -n 15 "$TLSHD_LOG" 2>/dev/null | sed 's/^/#     /'
	fi
done
echo "# kernel modules loaded: $(awk '{ print $1 }' /proc/modules | sort | tr '\n' ' ')"
echo "@@TAP-END@@"

echo "@@DAEMON-LOG-BEGIN@@"
cat "$TLSHD_LOG" 2>/dev/null
echo "@@DAEMON-LOG-END@@"
echo "@@DMESG-BEGIN@@"
dmesg | grep -i -E 'nvme|tls|handshake|keyring|bug|warn|oops|panic|call trace|segfault' | tail -n 150
echo "@@DMESG-END@@"
exit 0
