# fixture-load.sh: hostile and heavy load for guest/scenarios.sh (busybox
# sh; sourced after lib.sh, fixture-daemon.sh, fixture-nvme.sh and
# fixture-nfs.sh, never run): peers that open the NVMe/TCP target's port or
# nfsd's and then misbehave, the daemon's workers and its parent's
# resources, and the kernel's own count of handshake requests (tracepoints
# under fixture-nfs.sh's $TRACE).
#
# peer and its variants add to PEERS; parent_sample sets RSS_KB, FDS and OWN_FDS.

# What the peers send (printf escapes, octal for busybox and POSIX alike).
# A TLS handshake record header announcing 512 bytes, none of which follow.
TLS_RECORD_HEADER='\026\003\001\002\000'
# The start of a ClientHello record (type, legacy version, length 200;
# handshake type 1, length 196, client version TLS 1.2) and random bytes.
CLIENT_HELLO_START='\026\003\001\000\310\001\000\000\304\003\003\132\245\017\360\063\314\125\252\001\002\003\004\005\006\007\010'
# A warning alert (level 1) user_canceled (90), TLS 1.2 record version.
WARNING_ALERT='\025\003\003\000\002\001\132'
# An RPC call of NFSv4 NULL with an AUTH_TLS credential (RFC 9289), the
# probe that makes nfsd ask for a server handshake: record mark (last
# fragment, 40 bytes), xid, CALL, RPC version 2, program 100003, version 4,
# procedure 0, credential AUTH_TLS (7) empty, verifier AUTH_NONE empty.
RPC_TLS_PROBE='\200\000\000\050\164\154\163\150\000\000\000\000\000\000\000\002\000\001\206\243\000\000\000\004\000\000\000\000\000\000\000\007\000\000\000\000\000\000\000\000\000\000\000\000'
NFS_PORT=2049

# ----------------------------------------------------------------- peers ---
# A peer is busybox nc connected to 127.0.0.1:PORT that runs a shell
# snippet with the socket as its stdin and stdout (nc -e; the pid stays
# nc's).  It holds the connection open until it is killed (kill_peers).

PEERS=

# peer PORT SNIPPET [ARGS...]: start a peer (in the background).
peer() {
	local port=$1
	shift
	nc 127.0.0.1 "$port" -e sh -c "$@" >/dev/null 2>&1 </dev/null &
	PEERS="$PEERS $!"
}

# peer_stall PORT: a TLS record header, then nothing.
peer_stall() { peer "$1" 'printf "$1"; exec sleep 600' _ "$TLS_RECORD_HEADER"; }

# peer_nfs_stall: the AUTH_TLS probe to nfsd and, once it has answered
# (0.5 s), a TLS record header, then nothing.
peer_nfs_stall() {
	peer "$NFS_PORT" 'printf "$1"; sleep 0.5; printf "$2"; exec sleep 600' _ \
		"$RPC_TLS_PROBE" "$TLS_RECORD_HEADER"
}

# peer_trickle PORT: the start of a ClientHello, one byte every 0.5 s.
peer_trickle() {
	peer "$1" 'for b in $(printf "$1" | od -An -to1); do printf "\\$b"; sleep 0.5; done
		exec sleep 600' _ "$CLIENT_HELLO_START"
}

# peer_alerts PORT: warning alerts, 20 a second, for as long as the
# connection takes them.
peer_alerts() { peer "$1" 'while printf "$1"; do sleep 0.05; done 2>/dev/null' _ "$WARNING_ALERT"; }

# peer_garbage PORT: an HTTP request instead of a ClientHello.
peer_garbage() { peer "$1" 'printf "GET / HTTP/1.0\r\n\r\n"; exec sleep 600'; }

kill_peers() {
	[ -n "$PEERS" ] && kill $PEERS 2>/dev/null
	PEERS=
}

# ------------------------------------------------------------- the daemon ---

# The daemon's workers serving a request now (its child processes, less
# idle spares and the key holder).
workers() {
	local f n=0
	for f in $(grep -l "^PPid:[[:space:]]*$DAEMON_PID\$" /proc/[0-9]*/status 2>/dev/null); do
		# (Idle spares, forked ahead of requests, are not serving.)
		grep -qE '^Name:[[:space:]]*tlshd-(spare|keys)$' "$f" 2>/dev/null || n=$((n + 1))
	done
	echo "$n"
}

# stall_workers N SNIPPET: start N peers with the shell SNIPPET (e.g.
# "peer_stall $PORT"), one at a time, each once the previous one's request
# was accepted by a worker (the kernel's handshake_cmd_accept events, which
# hs_trace_on enables: a count of the daemon's children would drop as
# earlier stalled workers reach their deadline; up to 10 s each, for a
# loaded host, usually well under a second): a burst would mostly meet the
# kernel's cap on pending requests instead.  Fails unless all N got one.
stall_workers() {
	local base i=0
	# (Tracing on, without clearing what a scenario already counts.)
	[ -d "$TRACE/events" ] || mount -t tracefs tracefs "$TRACE" 2>/dev/null
	echo 1 >"$TRACE/events/handshake/handshake_cmd_accept/enable" 2>/dev/null ||
		{ fail "no handshake tracepoints to count accepted requests"; return 1; }
	base=$(hs_events handshake_cmd_accept)
	while [ "$i" -lt "$1" ]; do
		eval "$2"
		wait_for '[ "$(hs_events handshake_cmd_accept)" -gt "$((base + i))" ]' 10 || break
		i=$((i + 1))
	done
	[ "$i" = "$1" ] || { fail "only $i of $1 peers ($2) got a worker"; return 1; }
}

