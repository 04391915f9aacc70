# fixture-daemon.sh: the daemon under test for guest/scenarios.sh (busybox
# sh; sourced after lib.sh, never run): its configuration profiles, start
# and stop, and the assertions on its log and on the kernel's.
#
# start_daemon sets DAEMON_PID and DAEMON_PROFILE; stop_daemon sets
# DAEMON_STATUS.

TLSHD=/usr/sbin/tlshd
TLSHD_LOG=/tmp/tlshd.log
TLSHD_CONF=/etc/tlshd.conf
PKI=/etc/tlshd
# How long start_daemon waits for the daemon's ready line.  Start-up runs
# one handshake in process (the warm-up) and, for X.509, starts the key
# holder: 0.3 to 1 s alone under TCG, but up to 2.5 s for the warm-up
# alone while make -j2 check runs four VMs on two cores.
DAEMON_READY_SECS=20

# ------------------------------------------------------------ daemon log ---
# A mark is the log's line count taken before a step (log_mark); the
# helpers below look at the lines logged after it.

# Number of lines in a file (0 if missing).
lines_of() { if [ -f "$1" ]; then wc -l <"$1"; else echo 0; fi; }

log_mark() { lines_of "$TLSHD_LOG"; }
log_since() { tail -n +"$(($1 + 1))" "$TLSHD_LOG" 2>/dev/null; }
# log_count MARK BRE: how many lines after MARK match.
log_count() { log_since "$1" | grep -c -e "$2"; }
# log_grep MARK ERE: the lines after MARK that match.
log_grep() { log_since "$1" | grep -E "$2"; }

# log_wait MARK BRE SECONDS [COUNT]: wait until at least COUNT (default 1)
# lines after MARK match.
log_wait() {
	local lw_mark=$1 lw_pat=$2 lw_want=${4:-1}
	wait_for '[ "$(log_count "$lw_mark" "$lw_pat")" -ge "$lw_want" ]' "$3"
}

# need_log MARK BRE [COUNT [SECONDS]]: require at least COUNT (default 1)
# lines after MARK matching BRE, waiting up to SECONDS (default 5) for them.
need_log() {
	log_wait "$1" "$2" "${4:-5}" "${3:-1}" ||
		{ fail "fewer than ${3:-1} '$2' line(s) in the daemon log"; return 1; }
}

# need_handshakes MARK CLIENT SERVER [COUNT]: require at least COUNT
# (default 1) successful client and server handshakes after MARK, their
# log lines going on with CLIENT and SERVER ("auth=psk", ...).
need_handshakes() {
	local nh_rc=0
	need_log "$1" "handshake succeeded: role=client $2" "${4:-1}" || nh_rc=1
	need_log "$1" "handshake succeeded: role=server $3" "${4:-1}" || nh_rc=1
	return $nh_rc
}

# need_no_log MARK BRE: require that no line after MARK matches.
need_no_log() {
	local n
	n=$(log_count "$1" "$2")
	[ "$n" = 0 ] || { fail "$n '$2' line(s) in the daemon log"; return 1; }
}

# Daemon log lines for the diagnostics, without the "tlshd[pid]: " prefix.
daemon_lines() { sed 's/^tlshd\[[0-9]*\]: //' | head -n "${1:-6}"; }

# log_diag MARK ERE [N]: the first N (default 6) matching lines after MARK
# as diagnostics.
log_diag() { diag "$(log_grep "$1" "$2" | daemon_lines "${3:-6}")"; }

# handshake_tally MARK: a diagnostic line counting the handshakes logged
# after MARK, and their ciphers.
handshake_tally() {
	diag "handshakes logged: $(log_count "$1" 'handshake succeeded: role=client') client ok, $(log_count "$1" 'handshake succeeded: role=server') server ok, $(log_count "$1" 'handshake failed') failed; $(log_since "$1" | grep -o 'cipher=[^ ]*' | sort | uniq -c | tr -s ' \n' ' ')"
}

# ------------------------------------------------------------ kernel log ---

dmesg_mark() { dmesg | wc -l; }
dmesg_after() { dmesg | tail -n +"$(($1 + 1))"; }
# Kernel messages after a mark that are worth showing.
dmesg_since() {
	dmesg_after "$1" |
		grep -i -E 'nvme|nfs|rpc|svc|tls|handshake|key|bug|warn|oops|panic|call trace|error|unknown' | tail -n 40
}

# ------------------------------------------------------------ the daemon ---

DAEMON_PID=
DAEMON_PROFILE=
# Test hooks for the next start_daemon ($TLSHD_TEST_HOOKS, src/util.h): a
# daemon running with other hooks is restarted.
DAEMON_HOOKS=

# Whether the daemon under test was built with test hooks.
daemon_has_hooks() { "$TLSHD" -v 2>/dev/null | grep -q 'built with test hooks'; }

