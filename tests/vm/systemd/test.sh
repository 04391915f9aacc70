#!/bin/sh
# Guest side of tests/vm/systemd-suite.sh (busybox sh).  systemd is PID 1;
# this runs as the oneshot unit tlshd-vm-test.service, with its stdout on
# the serial console, and checks tlshd.service (the project's installed
# unit and binary) as a system service:
#   1 systemctl start: active (Type=notify, so READY=1 arrived)
#   2 the sandbox is applied to the running daemon
#   3 NVMe/TCP TLS loopback connect and read under the sandbox
#   4 per-handshake journal entries (MESSAGE_ID, TLSHD_* fields), STATUS=
#   5 reload with a broken configuration: rejected, still active, serving
#   6 a target PSK kept only in a root-owned keyring named in
#     [authenticate] keyrings (found in /proc/keys under the sandbox)
#   7 NFS xprtsec=mtls with the client certificate from the .nfs keyring
#     (cert_serial=/privkey_serial=; SKIP on kernels without them)
#   8 NFS mtls-only export: a client certificate from a CA of the system
#     trust store, not the configured one, is refused; with no server
#     trust store no client authenticates
#   9 NVMe host key that differs from .nvme's, in a keyring under root's
#     user keyring, daemon started by hand: refused, .nvme's key used
#  10 a worker stalled under its filter (test hooks) is killed by the
#     daemon at its deadline: the unit leaves it CAP_KILL for workers that
#     run as another uid (SKIP for a build without test hooks)
#  11 a served worker slow to exit (test hook): the connect does not wait
#  12 served workers wait to exit for a quiet moment (test hook)
#  13 systemctl stop: inactive, "shutting down", exit status 0
# A test that does not apply to the kernel reports "ok N - ... # SKIP".
#
# Output on stdout, between markers:
#   @@TAP-BEGIN@@ ... @@TAP-END@@          TAP, numbered 1..13, "#" lines
#   @@DAEMON-LOG-BEGIN@@ ... -END@@        the whole journal of this boot
#   @@DMESG-BEGIN@@ ... -END@@             kernel messages worth keeping
# The unit's SuccessAction/FailureAction power the VM off afterwards.

. /usr/libexec/tlshd-vm/systemd-test.env	# TLSHD_UNIT_PATH TLSHD_EXEC TLSHD_CONF

export PATH=/usr/sbin:/usr/bin:/sbin:/bin
export LC_ALL=C SYSTEMD_COLORS=0 SYSTEMD_PAGER=cat SYSTEMD_LESS='' HOME=/root
UNIT=tlshd.service
CFS=/sys/kernel/config/nvmet
SUBNQN=nqn.2024-01.org.example.tlshd:systemd-test
PORT=4420
DIAG=/tmp/diag
MSGID_OK=d8e0246a3f204b8b8aa8cc5776ddf1b4
MSGID_FAIL=a42ec55caf5c45138ad2aa65190ce1f4
# (2.2: CAP_KILL, with which the daemon kills workers running as another
# uid, costs 0.1 in systemd-analyze security, and setpriority, with which
# its children leave its Nice=-10, another 0.1.)
MAX_EXPOSURE=2.2
# (Software crypto under TCG reads about 2-4 MiB/s.)
READ_MB=4

KVER=$(uname -r)
KLABEL=${KVER%%[+-]*}

# diag, fail, now_ms, wait_for, tls_stat, and the NVMe target and host
# functions shared with guest/scenarios.sh; from its fixtures, the daemon
# started by hand (test 9: start_daemon, log_*, dmesg_*) and the NFS
# server and client (tests 7 and 8).
. /usr/libexec/tlshd-vm/lib.sh
. /usr/libexec/tlshd-vm/fixture-daemon.sh
. /usr/libexec/tlshd-vm/fixture-nfs.sh
# (The installed binary and configuration, not the fixture's defaults.)
. /usr/libexec/tlshd-vm/systemd-test.env
TLSHD=$TLSHD_EXEC
TLSHD_LOG=/tmp/tlshd-by-hand.log

# Kernel messages stay in the ring buffer (they would cut TAP lines).
echo 1 >/proc/sys/kernel/printk
# Lets the kernel autoload modules (kTLS needs gcm/ccm/chacha20poly1305 ...).
echo /sbin/modprobe >/proc/sys/kernel/modprobe
ip link set lo up 2>/dev/null

# ---------------------------------------------------------------- helpers ---

prop() { systemctl show -p "$1" --value "$UNIT" 2>/dev/null; }
main_pid() { prop MainPID; }

# The unit's journal as one line per handshake entry (entries that carry a
# MESSAGE_ID or a TLSHD_ROLE), fields in a fixed order:
#   MID=<id> ROLE=.. AUTH=.. RESULT=.. ERRNO=.. CIPHER=.. DURATION_MS=.. PEER=..
#   UNIT=<_SYSTEMD_UNIT> OBJECT_UNIT=<OBJECT_SYSTEMD_UNIT> PID=<_PID>
#   US_ACCEPT=.. US_HANDSHAKE=.. (phase times, TLSHD_US_*)
# $1: journalctl match arguments (default: -u tlshd.service).
handshake_entries() {
	# (Only these fields: others, e.g. journald's OBJECT_* ones, may be
	# binary in the export format and break the line structure.)
	journalctl ${1:--u $UNIT} -o export --no-pager \
		--output-fields=MESSAGE_ID,TLSHD_ROLE,TLSHD_AUTH,TLSHD_RESULT,TLSHD_ERRNO,TLSHD_CIPHER,TLSHD_DURATION_MS,TLSHD_PEER,_SYSTEMD_UNIT,OBJECT_SYSTEMD_UNIT,_PID,TLSHD_US_ACCEPT,TLSHD_US_HANDSHAKE 2>/dev/null |
		awk -v ok="$MSGID_OK" -v bad="$MSGID_FAIL" '
		function flush() {
			if (role != "" || mid == ok || mid == bad)
				printf "MID=%s ROLE=%s AUTH=%s RESULT=%s ERRNO=%s CIPHER=%s DURATION_MS=%s PEER=%s UNIT=%s OBJECT_UNIT=%s PID=%s US_ACCEPT=%s US_HANDSHAKE=%s\n",
					mid == "" ? "-" : mid, role, auth, result, errno, cipher, dur, peer, unit, ounit, pid, usa, ush
			mid = role = auth = result = errno = cipher = dur = peer = unit = ounit = pid = usa = ush = ""
		}
		/^$/ { flush(); next }
		/^MESSAGE_ID=/ { mid = substr($0, 12) }
		/^TLSHD_ROLE=/ { role = substr($0, 12) }
		/^TLSHD_AUTH=/ { auth = substr($0, 12) }
		/^TLSHD_RESULT=/ { result = substr($0, 14) }
		/^TLSHD_ERRNO=/ { errno = substr($0, 13) }
		/^TLSHD_CIPHER=/ { cipher = substr($0, 14) }
		/^TLSHD_DURATION_MS=/ { dur = substr($0, 19) }
		/^TLSHD_PEER=/ { peer = substr($0, 12) }
		/^_SYSTEMD_UNIT=/ { unit = substr($0, 15) }
		/^_PID=/ { pid = substr($0, 6) }
		/^OBJECT_SYSTEMD_UNIT=/ { ounit = substr($0, 21) }
		/^TLSHD_US_ACCEPT=/ { usa = substr($0, 17) }
		/^TLSHD_US_HANDSHAKE=/ { ush = substr($0, 20) }
		END { flush() }'
}

# Journal messages of the unit (MESSAGE only), and a count of those
# matching a pattern.
unit_messages() { journalctl -u "$UNIT" -o cat --no-pager 2>/dev/null; }
unit_count() { unit_messages | grep -c -e "$1"; }

# Good handshake entries for a role (client|server) in the output of
# handshake_entries on stdin.
good_in() {
	grep -c -E "^MID=$MSGID_OK ROLE=$1 AUTH=psk RESULT=succeeded ERRNO=0 CIPHER=[^ ]+ DURATION_MS=[0-9]+ .* US_ACCEPT=[1-9][0-9]* US_HANDSHAKE=[1-9][0-9]*$"
}
# Both counts (client server) in the journal ($1: match arguments, default
# the unit), one journalctl run.
good_counts() {
	handshake_entries "${1:-}" >/tmp/hs.cur
	echo "$(good_in client </tmp/hs.cur) $(good_in server </tmp/hs.cur)"
}