# wait_workers_gone SECONDS: wait until the daemon has no worker.
wait_workers_gone() {
	wait_for '[ "$(workers)" = 0 ]' "$1" ||
		{ fail "$(workers) worker(s) still running after $1 s"; return 1; }
}

# log_durations MARK ERE: "N MIN MAX", the count and the least and
# greatest duration_ms of the matching log lines after MARK ("0 0 0" for
# none).
log_durations() {
	log_grep "$1" "$2" | sed -n 's/.* duration_ms=\([0-9]*\).*/\1/p' |
		awk 'NR == 1 { lo = hi = $1 } $1 < lo { lo = $1 } $1 > hi { hi = $1 }
			END { printf "%d %d %d\n", NR, lo, hi }'
}

# need_failures MARK ERE COUNT MAX_MS WHAT: at least COUNT "handshake
# failed" lines after MARK match ERE (waiting up to 5 s for them), none
# took longer than MAX_MS; a diagnostic line with their durations.
need_failures() {
	local nf_mark=$1 nf_ere="handshake failed: $2" nf_want=$3
	wait_for '[ "$(log_grep "$nf_mark" "$nf_ere" | wc -l)" -ge "$nf_want" ]' 5
	set -- $(log_durations "$nf_mark" "$nf_ere") "$3" "$4" "$5"
	diag "$6: $1 failed in $2-$3 ms"
	[ "$1" -ge "$4" ] || { fail "$6: $1 failed handshake(s) logged, want $4 ('$nf_ere')"; return 1; }
	[ "$3" -le "$5" ] || { fail "$6: a worker took $3 ms (limit $5)"; return 1; }
}

# errno_tally MARK: the failed handshakes after MARK by errno and reason.
errno_tally() {
	log_grep "$1" 'handshake failed' | sed -n 's/.* errno=\([^ ]*\) reason=\(.*\) duration_ms=.*/\1 (\2)/p' |
		sort | uniq -c | sed 's/^ *//' | tr '\n' ';' | sed 's/;$//; s/;/; /g'
}

# The daemon's idle spares (the parent keeps a socket to each).
spares() { children "$DAEMON_PID" tlshd-spare | wc -l; }

# parent_sample: the daemon parent's resident set (RSS_KB), open file
# descriptors (FDS) and, of those, the ones not kept for an idle spare
# (OWN_FDS), the pool's size following the load. Taken once no worker
# serves and the spares and fds have held still for 0.3 s (up to 5 s),
# as exiting workers and retiring spares close their sockets.
parent_sample() {
	local prev= now tries=0
	while :; do
		now="$(workers) $(spares) $(ls "/proc/$DAEMON_PID/fd" | wc -l)"
		[ "$now" = "$prev" ] && [ "${now%% *}" = 0 ] && break
		tries=$((tries + 1))
		[ "$tries" -lt 17 ] ||
			{ diag "the parent never settled (workers, spares, fds: $now)"; break; }
		prev=$now
		sleep 0.3
	done
	set -- $now
	RSS_KB=$(awk '$1 == "VmRSS:" { print $2 }' "/proc/$DAEMON_PID/status")
	FDS=$3 OWN_FDS=$(($3 - $2))
}

# ------------------------------------------------ the kernel's handshakes ---
# The handshake tracepoints (net/handshake/trace): requests submitted,
# refused, accepted by a worker, completed.

hs_trace_on() {
	[ -d "$TRACE/events" ] || mount -t tracefs tracefs "$TRACE" 2>/dev/null
	[ -w "$TRACE/events/handshake/enable" ] || return 1
	echo 1 >"$TRACE/events/handshake/enable" && : >"$TRACE/trace"
}

# hs_events EVENT: how many EVENT (e.g. handshake_submit) are in the trace.
hs_events() {
	local n
	n=$(grep -c " $1: " "$TRACE/trace" 2>/dev/null)
	echo "${n:-0}"
}

# hs_requests: requests submitted or refused so far.
hs_requests() { echo $(($(hs_events handshake_submit) + $(hs_events handshake_submit_err))); }

# hs_tally: "submit=N submit_err=N accept=N complete=N cancel=N".
hs_tally() {
	local e out=
	for e in submit submit_err cmd_accept complete cancel; do
		out="$out ${e#cmd_}=$(hs_events "handshake_$e")"
	done
	echo "${out# }"
}

# The kernel's cap on pending (not yet accepted) requests in this net
# namespace: total RAM / (25 * PAGE_SIZE) pages, i.e. one per 400 MiB,
# clamped to 3..50 (net/handshake/netlink.c).
hs_pending_max() {
	awk '$1 == "MemTotal:" { n = int($2 / 409600); print (n < 3 ? 3 : n > 50 ? 50 : n) }' /proc/meminfo
}