# The daemon's key holder (its child named tlshd-keys), if any.
holder_pid() {
	local p
	p=$(children "$DAEMON_PID" tlshd-keys | head -n 1)
	[ -n "$p" ] && echo "$p"
}

daemon_running() {
	[ -n "$DAEMON_PID" ] || return 1
	kill -0 "$DAEMON_PID" 2>/dev/null || return 1
	# A zombie still answers kill -0.
	[ "$(awk '{ print $3 }' "/proc/$DAEMON_PID/stat" 2>/dev/null)" != Z ]
}

# daemon_ready MARK: the daemon (DAEMON_PID) logged its ready line after
# MARK: "tlshd[PID]: tlshd VERSION ready: serving TLS handshakes for kernel
# consumers", which it logs once it has joined the handshake multicast
# group (src/main.c).
daemon_ready() {
	log_since "$1" |
		grep -q "^tlshd\[$DAEMON_PID\]: tlshd [^ ]* ready: serving TLS handshakes for kernel consumers\$"
}

# Configuration profiles:
#   psk          [debug] only (the NVMe scenarios: PSKs come from keyrings)
#   x509         client and server X.509 credentials (test CA in /etc/tlshd)
#   x509-nocert  the same without a client certificate: an mtls client
#                handshake can only use one the kernel names (keyring)
write_config() {
	printf '[debug]\nloglevel=1\n' >"$TLSHD_CONF"
	case $1 in
	x509|x509-nocert)
		printf '[authenticate.client]\nx509.truststore=%s/ca.pem\n' "$PKI" >>"$TLSHD_CONF"
		[ "$1" = x509 ] &&
			printf 'x509.certificate=%s/client.pem\nx509.private_key=%s/client.key\n' "$PKI" "$PKI" >>"$TLSHD_CONF"
		printf '[authenticate.server]\nx509.truststore=%s/ca.pem\nx509.certificate=%s/server.pem\nx509.private_key=%s/server.key\n' \
			"$PKI" "$PKI" "$PKI" >>"$TLSHD_CONF"
		;;
	esac
}

# Stop the daemon (if running): SIGTERM, SIGKILL after 5 s.  Sets
# DAEMON_STATUS to its exit status; fails if it needed the SIGKILL.
stop_daemon() {
	local rc=0
	daemon_running || { DAEMON_PID=; return 0; }
	kill "$DAEMON_PID"
	if ! wait_for '! daemon_running' 5; then
		fail "tlshd did not exit within 5 s of SIGTERM; sending SIGKILL"
		kill -9 "$DAEMON_PID"
		rc=1
	fi
	wait "$DAEMON_PID"
	DAEMON_STATUS=$?
	DAEMON_PID=
	return $rc
}

# start_daemon [PROFILE]: start tlshd with that configuration (default psk)
# and DAEMON_HOOKS, and wait (up to DAEMON_READY_SECS) for its ready line;
# a daemon running with another profile or other hooks is restarted.
start_daemon() {
	local profile=${1:-psk} sd_mark
	[ -z "$DAEMON_HOOKS" ] || profile="$profile+$DAEMON_HOOKS"
	if daemon_running; then
		[ "$DAEMON_PROFILE" = "$profile" ] && return 0
		stop_daemon
		diag "tlshd restarted with configuration profile '$profile'"
	fi
	[ -x "$TLSHD" ] || { fail "no tlshd binary in the initramfs"; return 1; }
	write_config "${profile%%+*}"
	DAEMON_PROFILE=$profile
	sd_mark=$(log_mark)
	TLSHD_TEST_HOOKS=$DAEMON_HOOKS "$TLSHD" -s -c "$TLSHD_CONF" 2>>"$TLSHD_LOG" </dev/null &
	DAEMON_PID=$!
	wait_for 'daemon_ready "$sd_mark" || ! daemon_running' "$DAEMON_READY_SECS"
	if daemon_running; then
		daemon_ready "$sd_mark" && return 0
		fail "tlshd (pid $DAEMON_PID) did not log its ready line within $DAEMON_READY_SECS s: $(log_since "$sd_mark" | daemon_lines 3 | tr '\n' ' ')"
		stop_daemon
		return 1
	fi
	if daemon_ready "$sd_mark"; then
		wait "$DAEMON_PID"
		fail "tlshd died right after startup, exit status $?"
	else
		wait "$DAEMON_PID"
		fail "tlshd exited at startup with status $?: $(log_since "$sd_mark" | daemon_lines 3 | tr '\n' ' ')"
	fi
	DAEMON_PID=
	return 1
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

# no_daemon: stop the daemon and make sure that no tlshd process (e.g. a
# handshake worker) is left.
no_daemon() {
	local rc=0
	if daemon_running; then
		stop_daemon || rc=1
		diag "tlshd exited with status $DAEMON_STATUS"
	fi
	wait_for '! pidof tlshd >/dev/null' 5 ||
		{ fail "tlshd processes still running: $(pidof tlshd)"; return 1; }
	return $rc
}