# Diagnostics for a failed check: service state, journal, kernel.
dump_state() {
	diag "systemctl status $UNIT:"
	systemctl status --no-pager -l "$UNIT" 2>&1 | sed 's/^/  /' >>"$DIAG"
	diag "journal (last 25 lines, whole system):"
	journalctl -b --no-pager -o short-monotonic 2>&1 | tail -n 25 | sed 's/^/  /' >>"$DIAG"
	diag "kernel messages (last 15 about nvme/tls/handshake/bpf/seccomp):"
	dmesg | grep -i -E 'nvme|tls|handshake|bpf|seccomp|audit|bug|warn|oops|error' | tail -n 15 |
		sed 's/^/  /' >>"$DIAG"
}

# ------------------------------------------------- NVMe target and host ---
# (The steps of tests/vm/guest/scenarios.sh, scenario 1.)

NVME_KR=
TARGET_STATE=

# The NVMe/TLS setup of the scenarios (guest/lib.sh), once.
setup_target() {
	case $TARGET_STATE in
	ok) return 0 ;;
	failed) fail "NVMe target setup failed earlier"; return 1 ;;
	esac
	TARGET_STATE=failed
	# (No sys-kernel-config.mount in this image: nvmet_setup mounts configfs.)
	nvmet_setup 2>/tmp/target.err || { sed 's/^/FAIL: /' /tmp/target.err >>"$DIAG"; return 1; }
	diag "nvmet port 1: 127.0.0.1:$PORT tsas=$(cat "$CFS/ports/1/addr_tsas"); .nvme keyring $NVME_KR"
	TARGET_STATE=ok
}

# Connect a new host, read $READ_MB MiB with O_DIRECT through the namespace,
# check that kTLS carries it; the controller stays connected (CTRL).
connect_and_read() {
	setup_target || return 1
	new_host || return 1
	nvme_connect "" "$HOSTNQN" "$HOSTID" || { fail "connect failed after ${CONNECT_MS} ms: $CONNECT_ERR"; return 1; }
	diag "connected nvme$CTRL in ${CONNECT_MS} ms (hostnqn $HOSTNQN)"
	read_over_tls "$CTRL" "$READ_MB"
}

# ------------------------------------------------------------------ tests ---

DESC1="systemctl start $UNIT: active (Type=notify: READY=1 arrived)"
test_1() {
	local rc t0 state
	diag "installed: unit $TLSHD_UNIT_PATH, ExecStart $TLSHD_EXEC, config $TLSHD_CONF"
	t0=$(now_ms)
	systemctl start "$UNIT" 2>>"$DIAG"
	rc=$?
	state=$(systemctl is-active "$UNIT" 2>/dev/null)
	diag "systemctl start exited $rc after $(($(now_ms) - t0)) ms; is-active: $state; MainPID $(main_pid)"
	[ "$rc" = 0 ] || fail "systemctl start $UNIT exited $rc"
	[ "$state" = active ] || { fail "is-active says '$state', want 'active'"; return 1; }
	[ "$rc" = 0 ] || return 1
	# READY=1 came from the daemon's main process.
	[ "$(prop NotifyAccess)" = main ] || diag "NotifyAccess=$(prop NotifyAccess)"
	wait_for '[ "$(unit_count "ready: serving TLS handshakes")" -ge 1 ]' 5 ||
		{ fail "no 'ready: serving TLS handshakes' line in the unit's journal"; return 1; }
}

# "Key: value" of /proc/<pid>/status.
pstatus() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status" 2>/dev/null; }

DESC2="sandbox applied to the running daemon (caps, no_new_privs, seccomp, namespaces, mounts, BPF cgroup filters, unit properties, exposure)"
test_2() {
	local pid rc=0 v want k line mi sec level cg t0 props
	pid=$(main_pid)
	[ -n "$pid" ] && [ "$pid" != 0 ] || { fail "no MainPID"; return 1; }
	# CAP_NET_ADMIN, CAP_SETGID/CAP_SETUID with which workers leave root
	# after ACCEPT (test 4 checks that they do), and CAP_KILL for workers
	# that then run as another uid (test 10).
	for k in CapBnd CapEff CapPrm; do
		v=$(pstatus "$pid" $k)
		[ "$v" = 00000000000010e0 ] || { fail "$k=$v, want 00000000000010e0 (CAP_NET_ADMIN, CAP_SETGID, CAP_SETUID, CAP_KILL)"; rc=1; }
	done
	v=$(pstatus "$pid" CapAmb)
	[ "$v" = 0000000000000000 ] || { fail "CapAmb=$v, want 0"; rc=1; }
	v=$(pstatus "$pid" NoNewPrivs)
	[ "$v" = 1 ] || { fail "NoNewPrivs=$v, want 1"; rc=1; }
	v=$(pstatus "$pid" Seccomp)
	[ "$v" = 2 ] || { fail "Seccomp=$v, want 2 (filter)"; rc=1; }
	# Nice=-10 for the parent, whose ACCEPTs must beat the handshakes to
	# the CPU; its children (idle spares, the key holder) back at 0.
	nice_check "$pid" || rc=1
	# Idle spares wait as a worker handshakes: unprivileged, filtered.
	spare_check "$pid" || rc=1
	diag "/proc/$pid/status: CapBnd=$(pstatus "$pid" CapBnd) CapEff=$(pstatus "$pid" CapEff) CapPrm=$(pstatus "$pid" CapPrm) NoNewPrivs=$(pstatus "$pid" NoNewPrivs) Seccomp=$(pstatus "$pid" Seccomp) Seccomp_filters=$(pstatus "$pid" Seccomp_filters)"

	# Namespaces: own mount namespace (PrivateTmp, ProtectSystem, ...), own
	# UTS namespace (ProtectHostname); network namespace shared.
	for k in mnt uts; do
		[ "$(readlink "/proc/$pid/ns/$k")" != "$(readlink /proc/1/ns/$k)" ] ||
			{ fail "daemon shares PID 1's $k namespace"; rc=1; }
	done
	[ "$(readlink "/proc/$pid/ns/net")" = "$(readlink /proc/1/ns/net)" ] ||
		{ fail "daemon is not in the host network namespace (the kernel would not find it)"; rc=1; }
	cg=$(sed -n 's/^0:://p' "/proc/$pid/cgroup" 2>/dev/null)
	[ "$cg" = "/system.slice/$UNIT" ] || { fail "/proc/$pid/cgroup is '$(cat "/proc/$pid/cgroup")'"; rc=1; }

	# Mounts as the daemon sees them (fields: 4 root, 5 mount point,
	# 6 options, then after " - ": fstype, source, super options).
	mi=/proc/$pid/mountinfo
	line=$(awk '$5 == "/"' "$mi" | tail -n 1)
	case " $(echo "$line" | awk '{ print $6 }' | tr , ' ') " in
	*" ro "*) ;;
	*) fail "ProtectSystem=strict: / is not read-only: $line"; rc=1 ;;
	esac
	line=$(awk '$5 == "/tmp"' "$mi" | tail -n 1)
	case $line in
	*systemd-private-*) ;;
	*) fail "PrivateTmp: /tmp is not a private directory: '$line'"; rc=1 ;;
	esac
	line=$(awk '$5 == "/dev"' "$mi" | tail -n 1)
	case $line in
	*" - tmpfs "*) ;;
	*) fail "PrivateDevices: /dev is not a private tmpfs: '$line'"; rc=1 ;;
	esac
	line=$(awk '$5 == "/proc"' "$mi" | tail -n 1)
	case $line in
	*subset=pid*) fail "ProcSubset=pid hides /proc/keys: /proc is '$line'"; rc=1 ;;
	*hidepid=invisible*) ;;
	*) fail "ProtectProc=invisible: /proc is '$line'"; rc=1 ;;
	esac
	line=$(awk '$5 == "/sys/fs/cgroup"' "$mi" | tail -n 1)
	case " $(echo "$line" | awk '{ print $6 }' | tr , ' ') " in
	*" ro "*) ;;
	*) fail "ProtectControlGroups: /sys/fs/cgroup is not read-only: '$line'"; rc=1 ;;
	esac
	line=$(awk '$5 == "/root"' "$mi" | tail -n 1)
	[ -n "$line" ] || { fail "ProtectHome: nothing mounted over /root"; rc=1; }
	diag "daemon's mounts: $(wc -l <"$mi") entries; / $(awk '$5 == "/" { o = $6 } END { print o }' "$mi"); /proc $(awk '$5 == "/proc" { o = $NF } END { print o }' "$mi"); /dev $(awk '$5 == "/dev" { for (i = 7; $i != "-"; i++); t = $(i + 1) } END { print t }' "$mi")"

	# The BPF programs systemd attaches to the unit's cgroup, tried from a
	# helper process moved into that cgroup (seccomp and namespaces are
	# per process, these filters are per cgroup).  IPAddressDeny=any: a
	# TCP connect to a closed port of 127.0.0.1 is refused at once from
	# here (the control), but from the unit's cgroup the SYN is dropped
	# (EPERM or a time-out).  DevicePolicy=closed: /dev/ttyS0 cannot be
	# opened there, /dev/null can.  The helper's output goes to files:
	# it must not open devices it is denied.
	if [ -n "$cg" ] && [ -d "/sys/fs/cgroup$cg" ]; then
		rm -f /tmp/cg.*
		: >/tmp/cg.in
		nc -w 2 127.0.0.1 4421 </tmp/cg.in >/tmp/cg.control 2>&1
		sh -c 'echo $$ >"$1/cgroup.procs" || exit 9
			nc -w 2 127.0.0.1 4421 </tmp/cg.in >/tmp/cg.nc 2>&1
			echo "nc=$?" >>/tmp/cg.res
			(exec 3</dev/ttyS0) 2>/tmp/cg.tty && echo tty=opened >>/tmp/cg.res || echo tty=denied >>/tmp/cg.res
			(exec 3</dev/null) 2>>/tmp/cg.tty && echo null=opened >>/tmp/cg.res || echo null=denied >>/tmp/cg.res
			' _ "/sys/fs/cgroup$cg" </dev/null >/tmp/cg.out 2>&1
		v=$?
		diag "connect to 127.0.0.1:4421 from the test unit: $(tr '\n' ' ' </tmp/cg.control); from $cg: $(tr '\n' ' ' </tmp/cg.nc 2>/dev/null)"
		diag "opening devices from $cg (helper exit $v): $(tr '\n' ' ' </tmp/cg.res 2>/dev/null) $(tr '\n' ' ' </tmp/cg.tty 2>/dev/null)"
		grep -q -i 'refused' /tmp/cg.control ||
			{ fail "control: connect to a closed port of 127.0.0.1 was not refused"; rc=1; }
		grep -q -i -E 'not permitted|timed out' /tmp/cg.nc 2>/dev/null ||
			{ fail "IPAddressDeny=any: connect to 127.0.0.1 from the unit's cgroup was not dropped"; rc=1; }
		grep -q tty=denied /tmp/cg.res 2>/dev/null ||
			{ fail "DevicePolicy=closed: /dev/ttyS0 could be opened from the unit's cgroup"; rc=1; }
		grep -q null=opened /tmp/cg.res 2>/dev/null ||
			{ fail "DevicePolicy=closed: /dev/null could not be opened from the unit's cgroup"; rc=1; }
	else
		fail "no cgroup directory for the daemon ($cg)"
		rc=1
	fi

	# What systemd reports for the unit (one "systemctl show" call).
	props=ProtectSystem,PrivateTmp,PrivateDevices,ProtectHome,NoNewPrivileges,MemoryDenyWriteExecute,ProtectProc,ProcSubset,ProtectKernelModules,ProtectKernelTunables,ProtectKernelLogs,ProtectControlGroups,ProtectClock,ProtectHostname,RestrictNamespaces,LockPersonality,RestrictRealtime,RestrictSUIDSGID,PrivateMounts,CapabilityBoundingSet,SystemCallArchitectures,DevicePolicy,Type,RestrictAddressFamilies,IPAddressDeny,SystemCallFilter,KeyringMode
	systemctl show -p "$props" "$UNIT" >/tmp/show 2>>"$DIAG"
	for want in ProtectSystem=strict PrivateTmp=yes PrivateDevices=yes ProtectHome=yes \
		NoNewPrivileges=yes MemoryDenyWriteExecute=yes ProtectProc=invisible ProcSubset=all \
		ProtectKernelModules=yes ProtectKernelTunables=yes ProtectKernelLogs=yes \
		ProtectControlGroups=yes ProtectClock=yes ProtectHostname=yes RestrictNamespaces=yes \
		LockPersonality=yes RestrictRealtime=yes RestrictSUIDSGID=yes PrivateMounts=yes \
		"CapabilityBoundingSet=cap_kill cap_setgid cap_setuid cap_net_admin" SystemCallArchitectures=native \
		DevicePolicy=closed Type=notify KeyringMode=shared; do
		k=${want%%=*}
		v=$(sed -n "s/^$k=//p" /tmp/show)
		[ "$k=$v" = "$want" ] || { fail "systemctl show: $k=$v, want $want"; rc=1; }
	done
	v=$(sed -n 's/^RestrictAddressFamilies=//p' /tmp/show | tr ' ' '\n' | sort | tr '\n' ' ')
	[ "$v" = "AF_NETLINK AF_UNIX " ] ||
		{ fail "systemctl show: RestrictAddressFamilies=$v, want AF_NETLINK and AF_UNIX only"; rc=1; }
	v=$(sed -n 's/^IPAddressDeny=//p' /tmp/show)
	[ "$(echo "$v" | tr ' ' '\n' | sort | tr '\n' ' ')" = "0.0.0.0/0 ::/0 " ] ||
		{ fail "systemctl show: IPAddressDeny=$v, want 0.0.0.0/0 and ::/0 (any)"; rc=1; }
	v=$(sed -n 's/^SystemCallFilter=//p' /tmp/show)
	[ -n "$v" ] || { fail "systemctl show: SystemCallFilter is empty"; rc=1; }
	diag "systemctl show: $(grep -c . /tmp/show) properties as configured; SystemCallFilter allows $(echo "$v" | wc -w) calls; RestrictAddressFamilies=$(sed -n 's/^RestrictAddressFamilies=//p' /tmp/show); IPAddressDeny=$(sed -n 's/^IPAddressDeny=//p' /tmp/show)"

	# Anything PID 1 could not apply would be logged.
	v=$(journalctl -b _PID=1 -o cat --no-pager 2>/dev/null |
		grep -i -E 'not supported|unsupported|proceeding without|failed to (set up|apply|install|attach|load)|seccomp|bpf' | head -n 5)
	[ -z "$v" ] || { diag "PID 1 on features it could not use:"; echo "$v" | sed 's/^/  /' >>"$DIAG"; }

	# systemd's own rating of the running unit.
	if command -v systemd-analyze >/dev/null; then
		t0=$(now_ms)
		sec=$(systemd-analyze security --no-pager "$UNIT" 2>&1)
		level=$(echo "$sec" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
		if [ -n "$level" ]; then
			diag "systemd-analyze security $UNIT (running unit): overall exposure $level (limit $MAX_EXPOSURE), $(($(now_ms) - t0)) ms"
			echo "$level" >/tmp/exposure
			# (The items that add to the exposure: "-" in the C locale.)
			echo "$sec" | grep -E '^(- |✗ )' | sed -e 's/  */ /g' -e 's/^/  /' >>"$DIAG"
			awk -v l="$level" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(l <= m) }' ||
				{ fail "exposure $level > $MAX_EXPOSURE"; rc=1; }
		else
			fail "systemd-analyze security gave no overall exposure:"
			echo "$sec" | tail -n 10 | sed 's/^/  /' >>"$DIAG"
			rc=1
		fi
	else
		diag "no systemd-analyze in the image: exposure not rated"
	fi
	return $rc
}

DESC3="NVMe/TCP TLS loopback connect (PSK) and a $READ_MB MiB read (kTLS) under the sandboxed service"
test_3() {
	[ "$(systemctl is-active "$UNIT")" = active ] || { fail "$UNIT is not active"; return 1; }
	connect_and_read || return 1
	CTRL1=$CTRL
	[ "$(systemctl is-active "$UNIT")" = active ] || { fail "$UNIT is no longer active"; return 1; }
}

DESC4="journal: per-handshake entries of the unit (MESSAGE_ID, TLSHD_* fields) for both roles; STATUS= counts them"
test_4() {
	local rc=0 n1 n2 all ident st ok lost uids
	# Wait until the daemon's handshake entries (by SYSLOG_IDENTIFIER,
	# whatever unit they are attributed to) have reached the journal.
	wait_for 'set -- $(good_counts SYSLOG_IDENTIFIER=tlshd); [ "$1" -ge 1 ] && [ "$2" -ge 1 ]' 10 ||
		{ fail "no good handshake entries with SYSLOG_IDENTIFIER=tlshd at all"; rc=1; }
	handshake_entries SYSLOG_IDENTIFIER=tlshd >/tmp/hs.ident
	handshake_entries >/tmp/hs.unit
	n1=$(good_in client </tmp/hs.unit) n2=$(good_in server </tmp/hs.unit)
	all=$(wc -l </tmp/hs.unit) ident=$(wc -l </tmp/hs.ident)
	diag "handshake entries: $ident with SYSLOG_IDENTIFIER=tlshd, $all with journalctl -u $UNIT ($n1 good client, $n2 good server)"
	sed 's/^/  /' /tmp/hs.ident >>"$DIAG"
	[ "$n1" -ge 1 ] || { fail "journalctl -u $UNIT: no client entry with MESSAGE_ID=$MSGID_OK TLSHD_AUTH=psk TLSHD_RESULT=succeeded TLSHD_ERRNO=0, TLSHD_CIPHER, TLSHD_DURATION_MS, TLSHD_US_ACCEPT/HANDSHAKE > 0"; rc=1; }
	[ "$n2" -ge 1 ] || { fail "journalctl -u $UNIT: no server entry with MESSAGE_ID=$MSGID_OK TLSHD_AUTH=psk TLSHD_RESULT=succeeded TLSHD_ERRNO=0, TLSHD_CIPHER, TLSHD_DURATION_MS, TLSHD_US_ACCEPT/HANDSHAKE > 0"; rc=1; }
	# A server's entry names the PSK that authenticated the host, in a
	# field administrators can search for.
	journalctl -u "$UNIT" TLSHD_ROLE=server TLSHD_AUTH=psk TLSHD_RESULT=succeeded -o cat \
		--output-fields=TLSHD_IDENTITY --no-pager >/tmp/hs.identity 2>/dev/null
	grep -q -E "^psk=[0-9]+ identity='NVMe0R0[12] [^']+'\$" /tmp/hs.identity ||
		{ fail "journalctl -u $UNIT: no successful server PSK entry whose TLSHD_IDENTITY is psk=SERIAL identity='NVMe0R0x ...'"; rc=1; }
	# Every handshake entry the daemon wrote must be one of the unit's.
	lost=$((ident - all))
	[ "$lost" -le 0 ] || { fail "$lost of $ident handshake entries (SYSLOG_IDENTIFIER=tlshd) are missing from journalctl -u $UNIT (see UNIT=, the entry's _SYSTEMD_UNIT)"; rc=1; }
	# Workers leave root after ACCEPT: the parent writes their entries
	# with the uid the kernel stamped on each report.
	uids=$(journalctl SYSLOG_IDENTIFIER=tlshd "MESSAGE_ID=$MSGID_OK" -o export --no-pager \
		--output-fields=TLSHD_WORKER_UID 2>/dev/null | sed -n 's/^TLSHD_WORKER_UID=//p' | sort -u | tr '\n' ' ')
	diag "handshakes served by worker uid(s): $uids"
	[ "$uids" = "65534 " ] || { fail "workers served as uid(s) '$uids', want 65534 only"; rc=1; }
	if grep -q "RESULT=failed" /tmp/hs.ident; then
		fail "failed handshakes logged"
		rc=1
	fi
	journalctl SYSLOG_IDENTIFIER=tlshd "MESSAGE_ID=$MSGID_OK" -o verbose --no-pager -n 1 2>/dev/null |
		grep -E '^ *(MESSAGE|MESSAGE_ID|TLSHD_[A-Z_]*|_SYSTEMD_[A-Z_]*|_PID|_COMM)=' | sed 's/^ */  /' >>"$DIAG"
	# STATUS= as systemctl status shows it ("Status: ...").
	ok=0
	wait_for 'st=$(systemctl status --no-pager "$UNIT" 2>/dev/null | sed -n "s/^ *Status: \"\(.*\)\"$/\1/p"); echo "$st" | grep -q -E "handshakes: [0-9]+ in flight, [1-9][0-9]* succeeded, [0-9]+ failed"' 5 && ok=1
	diag "systemctl status: Status: \"$st\""
	[ "$ok" = 1 ] || { fail "no 'Status: \"handshakes: N in flight, M succeeded ...\"' with M > 0 in systemctl status"; rc=1; }
	return $rc
}

DESC5="systemctl reload with a broken config: rejected, service still active (same MainPID), new connect succeeds"
test_5() {
	local pid0 pid1 rc=0 r n0 n1 c0 s0 state
	[ -n "${CTRL1:-}" ] && { disconnect "$CTRL1" || diag "could not delete nvme$CTRL1"; }
	pid0=$(main_pid)
	n0=$(unit_count 'rejected, keeping the current one')
	# (New handshake entries are counted by SYSLOG_IDENTIFIER: whether
	# they are attributed to the unit is test 4's business.)
	set -- $(good_counts SYSLOG_IDENTIFIER=tlshd)
	c0=$1 s0=$2
	cp "$TLSHD_CONF" /tmp/tlshd.conf.good
	printf '[debug\nloglevel=1\n' >"$TLSHD_CONF"
	systemctl reload "$UNIT" 2>>"$DIAG"
	r=$?
	state=$(systemctl is-active "$UNIT")
	pid1=$(main_pid)
	diag "systemctl reload exited $r; is-active: $state; MainPID $pid0 -> $pid1; NRestarts=$(prop NRestarts)"
	[ "$r" = 0 ] || { fail "systemctl reload exited $r"; rc=1; }
	[ "$state" = active ] || { fail "is-active says '$state' after the reload"; rc=1; }
	[ "$pid0" = "$pid1" ] || { fail "MainPID changed ($pid0 -> $pid1): the daemon restarted"; rc=1; }
	wait_for '[ "$(unit_count "rejected, keeping the current one")" -gt "$n0" ]' 5 ||
		{ fail "no 'rejected, keeping the current one' line in the journal"; rc=1; }
	unit_messages | grep -E 'reloading|rejected|malformed|tlshd.conf' | tail -n 4 | sed 's/^/  /' >>"$DIAG"
	# Still serving, with the old configuration.
	if connect_and_read; then
		wait_for 'set -- $(good_counts SYSLOG_IDENTIFIER=tlshd); [ "$1" -gt "$c0" ] && [ "$2" -gt "$s0" ]' 10 ||
			{ fail "no new good client and server handshake entries after the reload"; rc=1; }
		disconnect "$CTRL" || diag "could not delete nvme$CTRL"
	else
		rc=1
	fi
	[ "$(systemctl is-active "$UNIT")" = active ] || { fail "$UNIT is no longer active"; rc=1; }
	cp /tmp/tlshd.conf.good "$TLSHD_CONF"
	return $rc
}

DESC6="[authenticate] keyrings under the unit: a target PSK kept only in a root-owned keyring named there serves a connect"
test_6() {
	local rc=0 conf host key mark
	setup_target || return 1
	HOSTID=$(new_uuid)
	HOSTNQN="nqn.2014-08.org.nvmexpress:uuid:$HOSTID"
	head -c 32 /dev/urandom >/tmp/psk.conf
	# The target's copy in the configured keyring, the host's in a keyring
	# of its own (keyring=): .nvme holds no key for this identity.
	# (This unit's session keyring is its own: link root's user keyring
	# in, or what is made there cannot be written.)
	keyctl link @u @s >/dev/null 2>&1
	conf=$(keyctl newring tlshd-vm-conf @u) && host=$(keyctl newring tlshd-vm-host @u) ||
		{ fail "keyctl newring failed"; return 1; }
	key=$(add_psk "$conf" "$HOSTNQN" /tmp/psk.conf) && add_psk "$host" "$HOSTNQN" /tmp/psk.conf >/dev/null ||
		{ fail "keyctl padd failed"; return 1; }
	diag "configured keyring tlshd-vm-conf $conf (key $key), host keyring $host"
	cp "$TLSHD_CONF" /tmp/tlshd.conf.saved
	printf '[debug]\nloglevel=1\n[authenticate]\nkeyrings=tlshd-vm-conf\n' >"$TLSHD_CONF"
	systemctl reload "$UNIT" 2>>"$DIAG" || { fail "systemctl reload failed"; rc=1; }
	wait_for '[ "$(unit_count "configuration reloaded")" -ge 1 ]' 5 || diag "no 'configuration reloaded' line"
	mark=$(unit_count "from configured keyring 'tlshd-vm-conf'")
	if nvme_connect "keyring=$host" "$HOSTNQN" "$HOSTID"; then
		diag "connected nvme$CTRL in ${CONNECT_MS} ms"
		wait_for '[ "$(unit_count "from configured keyring .tlshd-vm-conf.")" -gt "$mark" ]' 5 ||
			{ fail "no 'from configured keyring' line in the journal"; rc=1; }
		disconnect "$CTRL" || diag "could not delete nvme$CTRL"
	else
		fail "connect with the target PSK in the configured keyring failed after ${CONNECT_MS} ms: $CONNECT_ERR"
		rc=1
	fi
	unit_messages | grep -E 'keyring|PSK|identity' | tail -n 4 | sed 's/^/  /' >>"$DIAG"
	cp /tmp/tlshd.conf.saved "$TLSHD_CONF"
	systemctl reload "$UNIT" 2>>"$DIAG"
	keyctl unlink "$conf" @u >/dev/null 2>&1
	keyctl unlink "$host" @u >/dev/null 2>&1
	return $rc
}

# ---------------------------------------------------- NFS under the unit ---
# (The NFS server and client are those of guest/fixture-nfs.sh.)

# The unit's journal messages after a mark (the cursor of its latest
# entry; empty: the unit has none yet).  jsince keeps what it read in
# /tmp/jsince (journalctl is slow under TCG: jneed and jdiag read that
# copy, and the journal again only when they must).
jmark() {
	: >/tmp/jsince
	journalctl -u "$UNIT" -n 1 --show-cursor -o cat --no-pager 2>/dev/null | sed -n 's/^-- cursor: //p'
}
jsince() { journalctl -u "$UNIT" ${1:+"--after-cursor=$1"} -o cat --no-pager 2>/dev/null | tee /tmp/jsince; }
# jneed MARK ERE: a message matching after MARK, within 5 s.
jneed() {
	local jn_mark=$1 jn_re=$2
	grep -q -E "$2" /tmp/jsince 2>/dev/null && return 0
	wait_for 'jsince "$jn_mark" | grep -q -E "$jn_re"' 5 ||
		{ fail "no '$2' message in journalctl -u $UNIT"; return 1; }
}
# jdiag ERE [N]: the first N (default 6) messages matching in what the
# last jsince read, as diagnostics.
jdiag() { grep -E "$1" /tmp/jsince | head -n "${2:-6}" | sed 's/^/  /' >>"$DIAG"; }

# nfs_conf PROFILE: the daemon's configuration for an NFS test, then
# systemctl reload (the original is restored by conf_restore).  Client
# role: the test CA verifies the server; its certificate is
#   keyring  none (the kernel names one: cert_serial=)
#   good     client.pem (test CA)
#   public   public-client.pem (the system trust store's "public" CA)
#   notrust  public-client.pem
# Server role: server.pem, and the test CA as the only x509.truststore,
# except for notrust (no x509.truststore at all).
nfs_conf() {
	local cli='' trust="x509.truststore=$PKI/ca.pem"
	case $1 in
	good) cli=client ;;
	public) cli=public-client ;;
	notrust) cli=public-client trust= ;;
	esac
	[ -f /tmp/tlshd.conf.orig ] || cp "$TLSHD_CONF" /tmp/tlshd.conf.orig
	{
		printf '[debug]\nloglevel=1\n[authenticate.client]\nx509.truststore=%s/ca.pem\n' "$PKI"
		[ -z "$cli" ] || printf 'x509.certificate=%s/%s.pem\nx509.private_key=%s/%s.key\n' \
			"$PKI" "$cli" "$PKI" "$cli"
		printf '[authenticate.server]\n%s\nx509.certificate=%s/server.pem\nx509.private_key=%s/server.key\n' \
			"$trust" "$PKI" "$PKI"
	} >"$TLSHD_CONF"
	unit_reload "configuration '$1'"
}

# unit_reload WHAT: systemctl reload, and wait for "configuration reloaded".
unit_reload() {
	local mark
	mark=$(jmark)
	systemctl reload "$UNIT" 2>>"$DIAG" || { fail "systemctl reload ($1) failed"; return 1; }
	jneed "$mark" 'configuration reloaded$' || { fail "$1 not loaded"; return 1; }
}

# The configuration of the unit as it was before nfs_conf.
conf_restore() {
	[ -f /tmp/tlshd.conf.orig ] || return 0
	cp /tmp/tlshd.conf.orig "$TLSHD_CONF" && rm -f /tmp/tlshd.conf.orig
	[ "$(systemctl is-active "$UNIT")" != active ] || unit_reload "the original configuration"
}

# unit_peer_auth MARK yes|no: nfsd marked the transport of the latest
# successful server handshake after MARK peer-authenticated or not
# (sunrpc trace, fixture-nfs.sh's peer_auth_check).  After a jneed for
# that handshake.
unit_peer_auth() {
	local port
	port=$(sed -n 's/.*handshake succeeded: role=server .* peer=[^ ]*:\([0-9][0-9]*\) .*/\1/p' /tmp/jsince | tail -n 1)
	[ -n "$port" ] || { fail "no server handshake after the mark in the unit's journal"; return 1; }
	peer_auth_check "$port" "$2" || { trace_for_port "$port" 6 >>"$DIAG"; return 1; }
}

# mtls_export: the mtls-only export $NFS_EXPORT/mtls (fixture-nfs.sh's
# export_mtls_only, which needs nfsd to know the root export's client:
# one tls mount of it first, if no test mounted it yet).
mtls_export() {
	[ -n "$MTLS_EXPORT_HOW" ] && return 0
	awk -v p="$NFS_EXPORT" '$1 == p { f = 1 } END { exit !f }' /proc/net/rpc/nfsd.export/content 2>/dev/null || {
		nfs_mount_or_fail nfs.test:/ xprtsec=tls && nfs_umount || return 1
	}
	export_mtls_only || return 1
	diag "mtls-only export of $NFS_EXPORT/mtls via $MTLS_EXPORT_HOW"
}

# refused_mtls WHY: an xprtsec=mtls mount of the mtls-only export fails,
# with "access denied" or EPERM.
refused_mtls() {
	nfs_mount_refused nfs.test:/mtls xprtsec=mtls "$1" || return 1
	case $MOUNT_ERR in
	*"access denied"*|*"not permitted"*|*"Permission denied"*) ;;
	*) fail "the mount failed, but not with EPERM or 'access denied': $MOUNT_ERR"; return 1 ;;
	esac
}

# trust_store_check: the "public" CA is what GnuTLS in the guest reads as
# the system trust store: tlshd -t with no [authenticate.client]
# x509.truststore (which falls back to the system's) says nothing about an
# empty system store, and says it once the file is moved away.
SYSTRUST=/etc/ssl/certs/ca-certificates.crt
trust_store_check() {
	local out rc=0
	printf '[authenticate.client]\n' >/tmp/systrust.conf
	out=$("$TLSHD" -t -c /tmp/systrust.conf 2>&1)
	echo "$out" | grep -q 'configuration OK' && ! echo "$out" | grep -q 'system trust store' ||
		{ fail "tlshd -t with the system trust store: $(echo "$out" | tr '\n' ' ')"; rc=1; }
	mv "$SYSTRUST" "$SYSTRUST.off"
	out=$("$TLSHD" -t -c /tmp/systrust.conf 2>&1)
	mv "$SYSTRUST.off" "$SYSTRUST"
	echo "$out" | grep -q 'system trust store' ||
		{ fail "tlshd -t without $SYSTRUST did not notice (the check above proves nothing): $(echo "$out" | tr '\n' ' ')"; rc=1; }
	diag "system trust store $SYSTRUST: $(grep -c 'BEGIN CERTIFICATE' "$SYSTRUST") certificate (the public CA: $(cmp -s "$SYSTRUST" "$PKI/public-ca.pem" && echo yes || echo NO)), read by the guest's GnuTLS (tlshd -t)"
	return $rc
}

DESC7="NFS xprtsec=mtls, client certificate from the .nfs keyring (cert_serial=/privkey_serial=) under the unit: 1 MiB written and read back, kTLS active, verified certificate in the unit's journal, nfsd transport PEER_AUTH"
test_7() {
	local rc=0 ring cert key opts mark dm
	nfs_server && nfs_conf keyring || return 1
	ring=$(keyring_serial .nfs) || ring=@u
	cert=$(keyctl padd user tlshd-vm-client-cert "$ring" <"$PKI/keyring-client.der") &&
		key=$(keyctl padd user tlshd-vm-client-key "$ring" <"$PKI/keyring-client.key.der") ||
		{ fail "keyctl padd user into $ring failed"; return 1; }
	diag "keyring $ring (.nfs: $(keyring_serial .nfs || echo none)): certificate key $cert, private key $key"
	opts=xprtsec=mtls,cert_serial=$cert,privkey_serial=$key
	mark=$(jmark) dm=$(dmesg_mark)
	trace_clear
	if nfs_mount nfs.test:/ "$opts"; then
		diag "mounted nfs.test:/ ($opts) in ${MOUNT_MS} ms"
		nfs_rw || rc=1
		jneed "$mark" "presenting certificate $cert from the keyring" || rc=1
		jneed "$mark" "handshake succeeded: role=server auth=x509 .* subject='CN=tlshd-vm keyring-client' issuer='CN=tlshd-vm test CA'" || rc=1
		unit_peer_auth "$mark" yes || rc=1
		journalctl -u "$UNIT" -o short-monotonic --no-pager 2>/dev/null |
			grep "role=server auth=x509 .* subject=" | tail -n 1 | sed 's/^/  journal: /' >>"$DIAG"
		jdiag 'handshake|from the keyring'
		nfs_umount || rc=1
	elif dmesg_after "$dm" | grep -q -i "unknown parameter 'cert_serial'"; then
		diag "mount: $MOUNT_ERR; kernel: $(dmesg_after "$dm" | grep -i cert_serial | head -n 1)"
		SKIP_REASON="kernel $KLABEL has no cert_serial=/privkey_serial= NFS mount options (7.x has)"
	else
		fail "mount nfs.test:/ -o $opts failed after ${MOUNT_MS} ms: $MOUNT_ERR"
		rc=1
	fi
	key_unlink "$ring" "$cert" "$key"
	return $rc
}

# unit_holder: the key holder under the unit (the configuration names
# private keys): a child of the daemon in the unit's cgroup, not root, no
# capability (none effective, permitted or inheritable; its bounding set
# is the daemon's, which only CAP_SETPCAP could shrink and which nothing
# can use without execve and with no_new_privs), no_new_privs, and one
# seccomp filter more than the daemon (its own on top of the unit's).
# One holder only: those of earlier configurations (nfs_conf reloads)
# have exited once their workers ended.
unit_holders() { children "$(main_pid)" tlshd-keys; }
unit_holder() {
	local pid h k v rc=0
	pid=$(main_pid)
	wait_for '[ "$(unit_holders | wc -l)" = 1 ]' 5 ||
		{ fail "key holders under the unit after the reloads: $(unit_holders | wc -l) ($(unit_holders | tr '\n' ' ')), want 1"; rc=1; }
	h=$(unit_holders | tail -n 1)
	[ -n "$h" ] || { fail "no key holder (tlshd-keys) among the daemon's children under the unit"; return 1; }
	v=$(awk '$1 == "Uid:" { print $2 }' "/proc/$h/status")
	[ -n "$v" ] && [ "$v" != 0 ] || { fail "the key holder runs as uid '$v'"; rc=1; }
	for k in CapEff CapPrm CapInh CapAmb; do
		[ "$(pstatus "$h" $k)" = 0000000000000000 ] ||
			{ fail "the key holder's $k is $(pstatus "$h" $k), want none"; rc=1; }
	done
	[ "$(pstatus "$h" CapBnd)" = "$(pstatus "$pid" CapBnd)" ] ||
		{ fail "the key holder's CapBnd is $(pstatus "$h" CapBnd), the daemon's $(pstatus "$pid" CapBnd)"; rc=1; }
	[ "$(pstatus "$h" NoNewPrivs)" = 1 ] || { fail "the key holder lacks no_new_privs"; rc=1; }
	[ "$(pstatus "$h" Seccomp_filters)" = $(($(pstatus "$pid" Seccomp_filters) + 1)) ] ||
		{ fail "the key holder has $(pstatus "$h" Seccomp_filters) seccomp filters, the daemon $(pstatus "$pid" Seccomp_filters): want one more"; rc=1; }
	[ "$(sed -n 's/^0:://p' "/proc/$h/cgroup")" = "/system.slice/$UNIT" ] ||
		{ fail "the key holder is not in the unit's cgroup: $(cat "/proc/$h/cgroup")"; rc=1; }
	diag "key holder under the unit: pid $h, uid $v, CapEff=$(pstatus "$h" CapEff) CapBnd=$(pstatus "$h" CapBnd) NoNewPrivs=$(pstatus "$h" NoNewPrivs) Seccomp_filters=$(pstatus "$h" Seccomp_filters) (daemon $(pstatus "$pid" Seccomp_filters))"
	return $rc
}

DESC8="NFS mtls-only export: a client certificate from a 'public' CA in the system trust store, not in [authenticate.server] x509.truststore, is refused (EPERM/access denied), the test CA's mounts (both certificates signed by the key holder, confined under the unit); with no server x509.truststore it authenticates nobody (mtls refused, tls fine)"
test_8() {
	local mark rc=0
	nfs_server && mtls_export || return 1
	trust_store_check || rc=1
	# The configured trust store only: the public CA's client is refused
	# by the server's handshake, the test CA's mounts.
	nfs_conf public || return 1
	mark=$(jmark)
	refused_mtls "the client certificate chains to the public CA only" || rc=1
	jneed "$mark" 'client certificate rejected: .*issuer is unknown' || rc=1
	jneed "$mark" 'handshake failed: role=server auth=x509 .*errno=EACCES' || rc=1
	jdiag 'handshake|rejected' 3
	nfs_conf good || return 1
	mark=$(jmark)
	nfs_mount_or_fail nfs.test:/mtls xprtsec=mtls && nfs_umount || rc=1
	jneed "$mark" "handshake succeeded: role=server auth=x509 .* subject='CN=tlshd-vm client' issuer='CN=tlshd-vm test CA'" || rc=1
	unit_holder || rc=1
	# No server trust store: no client certificate is asked for, so none
	# (not even the system-trusted one) authenticates; tls still serves.
	nfs_conf notrust || return 1
	mark=$(jmark)
	trace_clear
	refused_mtls "no [authenticate.server] x509.truststore: no client is authenticated" || rc=1
	jneed "$mark" 'handshake succeeded: role=server auth=x509' && unit_peer_auth "$mark" no || rc=1
	! grep -q "role=server auth=x509 .* subject=" /tmp/jsince ||
		{ fail "a client certificate was verified without a server trust store"; rc=1; }
	nfs_mount_or_fail nfs.test:/ xprtsec=tls && nfs_umount || rc=1
	conf_restore || rc=1
	return $rc
}

# ------------------------------------------------ the daemon by hand ---

# hand_start: stop the unit and start the installed binary by hand (-s,
# log in $TLSHD_LOG) from this unit, whose session keyring reaches root's
# user keyring (keyctl link @u @s), as a root shell's would.
hand_start() {
	systemctl stop "$UNIT" 2>>"$DIAG" || { fail "systemctl stop failed"; return 1; }
	cp "$TLSHD_CONF" /tmp/tlshd.conf.hand
	start_daemon psk || return 1
	diag "tlshd started by hand: pid $DAEMON_PID, session keyring $(keyctl show @s 2>/dev/null | awk '/keyring:/ { printf "%s%s", sep, $NF; sep = ", " }')"
}

# hand_stop: stop it, restore the configuration, start the unit again.
hand_stop() {
	local rc=0
	stop_daemon || rc=1
	[ -f /tmp/tlshd.conf.hand ] && mv /tmp/tlshd.conf.hand "$TLSHD_CONF"
	systemctl start "$UNIT" 2>>"$DIAG" && [ "$(systemctl is-active "$UNIT")" = active ] ||
		{ fail "systemctl start after the daemon by hand failed"; rc=1; }
	return $rc
}

# mismatch_connect RING KEY: a connect with keyring=RING, whose key KEY for
# HOSTNQN differs from .nvme's, fails; both sides log the binder mismatch,
# the host offered KEY and the target took .nvme's (PSK_SERIAL), not KEY.
mismatch_connect() {
	local mark rc=0
	mark=$(log_mark)
	if nvme_connect "keyring=$1" "$HOSTNQN" "$HOSTID"; then
		fail "connect with a host key that differs from .nvme's SUCCEEDED (nvme$CTRL)"
		disconnect "$CTRL"
		return 1
	fi
	diag "connect with keyring=$1 refused after ${CONNECT_MS} ms: $CONNECT_ERR"
	need_log "$mark" "handshake failed: role=server auth=psk .*binder check failed.* psk=$PSK_SERIAL identity='[^']*${HOSTID}" || rc=1
	need_log "$mark" "handshake failed: role=client auth=psk .*the server's key for this PSK identity differs" || rc=1
	need_log "$mark" "client identity '[^']*${HOSTID}[^']*' is PSK $PSK_SERIAL (32 bytes) from \(the request's keyring $NVME_KR\|the keyring the kernel linked\)" || rc=1
	need_log "$mark" "offering PSK $2 " || rc=1
	need_no_log "$mark" "is PSK $2 " || rc=1
	log_diag "$mark" 'handshake failed|client identity|offering' 5
	return $rc
}

DESC9="NVMe host key for an identity that differs from .nvme's, in a keyring under root's user keyring (keyring=), daemon started by hand: connect refused, binder mismatch logged by both sides, target used .nvme's key; matching keys connect"
test_9() {
	local ring bad rc=0 mark
	setup_target && new_host || return 1
	ring=$(keyctl newring tlshd-vm-mismatch @u) || { fail "keyctl newring failed"; return 1; }
	head -c 32 /dev/urandom >/tmp/psk.bad
	bad=$(add_psk "$ring" "$HOSTNQN" /tmp/psk.bad) || { fail "keyctl padd into $ring failed"; return 1; }
	diag ".nvme $NVME_KR: key $PSK_SERIAL; keyring $ring under @u: key $bad (other bytes)"
	# (What the daemon started by hand will see: its session is ours.)
	keyctl link @u @s >/dev/null 2>&1
	keyctl search @s keyring tlshd-vm-mismatch >/dev/null ||
		{ fail "this session keyring does not reach tlshd-vm-mismatch"; key_unlink @u "$ring"; return 1; }
	if hand_start; then
		mismatch_connect "$ring" "$bad" || rc=1
		# The same bytes in both keyrings: the same connect works.
		key_unlink "$ring" "$bad"
		add_psk "$ring" "$HOSTNQN" "/tmp/psk.$HOSTID" >/dev/null || { fail "keyctl padd into $ring failed"; rc=1; }
		mark=$(log_mark)
		if nvme_connect "keyring=$ring" "$HOSTNQN" "$HOSTID"; then
			diag "connect with matching keys: nvme$CTRL in ${CONNECT_MS} ms"
			need_handshakes "$mark" auth=psk auth=psk || rc=1
			disconnect "$CTRL" || diag "could not delete nvme$CTRL"
		else
			fail "connect with matching keys failed after ${CONNECT_MS} ms: $CONNECT_ERR"
			rc=1
		fi
	else
		rc=1
	fi
	hand_stop || rc=1
	key_unlink @u "$ring"
	return $rc
}

# hooks_built: whether the installed tlshd has test hooks (else the
# caller's test is skipped: SKIP_REASON).
hooks_built() {
	"$TLSHD_EXEC" -v 2>/dev/null | grep -q 'built with test hooks' && return 0
	SKIP_REASON="the installed tlshd has no test hooks"
	return 1
}

# hooks_on NAME HOOKS: the unit restarted with TLSHD_TEST_HOOKS=HOOKS, from
# a drop-in NAME.conf; hooks_off NAME: restarted without it.
hooks_on() {
	mkdir -p "/run/systemd/system/$UNIT.d"
	printf '[Service]\nEnvironment=TLSHD_TEST_HOOKS=%s\n' "$2" >"/run/systemd/system/$UNIT.d/$1.conf"
	systemctl daemon-reload && systemctl restart "$UNIT" 2>>"$DIAG" && return 0
	fail "restart with the test hooks $2 failed"
	hooks_off "$1"
	return 1
}
hooks_off() {
	rm -f "/run/systemd/system/$UNIT.d/$1.conf"
	systemctl daemon-reload && systemctl restart "$UNIT" 2>>"$DIAG" &&
		[ "$(systemctl is-active "$UNIT")" = active ] && return 0
	fail "restart without the test hooks failed"
}

# connect_told WHAT: a connect of $HOSTNQN, its time or its error in the
# diagnostics (WHAT: which connect).
connect_told() {
	if nvme_connect "" "$HOSTNQN" "$HOSTID"; then
		diag "connect $1: nvme$CTRL in ${CONNECT_MS} ms"
		return 0
	fi
	fail "connect $1 failed: $CONNECT_ERR"
	return 1
}

# stalled_pids: the workers the stall hook holds, from the unit's log.
stalled_pids() {
	unit_messages | sed -n 's/.*test hook: worker \([0-9]*\) stalls for .*/\1/p' | sort -u
}

DESC10="a worker stalled under its system call filter (test hooks stall-after-filter, kill-after-ms=3000) is killed by the daemon under the unit, its end logged; the daemon serves on"
test_10() {
	local rc=0 pid pids n0 t0 cpid
	hooks_built || return 0
	setup_target && new_host || return 1
	hooks_on stall stall-after-filter=60000,kill-after-ms=3000 || return 1
	n0=$(stalled_pids | wc -l)
	t0=$(now_ms)
	nvme_connect "" "$HOSTNQN" "$HOSTID" >/dev/null 2>&1 &
	cpid=$!
	wait_for '[ "$(stalled_pids | wc -l)" -gt "$n0" ]' 20 || { fail "no worker stalled (no 'test hook: worker N stalls' line)"; rc=1; }
	pids=$(stalled_pids)
	for pid in $pids; do
		if ! wait_for "[ ! -d /proc/$pid ]" 15; then
			fail "stalled worker $pid still alive $(($(now_ms) - t0)) ms after the connect (uid $(awk '/^Uid:/ { print $2 }' "/proc/$pid/status" 2>/dev/null))"
			rc=1
		fi
		wait_for "[ \"\$(unit_count 'worker $pid still running after')\" -gt 0 ]" 5 ||
			{ fail "no 'worker $pid still running after ... killing it' line"; rc=1; }
		wait_for "[ \"\$(unit_count 'worker $pid died of signal 9')\" -gt 0 ]" 5 ||
			{ fail "no 'worker $pid died of signal 9' line"; rc=1; }
	done
	diag "stalled workers: $(echo $pids); gone $(($(now_ms) - t0)) ms after the connect began"
	[ "$(unit_count 'cannot kill')" = 0 ] || { fail "the daemon could not kill: $(unit_messages | grep 'cannot kill' | head -n 2 | tr '\n' ' ')"; rc=1; }
	unit_messages | grep -E 'stalls for|still running after|died of signal|cannot kill' | tail -n 6 | sed 's/^/    /' >>"$DIAG"
	wait "$cpid" 2>/dev/null
	disconnect_all
	hooks_off stall || rc=1
	# (The daemon serves on: the next connect handshakes.)
	new_host || return 1
	connect_told "after the stall" && disconnect "$CTRL" || rc=1
	return $rc
}

# status_counts: the handshakes in flight and succeeded that the unit's
# STATUS= says.
status_counts() {
	prop StatusText | sed -n 's/^handshakes: \([0-9]*\) in flight, \([0-9]*\) succeeded.*/\1 \2/p'
}

# tcp_sockets PID: how many TCP sockets PID holds open.
tcp_sockets() {
	ls -l "/proc/$1/fd" 2>/dev/null | sed -n 's/.*socket:\[\([0-9]*\)\]$/\1/p' >/tmp/inodes
	awk 'NR == FNR { want[$1] = 1; next } FNR > 1 && ($10 in want) { n++ } END { print n + 0 }' \
		/tmp/inodes /proc/net/tcp /proc/net/tcp6
}

# lingering_pids: the workers the linger hook holds, from the unit's log.
lingering_pids() {
	unit_messages | sed -n 's/.*test hook: worker \([0-9]*\) lingers for .*/\1/p' | sort -u
}

DESC11="a served worker that is slow to exit (test hook linger-after-served=15000): the connect completes while its workers linger, holding no TCP socket (nor does the daemon for them), STATUS= counts them as succeeded and none in flight, their entries logged; they exit on their own"
test_11() {
	local rc=0 pid pids n n0 t0 v st
	hooks_built || return 0
	setup_target && new_host || return 1
	hooks_on linger linger-after-served=15000 || return 1
	n0=$(unit_count 'handshake succeeded')
	t0=$(now_ms)
	connect_told "with lingering workers" || rc=1
	wait_for '[ -n "$(lingering_pids)" ]' 5 || { fail "no 'test hook: worker N lingers' line"; rc=1; }
	pids=$(lingering_pids)
	for pid in $pids; do
		# (Its DONE went out first: the connect above completed.)
		if [ ! -d "/proc/$pid" ]; then
			fail "worker $pid is gone $(($(now_ms) - t0)) ms after the connect began: the connect waited for its linger"
			rc=1
			continue
		fi
		v=$(tcp_sockets "$pid")
		[ "$v" = 0 ] || { fail "lingering worker $pid holds $v TCP socket(s)"; rc=1; }
	done
	v=$(tcp_sockets "$(main_pid)")
	[ "$v" = 0 ] || { fail "the daemon holds $v TCP socket(s) of requests served"; rc=1; }
	# (Counted by their reports: as succeeded, not in flight.)
	n=$(echo $pids | wc -w)
	wait_for 'set -- $(status_counts); [ "${1:-x}" = 0 ] && [ "${2:-0}" -ge "$n" ]' 5 ||
		{ fail "STATUS= does not count $n lingering workers as succeeded and none in flight: $(prop StatusText)"; rc=1; }
	st=$(prop StatusText)
	[ "$(($(unit_count 'handshake succeeded') - n0))" -ge "$n" ] ||
		{ fail "fewer entries than lingering workers: $(($(unit_count 'handshake succeeded') - n0)) for $n"; rc=1; }
	diag "lingering workers (pid comm state): $(for pid in $pids; do awk '{ printf "%s %s %s; ", $1, $2, $3 }' "/proc/$pid/stat" 2>/dev/null; done)STATUS=$st"
	for pid in $pids; do
		wait_for "[ ! -d /proc/$pid ]" 30 || { fail "lingering worker $pid never exited"; rc=1; }
	done
	[ "$(unit_count ') after its report')" = 0 ] ||
		{ fail "a lingering worker ended badly: $(unit_messages | grep ') after its report' | head -n 2 | tr '\n' ' ')"; rc=1; }
	diag "they exited $(($(now_ms) - t0)) ms after the connect began"
	disconnect_all
	hooks_off linger || rc=1
	return $rc
}

# served_pids: the daemon's children that serve or served a request (a
# spare is tlshd-spare until dispatched, the key holder tlshd-keys; a
# child just forked, not yet named, is root, which a worker no longer is
# once it serves).
served_pids() {
	local m
	m=$(main_pid)
	for d in /proc/[0-9]*; do
		[ "$(awk '{ print $4 }' "$d/stat" 2>/dev/null)" = "$m" ] &&
			[ "$(cat "$d/comm" 2>/dev/null)" = tlshd ] &&
			[ "$(awk '/^Uid:/ { print $2 }' "$d/status" 2>/dev/null)" != 0 ] &&
			echo "${d#/proc/}"
	done
}

DESC12="served workers wait to exit until the daemon is quiet (test hook exit-quiet-ms=5000): right after a connect its workers are still there, parked (sleeping, no TCP socket), STATUS= counts none in flight; they exit by themselves under their filter, none ending badly"
test_12() {
	local rc=0 pid pids n t0 st bad0
	hooks_built || return 0
	setup_target && new_host || return 1
	hooks_on park exit-quiet-ms=5000 || return 1
	bad0=$(unit_count ') after its report')
	t0=$(now_ms)
	connect_told "with parked workers" || rc=1
	pids=$(served_pids)
	n=$(echo $pids | wc -w)
	diag "served workers $(($(now_ms) - t0)) ms after the connect began (pid comm state): $(for pid in $pids; do awk '{ printf "%s %s %s; ", $1, $2, $3 }' "/proc/$pid/stat" 2>/dev/null; done)"
	# (At least the admin queue's two sides.)
	[ "$n" -ge 2 ] || { fail "$n served workers right after the connect: they exited without waiting"; rc=1; }
	for pid in $pids; do
		st=$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null)
		[ "$st" = S ] || [ -z "$st" ] || { fail "served worker $pid is in state $st, not sleeping"; rc=1; }
		[ "$(tcp_sockets "$pid")" = 0 ] || { fail "parked worker $pid holds a TCP socket"; rc=1; }
	done
	set -- $(status_counts)
	[ "${1:-x}" = 0 ] || { fail "STATUS= counts parked workers in flight: $(prop StatusText)"; rc=1; }
	for pid in $pids; do
		wait_for "[ ! -d /proc/$pid ]" 30 || { fail "parked worker $pid never exited"; rc=1; }
	done
	diag "they exited $(($(now_ms) - t0)) ms after the connect began"
	[ "$(unit_count ') after its report')" = "$bad0" ] ||
		{ fail "a parked worker ended badly: $(unit_messages | grep ') after its report' | tail -n 2 | tr '\n' ' ')"; rc=1; }
	disconnect_all
	hooks_off park || rc=1
	return $rc
}

DESC13="systemctl stop: inactive (not failed), 'shutting down' logged, exit status 0, no tlshd process left"
test_13() {
	local rc=0 r state n0 n1 v t0
	disconnect_all
	nfs_cleanup
	n0=$(unit_count 'shutting down')
	n1=$(journalctl SYSLOG_IDENTIFIER=tlshd -o cat --no-pager 2>/dev/null | grep -c 'shutting down')
	t0=$(now_ms)
	systemctl stop "$UNIT" 2>>"$DIAG"
	r=$?
	state=$(systemctl is-active "$UNIT")
	systemctl show -p Result,ExecMainCode,ExecMainStatus "$UNIT" >/tmp/show6 2>>"$DIAG"
	diag "systemctl stop exited $r after $(($(now_ms) - t0)) ms; is-active: $state; $(tr '\n' ' ' </tmp/show6)"
	[ "$r" = 0 ] || { fail "systemctl stop exited $r"; rc=1; }
	[ "$state" = inactive ] || { fail "is-active says '$state', want 'inactive'"; rc=1; }
	# (ExecMainCode=1 is CLD_EXITED: the status is an exit status, not a
	# signal, and not the zero of a unit systemd has forgotten.)
	grep -q '^ExecMainCode=1$' /tmp/show6 || { fail "ExecMainCode is not 1 (exited)"; rc=1; }
	grep -q '^ExecMainStatus=0$' /tmp/show6 || { fail "ExecMainStatus is not 0"; rc=1; }
	grep -q '^Result=success$' /tmp/show6 || { fail "Result is not success"; rc=1; }
	if ! wait_for '[ "$(unit_count "shutting down")" -gt "$n0" ]' 5; then
		fail "no 'shutting down' line in journalctl -u $UNIT"
		rc=1
		[ "$(journalctl SYSLOG_IDENTIFIER=tlshd -o cat --no-pager 2>/dev/null | grep -c 'shutting down')" -gt "$n1" ] &&
			diag "(the line is in the journal with SYSLOG_IDENTIFIER=tlshd, not attributed to $UNIT:" \
				"$(journalctl SYSLOG_IDENTIFIER=tlshd -o verbose --no-pager -n 1 2>/dev/null | grep -E '^ *(_PID|_SYSTEMD_UNIT|_SYSTEMD_CGROUP)=' | tr -s ' \n' ' '))"
	fi
	pidof tlshd >/dev/null && { fail "tlshd processes still running: $(pidof tlshd)"; rc=1; }
	diag "checks done $(($(now_ms) - t0)) ms after the stop"
	return $rc
}

# ------------------------------------------------------------------ main ---

echo
echo "@@GUEST-UP@@ uptime=$(cut -d' ' -f1 /proc/uptime) kernel=$KVER"
# nfsd first: its grace period (no file creation) runs out while the
# NVMe tests run.  Failures are reported by the NFS tests.
t0=$(now_ms)
setup_nfs_server
t0=$(($(now_ms) - t0))
echo "@@TAP-BEGIN@@"
echo "1..13"
echo "# kernel $KVER, systemd $(systemctl --version | awk 'NR == 1 { print $2 }') as PID 1 ($(readlink /proc/1/exe)), tests start at $(cut -d' ' -f1 /proc/uptime) s of uptime, after $t0 ms of NFS server setup ($([ "$NFS_STATE" = ok ] && echo ok || echo FAILED))"
for n in 1 2 3 4 5 6 7 8 9 10 11 12 13; do
	: >"$DIAG"
	t0=$(now_ms)
	eval "desc=\$DESC$n"
	SKIP_REASON=
	if "test_$n"; then res=ok; else res="not ok"; fi
	[ "$res" = ok ] || { dump_state; nfs_cleanup; }
	echo "$res $n - [$KLABEL] $desc${SKIP_REASON:+ # SKIP $SKIP_REASON}"
	echo "# test $n took $(($(now_ms) - t0)) ms"
	sed -e '/^$/d' -e 's/^/#   /' "$DIAG"
done
disconnect_all
echo "@@TAP-END@@"
echo "@@GUEST-DONE@@ uptime=$(cut -d' ' -f1 /proc/uptime)"

echo "@@DAEMON-LOG-BEGIN@@"
journalctl -b --no-pager -o short-monotonic 2>&1
echo "@@DAEMON-LOG-END@@"
echo "@@DMESG-BEGIN@@"
dmesg | grep -i -E 'nvme|tls|handshake|keyring|bpf|seccomp|bug|warn|oops|panic|call trace|segfault' | tail -n 150
echo "@@DMESG-END@@"
exit 0
