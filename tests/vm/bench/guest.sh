#!/bin/bash
# Guest side of tools/bench.sh: runs in a Debian 13 user space (mkroot.sh's
# "bench" image) with its systemd as PID 1, as the oneshot unit
# tlshd-bench-run.service (stdout on the serial console), and measures the
# three handshake agents one at a time, in alternating order, against the
# kernel's NVMe/TCP host and target over 127.0.0.1:
#   tlshd   this tree's daemon (/opt/tlshd), under its own shipped unit
#           (installed here as tlshd-bench.service)
#   ktls    Debian's ktls-utils tlshd, under its packaged tlshd.service
#   alt     with tools/bench.sh --alt DIR: that tree's tlshd (/opt/tlshd-alt)
#           under its own unit, in the latency rounds and the storm
#   floor   bench/tlshd-floor: a bare GnuTLS PSK handshake between two
#           processes (one fork, one socketpair), no kernel in the loop,
#           one after the other: what a handshake costs without queueing;
#           then the same over TCP on 127.0.0.1 (tlshd-floor -t), and over
#           TCP between two pre-forked processes (tlshd-floor -t -p:
#           tlshd's process model), reported beside it for information
#
# Parts (PARTS in bench.env, in this order):
#   latency     ROUNDS rounds; in each, every agent in turn (the order
#               rotates): CONTROLLERS controllers with 4 queues each
#               connected at once, then disconnected; the latency of every
#               request from the entry of the kernel's handshake_req_submit()
#               (a kprobe, see trace_on) to handshake:handshake_complete
#               (floor: its own clock); tlshd's phases from its journal
#               fields (TLSHD_US_*)
#   serial      the same with one controller at a time: a request's cost
#               with no other in flight
#   storm       STORM controllers connected, then all reset at once: time
#               until every one is live again, refusals
#               (handshake:handshake_submit_err), failed handshakes, latency
#   memory      the agent's idle PSS after serving, and what one worker in
#               a handshake adds (its PSS and private memory)
#   throughput  64 MiB read with O_DIRECT over one controller, per agent
#               and cipher (under TCG: indicative only)
#   keyholder   bench/tlshd-keybench: what signing through the key holder
#               costs one X.509 server handshake of the engine (ECDSA
#               P-256 and RSA-2048 keys; in process and held, alternating)
#   profile     one tlshd round under perf record -a
#   timeline    one serial tlshd round under sched_switch: who had the CPU
#               while each request waited
#
# Output between @@TAP-BEGIN@@ and @@TAP-END@@ (run-vm.sh relays it): the
# report, "ok"/"not ok" lines for what must hold (every connect and reset
# succeeds), "#" lines for figures.  Then the journal between
# @@DAEMON-LOG-BEGIN@@ and @@DAEMON-LOG-END@@.

LIBEXEC=/usr/libexec/tlshd-vm
# ROUNDS CONTROLLERS STORM PARTS MSGID_OK RECONNECT_DELAY
. "$LIBEXEC/bench.env"

export PATH=/usr/sbin:/usr/bin:/sbin:/bin
export LC_ALL=C SYSTEMD_COLORS=0 SYSTEMD_PAGER=cat HOME=/root
KVER=$(uname -r)
CFS=/sys/kernel/config/nvmet
SUBNQN=nqn.2024-01.org.example.tlshd:bench
PORT=4420
DIAG=/run/tlshd-bench/diag
TRACE=/sys/kernel/tracing
OUT=/run/tlshd-bench
FLOOR=/usr/src/tlshd-build/bench/tlshd-floor
KEYBENCH=/usr/src/tlshd-build/bench/tlshd-keybench
# 1 admin + 3 I/O queues per controller on one vCPU (nvme-tcp caps each
# kind of I/O queue at the number of CPUs).
QUEUES=nr_io_queues=1,nr_write_queues=1,nr_poll_queues=1
declare -A UNIT=([tlshd]=tlshd-bench.service [ktls]=tlshd.service [alt]=tlshd-alt-bench.service)
declare -A NAME=([tlshd]="tlshd" [ktls]="ktls-utils" [floor]="floor" [alt]="tlshd-alt")
# The agents of the latency rounds: with --alt, a second build of tlshd
# (/opt/tlshd-alt) takes turns with the others, for a change measured
# against the tree in the same boot.
AGENTS="tlshd ktls floor"
[ "${ALT:-0}" = 0 ] || AGENTS="tlshd alt ktls floor"

# diag, fail, now_ms, wait_for, new_uuid, nvmet_setup, new_host,
# nvme_connect, wait_ns, disconnect_all (shared with the test guests).
. "$LIBEXEC/lib.sh"

mkdir -p "$OUT"
TAPN=0
ok() { TAPN=$((TAPN + 1)); echo "ok $TAPN - $*"; }
notok() { TAPN=$((TAPN + 1)); echo "not ok $TAPN - $*"; }
say() { echo "# $*"; }
check() { if [ "$1" = 0 ]; then ok "$2"; else notok "$2"; sed 's/^/#   /' "$DIAG"; fi; : >"$DIAG"; }

# ---------------------------------------------------------------- agents ---
agent_start() {
	systemctl start "${UNIT[$1]}" 2>>"$DIAG" || { fail "systemctl start ${UNIT[$1]}"; return 1; }
	# (ktls-utils' unit is Type=simple: give it time to join the group.)
	[ "$1" = tlshd ] || [ "$1" = alt ] || sleep 1
	[ "$(systemctl is-active "${UNIT[$1]}")" = active ] || { fail "${UNIT[$1]} not active"; return 1; }
	agent_settle "$1"
}
# agent_settle AGENT: until the unit has done what it does after start-up
# (tlshd forks its spares, which make themselves ready): its CPU time
# grows by less than 2 ms in half a second, for 10 s at most. The
# rounds measure agents that run already, as they do when a consumer
# asks, not their start.
agent_settle() {
	local cg="system.slice/${UNIT[$1]}" a b i
	for i in $(seq 20); do
		a=$(cg_usec "$cg")
		sleep 0.5
		b=$(cg_usec "$cg")
		[ $((b - a)) -ge 2000 ] || return 0
	done
	diag "${UNIT[$1]} still busy 10 s after its start"
}
agent_stop() { systemctl stop "${UNIT[$1]}" 2>>"$DIAG"; }
agent_pid() { systemctl show -p MainPID --value "${UNIT[$1]}"; }

# ----------------------------------------------------------------- trace ---
# A request starts when its consumer calls handshake_req_submit(): the
# handshake:handshake_submit tracepoint fires at its end, after the READY
# notification, and an agent that preempts the consumer there (a parent
# in the real-time class, or one woken at a high nice on a preemptible
# kernel) has ACCEPTed, dispatched and forked before it: that work would
# fall outside the measured latency. A kprobe at the function's entry
# (hs_entry) records the consumer's socket; the kernel runs with
# no_hash_pointers (tools/bench.sh), so that the tracepoints print the
# same address. Without kprobes, the tracepoint is the start.
trace_on() {
	[ -d "$TRACE/events" ] || mount -t tracefs tracefs "$TRACE" || return 1
	echo 8192 >"$TRACE/buffer_size_kb"
	if echo 'p:tlshd_bench/hs_entry handshake_req_submit sk=sock->sk:x64' >>"$TRACE/kprobe_events" 2>/dev/null ||
		echo 'p:tlshd_bench/hs_entry handshake_req_submit sk=+24(%di):x64' >>"$TRACE/kprobe_events" 2>/dev/null; then
		echo 1 >"$TRACE/events/tlshd_bench/hs_entry/enable"
		HS_START="handshake_req_submit() entry (kprobe, $(sed -n 's/.*hs_entry handshake_req_submit //p' "$TRACE/kprobe_events"))"
	else
		HS_START="handshake:handshake_submit (no kprobe: an agent that ACCEPTs before it fires is favoured)"
	fi
	echo 1 >"$TRACE/events/handshake/enable" && : >"$TRACE/trace"
}
trace_take() { cat "$TRACE/trace" >"$1"; : >"$TRACE/trace"; }

# TRACE_SK: awk code setting sk from a trace line's "sk=" field, the same
# for the kprobe (0x-prefixed) and the tracepoints.
TRACE_SK='
function trace_sk(  j, v) {
	for (j = 1; j <= NF; j++) if ($j ~ /^sk=/) { v = tolower(substr($j, 4)); sub(/^0x/, "", v); sub(/^0+/, "", v); return v }
	return ""
}'

# requests TRACE_FILE: one line per request submitted and completed:
# "LATENCY_US ACCEPT_US STATUS" (submit->complete, submit->ACCEPT), the
# start being the kprobe's when there is one (see trace_on).
requests() {
	awk "$TRACE_SK"'{
		ts = ""; ev = ""; st = ""
		for (i = 1; i <= NF; i++) {
			if (ts == "" && $i ~ /^[0-9]+\.[0-9]+:$/) { ts = substr($i, 1, length($i) - 1); ev = $(i + 1) }
			if ($i ~ /^status=/) st = substr($i, 8)
		}
		sk = trace_sk()
		if (ts == "" || sk == "") next
		us = ts * 1000000
		if (ev == "hs_entry:") { ent_t[sk] = us; delete early[sk] }
		else if (ev == "handshake_submit_err:") delete ent_t[sk]
		else if (ev == "handshake_submit:") {
			sub_t[sk] = sk in ent_t ? ent_t[sk] : us
			acc_t[sk] = sk in early ? early[sk] : ""
			delete ent_t[sk]; delete early[sk]
		}
		# (An ACCEPT between the entry and the tracepoint.)
		else if (ev == "handshake_cmd_accept:" && sk in ent_t) early[sk] = us
		else if (ev == "handshake_cmd_accept:" && sk in sub_t) acc_t[sk] = us
		else if (ev == "handshake_complete:" && sk in sub_t) {
			printf "%d %d %s\n", us - sub_t[sk], acc_t[sk] == "" ? -1 : acc_t[sk] - sub_t[sk], st
			delete sub_t[sk]
		}
	}' "$1"
}
events() { grep -c " $2: " "$1"; }

# stats FILE [COLUMN]: "n=N median=M p90=P min max" of microsecond values,
# printed in ms.
stats() {
	awk -v c="${2:-1}" '$c >= 0 { print $c }' "$1" | sort -n | awk '
		{ v[NR] = $1 }
		END {
			if (NR == 0) { print "n=0"; exit }
			m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
			p = v[int(NR * 0.9 + 0.999999)]
			printf "n=%d median=%.1f p90=%.1f min=%.1f max=%.1f ms\n", NR, m / 1000, p / 1000, v[1] / 1000, v[NR] / 1000
		}'
}
# median FILE: the median in ms, bare.
median() { stats "$1" | sed -n 's/.*median=\([0-9.]*\).*/\1/p'; }
p90() { stats "$1" | sed -n 's/.*p90=\([0-9.]*\).*/\1/p'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "?" }'; }

# per_round A B: the ratio of A's median latency to B's in each round of
# the last set (req.AGENT.ROUND), then the median of those. The rounds
# alternate the agents, so a machine whose speed drifts during the run
# (TCG shares the host's cores) moves both sides of each ratio alike.
per_round() {
	local r all=
	for r in $(seq 1 "$ROUNDS"); do
		all="$all $(ratio "$(median "$OUT/req.$1.$r")" "$(median "$OUT/req.$2.$r")")"
	done
	echo "${all# } (median $(echo "$all" | tr ' ' '\n' | grep -v '^$' | sort -n |
		awk '{ v[NR] = $1 } END { printf "%.2f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'))"
}

# ------------------------------------------------------------ controllers ---
# connect_one HOSTNQN HOSTID: one controller through /dev/nvme-fabrics with
# bash builtins only (no process of its own to compete with the agents);
# sets CTRL or CONNECT_ERR.
connect_one() {
	local line
	CTRL='' CONNECT_ERR=''
	{
		exec 3<>/dev/nvme-fabrics &&
			printf '%s' "transport=tcp,traddr=127.0.0.1,trsvcid=$PORT,nqn=$SUBNQN,hostnqn=$1,hostid=$2,tls,$QUEUES,reconnect_delay=$RECONNECT_DELAY" >&3 &&
			read -r line <&3
	} 2>"$OUT/connect.err.$BASHPID" || { CONNECT_ERR=$(cat "$OUT/connect.err.$BASHPID"); exec 3>&-; return 1; }
	exec 3>&-
	CTRL=${line#instance=}
	CTRL=${CTRL%%,*}
}

# connect_all N: connect the first N hosts at once (4 queues each); CTRLS
# lists the controllers; fails unless all connected.
connect_all() {
	local i pids=''
	for i in $(seq 1 "$1"); do
		(
			read -r nqn id <"$OUT/host.$i"
			if connect_one "$nqn" "$id"; then
				echo "ok $CTRL" >"$OUT/conn.$i"
			else
				echo "fail $CONNECT_ERR" >"$OUT/conn.$i"
			fi
		) &
		pids="$pids $!"
	done
	wait $pids
	CTRLS=''
	local rc=0
	for i in $(seq 1 "$1"); do
		set -- $(cat "$OUT/conn.$i")
		if [ "$1" = ok ]; then CTRLS="$CTRLS $2"; else fail "connect of host $i: $*"; rc=1; fi
	done
	return $rc
}

# connect_seq N: connect the first N hosts one after the other.
connect_seq() {
	local i nqn id rc=0
	CTRLS=''
	for i in $(seq 1 "$1"); do
		read -r nqn id <"$OUT/host.$i"
		if connect_one "$nqn" "$id"; then CTRLS="$CTRLS $CTRL"; else fail "connect of host $i: $CONNECT_ERR"; rc=1; fi
	done
	return $rc
}

live_count() {
	local c n=0
	for c in $CTRLS; do
		[ "$(cat "/sys/class/nvme/nvme$c/state" 2>/dev/null)" = live ] && n=$((n + 1))
	done
	echo "$n"
}

# -------------------------------------------------------- CPU accounting ---
# CPU time from the cgroups' cpu.stat (microseconds): the whole guest
# (root), the agent's unit (daemon and workers), journald, PID 1, and this
# driver (the connects; the floor runs here).
CG=/sys/fs/cgroup
cg_usec() { awk '$1 == "usage_usec" { print $2 }' "$CG/$1/cpu.stat" 2>/dev/null || echo 0; }
CG_LIST="/ system.slice/UNIT system.slice/systemd-journald.service init.scope system.slice/tlshd-bench-run.service"
cg_sample() {
	local c out=''
	for c in $CG_LIST; do out="$out $(cg_usec "${c/UNIT/$1}")"; done
	echo "$out"
}
# cpu_begin UNIT / cpu_end UNIT AGENT REQUESTS: add this window's CPU
# time to the agent's sums.
cpu_begin() { CPU0=$(cg_sample "$1"); }
cpu_end() {
	echo "$3 $CPU0 $(cg_sample "$1")" >>"$OUT/cpu.$2"
}
# cpu_report AGENT NAME: CPU milliseconds per request.
cpu_report() {
	[ -s "$OUT/cpu.$1" ] || return 0
	awk -v who="$2" '{ n += $1; for (i = 0; i < 5; i++) d[i] += $(i + 7) - $(i + 2) }
		END {
			if (!n) exit
			other = d[0] - d[1] - d[2] - d[3] - d[4]
			printf "%s CPU per request: %.1f ms in all: %s %.1f, journald %.1f, PID 1 %.1f, driver %.1f, kernel threads and the rest %.1f\n",
				who, d[0] / 1000 / n, who, d[1] / 1000 / n, d[2] / 1000 / n, d[3] / 1000 / n, d[4] / 1000 / n, other / 1000 / n
		}' "$OUT/cpu.$1"
}

# ------------------------------------------------------------- latency ---
# round AGENT R [SET]: one latency round; SET "" connects the controllers
# at once, "1" one after the other (results in lat1.*, cpu1.*).
round() {
	local agent=$1 r=$2 set=${3:-} t
	: >"$DIAG"
	if [ "$agent" = floor ]; then
		local frc=0
		cpu_begin none
		"$FLOOR" -n $((CONTROLLERS * 4)) >"$OUT/floor.$r" 2>>"$DIAG" || { fail "tlshd-floor failed"; frc=1; }
		cpu_end none floor$set $((CONTROLLERS * 4 * 2))
		awk '$1 == "floor_us" { print $2, -1, 0 }' "$OUT/floor.$r" >"$OUT/req.floor.$r"
		cat "$OUT/req.floor.$r" >>"$OUT/lat$set.floor"
		FLOOR_CIPHER=$(awk '$1 == "cipher" { print $2 }' "$OUT/floor.$r")
		# (The same over TCP on 127.0.0.1: not counted in the CPU sums.)
		"$FLOOR" -t -n $((CONTROLLERS * 4)) >"$OUT/floortcp.$r" 2>>"$DIAG" || { fail "tlshd-floor -t failed"; frc=1; }
		awk '$1 == "floor_us" { print $2, -1, 0 }' "$OUT/floortcp.$r" >>"$OUT/lat$set.floortcp"
		"$FLOOR" -t -p -n $((CONTROLLERS * 4)) >"$OUT/floorfresh.$r" 2>>"$DIAG" || { fail "tlshd-floor -t -p failed"; frc=1; }
		awk '$1 == "floor_us" { print $2, -1, 0 }' "$OUT/floorfresh.$r" >>"$OUT/lat$set.floorfresh"
		check $frc "round $r floor: $((CONTROLLERS * 4)) bare handshakes, one after the other, over a socketpair, over TCP, and over TCP between pre-forked processes"
		return
	fi
	local rc=0
	agent_start "$agent" || rc=1
	: >"$TRACE/trace"
	cpu_begin "${UNIT[$agent]}"
	if [ "$set" = 1 ]; then
		[ "$rc" = 0 ] && { connect_seq "$CONTROLLERS" || rc=1; }
	else
		[ "$rc" = 0 ] && { connect_all "$CONTROLLERS" || rc=1; }
	fi
	# (Workers exit and are reaped, entries reach the journal.)
	sleep 1
	t=$OUT/trace.$agent.$r
	trace_take "$t"
	requests "$t" >"$OUT/req.$agent.$r"
	cpu_end "${UNIT[$agent]}" "$agent$set" "$(wc -l <"$OUT/req.$agent.$r")"
	disconnect_all
	agent_stop "$agent"
	cat "$OUT/req.$agent.$r" >>"$OUT/lat$set.$agent"
	local bad
	bad=$(awk '$3 != 0' "$OUT/req.$agent.$r" | wc -l)
	[ "$bad" = 0 ] || { fail "$bad request(s) completed with an error"; rc=1; }
	[ "$(events "$t" handshake_submit_err)" = 0 ] || { fail "$(events "$t" handshake_submit_err) request(s) refused"; rc=1; }
	check $rc "round $r ${NAME[$agent]}: $CONTROLLERS controllers x 4 queues ($([ "$set" = 1 ] && echo "one after the other" || echo "at once")), $(wc -l <"$OUT/req.$agent.$r") requests completed"
}

phases() {
	journalctl -u tlshd-bench.service "MESSAGE_ID=$MSGID_OK" -o export --no-pager \
		--output-fields=TLSHD_US_START,TLSHD_US_ACCEPT,TLSHD_US_SETUP,TLSHD_US_HANDSHAKE,TLSHD_US_KTLS,TLSHD_US_DONE,TLSHD_DURATION_MS 2>/dev/null |
		awk -F= -v dir="$OUT" '/^TLSHD_US_/ { n = tolower(substr($1, 10)); print $2 >(dir "/phase." n) }'
	local p
	say "tlshd phases over $(wc -l <"$OUT/phase.handshake" 2>/dev/null || echo 0) handshakes (journal TLSHD_US_*; both roles):"
	for p in start accept setup handshake ktls done; do
		[ -s "$OUT/phase.$p" ] && say "  $(printf '%-10s' "$p") $(stats "$OUT/phase.$p")"
	done
}

# rounds SET: ROUNDS rounds of every agent, the order rotating (SET as for
# round).
rounds() {
	local r a order=($AGENTS)
	for r in $(seq 1 "$ROUNDS"); do
		for a in "${order[@]}"; do round "$a" "$r" "$1"; done
		order=("${order[@]:1}" "${order[0]}")
	done
}

# latency_report SET: each agent's latency, submit -> ACCEPT, the ratios
# the issue sets goals for, and the CPU per request.
latency_report() {
	local set=$1 a tm tp fm fp km cm cp
	for a in $AGENTS; do
		say "  $(printf '%-10s' "${NAME[$a]}") $(stats "$OUT/lat$set.$a")"
	done
	say "submit -> ACCEPT:"
	for a in ${AGENTS% floor}; do
		say "  $(printf '%-10s' "${NAME[$a]}") $(stats "$OUT/lat$set.$a" 2)"
	done
	tm=$(median "$OUT/lat$set.tlshd") tp=$(p90 "$OUT/lat$set.tlshd")
	fm=$(median "$OUT/lat$set.floor") fp=$(p90 "$OUT/lat$set.floor") km=$(median "$OUT/lat$set.ktls")
	say "ratios: tlshd/floor median $(ratio "$tm" "$fm") (goal <= 1.1), p90 $(ratio "$tp" "$fp") (goal <= 1.5); tlshd/ktls-utils median $(ratio "$tm" "$km") (goal <= 0.6)"
	say "per round (medians): tlshd/floor $(per_round tlshd floor); tlshd/ktls-utils $(per_round tlshd ktls)"
	cm=$(median "$OUT/lat$set.floortcp") cp=$(p90 "$OUT/lat$set.floortcp")
	say "informative, not a goal: the floor over TCP on 127.0.0.1 (the kernel's TCP in the loop, as for the agents) $(stats "$OUT/lat$set.floortcp"); floor-tcp/floor median $(ratio "$cm" "$fm"); tlshd/floor-tcp median $(ratio "$tm" "$cm"), p90 $(ratio "$tp" "$cp")"
	cm=$(median "$OUT/lat$set.floorfresh") cp=$(p90 "$OUT/lat$set.floorfresh")
	say "informative, not a goal: the same between two pre-forked processes (tlshd's model: each side a fresh process, its exit after the clock) $(stats "$OUT/lat$set.floorfresh"); floor-fresh/floor median $(ratio "$cm" "$fm"); tlshd/floor-fresh median $(ratio "$tm" "$cm"), p90 $(ratio "$tp" "$cp")"
	[ "${ALT:-0}" = 0 ] || say "tlshd-alt/tlshd: median $(ratio "$(median "$OUT/lat$set.alt")" "$tm"), p90 $(ratio "$(p90 "$OUT/lat$set.alt")" "$tp"); tlshd-alt/ktls-utils median $(ratio "$(median "$OUT/lat$set.alt")" "$km"); per round $(per_round alt tlshd)"
	say "$(cpu_report "tlshd$set" tlshd)"
	[ "${ALT:-0}" = 0 ] || say "$(cpu_report "alt$set" tlshd-alt)"
	say "$(cpu_report "ktls$set" ktls-utils)"
	say "$(cpu_report "floor$set" floor)  (per side: a floor handshake counts as two requests, and the run includes the program's start)"
}

part_latency() {
	say "---- latency: $ROUNDS rounds x (tlshd, ktls-utils, floor), $CONTROLLERS controllers x 4 queues connected at once ----"
	rounds ""
	say "latency, submit -> complete (every request, host and target roles, $CONTROLLERS controllers at once; floor: fork to reap, one at a time):"
	latency_report ""
	say "floor cipher: ${FLOOR_CIPHER:-?}"
	phases
}

# one controller at a time: what a request costs with no other in flight
part_serial() {
	say "---- serial latency: $ROUNDS rounds x (tlshd, ktls-utils, floor), $CONTROLLERS controllers x 4 queues, one controller at a time ----"
	rounds 1
	say "latency, submit -> complete, one controller at a time (floor: one handshake at a time):"
	latency_report 1
}

# --------------------------------------------------------------- storm ---
storm() {
	local agent=$1 rc=0 t0 ms c pids='' t live
	: >"$DIAG"
	agent_start "$agent" || rc=1
	[ "$rc" = 0 ] && { connect_all "$STORM" || rc=1; }
	: >"$TRACE/trace"
	t0=$(date +%s%N)
	for c in $CTRLS; do
		echo 1 >"/sys/class/nvme/nvme$c/reset_controller" 2>/dev/null &
		pids="$pids $!"
	done
	wait $pids
	wait_for '[ "$(live_count)" = "$(echo $CTRLS | wc -w)" ]' 300 || { fail "not every controller is live after 300 s"; rc=1; }
	ms=$((($(date +%s%N) - t0) / 1000000))
	live=$(live_count)
	t=$OUT/storm.$agent
	trace_take "$t"
	# (tlshd's own count of what its workers did, on SIGUSR2. After a
	# storm journald can be far behind: the agent's entries are read
	# once this line has reached the journal, which comes after them.)
	if [ "$agent" != ktls ]; then
		systemctl kill -s USR2 "${UNIT[$agent]}"
		wait_for 'sleep 1; journalctl -u "${UNIT[$agent]}" -o cat --no-pager | grep -q "handshake(s) in flight"' 120 ||
			say "  (tlshd's SIGUSR2 line is not in the journal after 120 s)"
	fi
	disconnect_all
	agent_stop "$agent"
	requests "$t" >"$OUT/sreq.$agent"
	local n refused failed
	n=$(wc -l <"$OUT/sreq.$agent")
	refused=$(events "$t" handshake_submit_err)
	failed=$(awk '$3 != 0' "$OUT/sreq.$agent" | wc -l)
	say "storm ${NAME[$agent]}: $live/$(echo $CTRLS | wc -w) live ${ms} ms after the reset; $n handshakes completed ($(awk -v n="$n" -v ms="$ms" 'BEGIN { printf "%.1f", ms ? n * 1000 / ms : 0 }')/s), $failed failed, $refused refused (submit_err)"
	say "  latency $(stats "$OUT/sreq.$agent")"
	say "  completion status (kernel): $(awk '{ print $3 }' "$OUT/sreq.$agent" | sort | uniq -c | sort -rn | awk '{ printf "%s x%s, ", $2, $1 }')"
	if [ "$agent" != ktls ]; then
		say "  ${NAME[$agent]}: $(journalctl -u "${UNIT[$agent]}" -o cat --no-pager | grep 'handshake(s) in flight' | tail -n 1)"
		say "  ${NAME[$agent]} failures by errno and reason:"
		journalctl -u "${UNIT[$agent]}" -o cat --no-pager | sed -n 's/^handshake failed: .* errno=\([A-Z]*\) reason=\(.*\) duration_ms=.*/\1 \2/p' |
			sed -E 's/[0-9]+(\.[0-9]+)?/N/g' | sort | uniq -c | sort -rn | head -n 8 | sed 's/^/#     /'
	else
		say "  ktls-utils failures: $(journalctl -u "${UNIT[$agent]}" -o cat --no-pager | grep -c -i 'failed')"
		journalctl -u "${UNIT[$agent]}" -o cat --no-pager | grep -i -E 'fail|error' | sed -E 's/[0-9]+/N/g' | sort | uniq -c | sort -rn | head -n 6 | sed 's/^/#     /'
	fi
	STORM_MS[$agent]=$ms STORM_REFUSED[$agent]=$refused
	check $rc "storm ${NAME[$agent]}: $STORM controllers reset at once, all live again"
}

part_storm() {
	declare -gA STORM_MS STORM_REFUSED
	say "---- storm: $STORM controllers x 4 queues reset at once; pending cap $(hs_cap) (RAM $(awk '$1 == "MemTotal:" { printf "%d MiB", $2 / 1024 }' /proc/meminfo)); reconnect_delay=$RECONNECT_DELAY ----"
	storm tlshd
	[ "${ALT:-0}" = 0 ] || storm alt
	storm ktls
	say "storm ratio: ktls-utils/tlshd time to all live $(ratio "${STORM_MS[ktls]}" "${STORM_MS[tlshd]}") (goal >= 1.5); refusals tlshd ${STORM_REFUSED[tlshd]}, ktls-utils ${STORM_REFUSED[ktls]}"
	[ "${ALT:-0}" = 0 ] || say "storm tlshd-alt/tlshd time to all live $(ratio "${STORM_MS[alt]}" "${STORM_MS[tlshd]}"); refusals tlshd-alt ${STORM_REFUSED[alt]}"
}

hs_cap() {
	awk '$1 == "MemTotal:" { n = int($2 / 409600); print (n < 3 ? 3 : n > 50 ? 50 : n) }' /proc/meminfo
}

# -------------------------------------------------------------- memory ---
# kB of a smaps_rollup field.
smaps() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/smaps_rollup" 2>/dev/null; }

# pss_by_mapping PID: the largest PSS by mapped file (anonymous memory as
# [anon]), "name=kB" pairs.
pss_by_mapping() {
	awk '/^[0-9a-f]+-[0-9a-f]+ / { n = NF >= 6 ? $6 : "[anon]"; sub(/.*\//, "", n); next }
		$1 == "Pss:" { pss[n] += $2 }
		END { for (k in pss) if (pss[k] > 0) print pss[k], k }' "/proc/$1/smaps" 2>/dev/null |
		sort -rn | head -n 8 | awk '{ printf "%s=%s ", $2, $1 }'
}

# unit_pss UNIT: PSS of every process of the unit, in kB.
unit_pss() {
	local p t=0 v
	for p in $(cat "$CG/system.slice/$1/cgroup.procs" 2>/dev/null); do
		v=$(smaps "$p" Pss)
		t=$((t + ${v:-0}))
	done
	echo "$t"
}

memory() {
	local agent=$1 rc=0 pid w peer spares
	: >"$DIAG"
	agent_start "$agent" || rc=1
	connect_all 1 || rc=1
	disconnect_all
	sleep 1
	pid=$(agent_pid "$agent")
	spares=$(pgrep -P "$pid" -x tlshd-spare | wc -l)
	say "memory ${NAME[$agent]}: idle parent PSS $(smaps "$pid" Pss) kB, RSS $(smaps "$pid" Rss) kB (after serving); the unit's processes: $(($(wc -l <"$CG/system.slice/${UNIT[$agent]}/cgroup.procs"))), PSS $(unit_pss "${UNIT[$agent]}") kB in all"
	say "  parent PSS by mapping (kB): $(pss_by_mapping "$pid")"
	for w in $(pgrep -P "$pid" -x tlshd-spare); do
		say "  an idle spare: PSS $(smaps "$w" Pss) kB, private $(($(smaps "$w" Private_Clean) + $(smaps "$w" Private_Dirty))) kB; idle spares: $spares"
		break
	done
	# tlshd keeps more spares while busy, and retires those beyond two
	# after a quiet minute: the unit once that has passed.
	if [ "$spares" -gt 2 ]; then
		if wait_for '[ "$(pgrep -P '"$pid"' -x tlshd-spare | wc -l)" -le 2 ]' 80; then
			say "  after a quiet minute: idle parent PSS $(smaps "$pid" Pss) kB; the unit's processes: $(($(wc -l <"$CG/system.slice/${UNIT[$agent]}/cgroup.procs"))), PSS $(unit_pss "${UNIT[$agent]}") kB in all"
		else
			fail "the spares beyond two were not retired after a quiet minute"
			rc=1
		fi
	fi
	# A peer that stalls after a TLS record header keeps a server worker
	# waiting in its handshake.
	bash -c 'exec 3<>/dev/tcp/127.0.0.1/'"$PORT"'; printf "\026\003\001\002\000" >&3; sleep 30' &
	peer=$!
	wait_for '[ -n "$(pgrep -P '"$pid"' -x tlshd | head -n 1)" ]' 10 || { fail "no worker appeared"; rc=1; }
	sleep 1
	w=$(pgrep -P "$pid" -x tlshd | head -n 1)
	if [ -n "$w" ]; then
		say "  a worker in a handshake: PSS $(smaps "$w" Pss) kB, private $(($(smaps "$w" Private_Clean) + $(smaps "$w" Private_Dirty))) kB (clean $(smaps "$w" Private_Clean), dirty $(smaps "$w" Private_Dirty)), RSS $(smaps "$w" Rss) kB"
	fi
	kill "$peer" 2>/dev/null
	wait "$peer" 2>/dev/null
	agent_stop "$agent"
	check $rc "memory ${NAME[$agent]}"
}

part_memory() {
	say "---- memory ----"
	memory tlshd
	memory ktls
}

# ---------------------------------------------------------- throughput ---
throughput() {
	local agent=$1 label=$2 rc=0 t0 ms bytes cipher
	: >"$DIAG"
	agent_start "$agent" || rc=1
	connect_all 1 || rc=1
	wait_ns "${CTRLS# }" 15 || { fail "no namespace"; rc=1; }
	cipher=$(ss -tie 2>/dev/null | grep -o -E 'cipher: ?[a-z0-9-]+' | sort | uniq -c | tr '\n' ' ')
	[ "$agent" != tlshd ] || cipher="$cipher(tlshd's journal: $(journalctl -u "${UNIT[$agent]}" -o cat --no-pager | sed -n 's/.*cipher=\([A-Z0-9_]*\).*/\1/p' | tail -n 1))"
	t0=$(date +%s%N)
	bytes=$(dd if="$NS_DEV" bs=1M count=64 iflag=direct 2>/dev/null | wc -c)
	ms=$((($(date +%s%N) - t0) / 1000000))
	[ "$bytes" = $((64 * 1048576)) ] || { fail "read $bytes bytes"; rc=1; }
	disconnect_all
	agent_stop "$agent"
	say "throughput ${NAME[$agent]}$label: 64 MiB in $ms ms = $(awk -v ms="$ms" 'BEGIN { printf "%.1f", ms ? 64000 / ms : 0 }') MiB/s; kTLS ciphers (ss): ${cipher:-?}"
	check $rc "throughput ${NAME[$agent]}$label"
}

part_throughput() {
	say "---- throughput (O_DIRECT reads from null_blk over NVMe/TCP + kTLS; TCG emulates AES-NI and everything else: indicative only) ----"
	throughput tlshd ""
	throughput ktls ""
	# The system crypto policy without AES-GCM: tlshd falls back to
	# CHACHA20-POLY1305.
	mkdir -p /etc/systemd/system/tlshd-bench.service.d
	printf '[overrides]\ntls-disabled-cipher = AES-128-GCM\ntls-disabled-cipher = AES-256-GCM\n' >/etc/bench-no-aes.config
	printf '[Service]\nEnvironment=GNUTLS_SYSTEM_PRIORITY_FILE=/etc/bench-no-aes.config\n' \
		>/etc/systemd/system/tlshd-bench.service.d/no-aes.conf
	systemctl daemon-reload
	throughput tlshd " (policy without AES-GCM)"
	rm -rf /etc/systemd/system/tlshd-bench.service.d
	systemctl daemon-reload
}

# ------------------------------------------------------------- profile ---
# One latency round of tlshd under perf (every CPU sample of the guest,
# 999 Hz): where the CPU goes, by process and by function.
# ------------------------------------------------------------ timeline ---
# The awk both reports share: trace_line() parses one line of the trace
# into ts (us), ev ("sched_switch:", ...), i (the field before ev), h
# (the pid of its context) and, for a sched_switch, pp, np and nc (the
# previous pid, the next pid and comm); 0 for a line that is no event.
TRACE_AWK='
function trace_line(  j) {
	ts = ""
	for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+\.[0-9]+:$/) { ts = substr($i, 1, length($i) - 1) * 1000000; ev = $(i + 1); break }
	if (ts == "") return 0
	h = substr($0, 1, index($0, " [") - 1); sub(/.*-/, "", h); gsub(/ /, "", h)
	pp = ""; np = ""; nc = ""
	if (ev == "sched_switch:")
		for (j = i + 2; j <= NF; j++) {
			if ($j ~ /^prev_pid=/) pp = substr($j, 10)
			if ($j ~ /^next_pid=/) np = substr($j, 10)
			if ($j ~ /^next_comm=/) nc = substr($j, 11)
		}
	return 1
}'
# One serial tlshd round under the scheduler's tracepoints: for every
# request, who had the (one) CPU between its submit and its completion.
# A request's worker is the one whose report made the parent send its
# DONE (the kernel's handshake_complete fires in the parent's context,
# and the last worker to run before it is the reporter, which woke the
# parent); a tlshd process's time is then its own request's, another
# request's (its peer's, mostly), spare time before its request (fork,
# arming, waiting), or after its report (exit).
# timeline_report TRACE PARENT_PID: per category, the median and mean ms
# each request's window spent there.
timeline_report() {
	awk -v parent="$2" "$TRACE_AWK$TRACE_SK"'
	function cat(pid, comm, lo, hi) {
		if (pid == 0) return "idle"
		if (pid == parent) return "tlshd parent"
		if (comm ~ /^tlshd/ || (pid in done_t)) {
			if (!(pid in done_t) || hi <= sub_t[pid]) return "spares (fork, arming)"
			if (lo >= done_t[pid]) return "workers after their report"
			return "workers of other requests"
		}
		if (comm ~ /^systemd-journal/) return "journald"
		if (comm ~ /^kworker/) return "kworkers"
		if (comm ~ /^ksoftirqd/) return "ksoftirqd"
		if (comm ~ /^(bash|cat|sleep|nvme)$/) return "driver"
		return "other"
	}
	{
		if (!trace_line()) next
		if (ev == "sched_switch:") {
			if (cur != "") { ns++; s0[ns] = cur_t; s1[ns] = ts; sp[ns] = cur; }
			if (pp != parent && comm[pp] ~ /^tlshd/) reporter = pp
			cur = np; cur_t = ts; comm[np] = nc
			if (!first) first = ts
			next
		}
		sk = trace_sk()
		if (sk == "") next
		if (ev == "hs_entry:") ent[sk] = ts
		else if (ev == "handshake_submit_err:") delete ent[sk]
		else if (ev == "handshake_submit:") { nr++; subt[sk] = sk in ent ? ent[sk] : ts; open_r[sk] = nr; delete ent[sk] }
		else if (ev == "handshake_complete:" && (sk in open_r)) {
			r = open_r[sk]; rs[r] = subt[sk]; re[r] = ts; delete open_r[sk]
			w = h != parent ? h : reporter
			if (w != "") { wp[r] = w; done_t[w] = ts; sub_t[w] = rs[r] }
		}
	}
	END {
		n = 0; s_lo = 1
		for (r = 1; r <= nr; r++) {
			if (!(r in re) || rs[r] < first) continue
			n++
			while (s_lo < ns && s1[s_lo] <= rs[r]) s_lo++
			for (s = s_lo; s <= ns && s0[s] < re[r]; s++) {
				lo = s0[s] > rs[r] ? s0[s] : rs[r]; hi = s1[s] < re[r] ? s1[s] : re[r]
				if (hi <= lo) continue
				c = sp[s] == wp[r] ? "its worker" : cat(sp[s], comm[sp[s]], lo, hi)
				t[c, n] += hi - lo; cats[c] = 1
			}
			t["wall", n] = re[r] - rs[r]; cats["wall"] = 1
		}
		for (c in cats) for (i = 1; i <= n; i++) printf "%s\t%d\n", c, t[c, i] + 0
	}' "$1" | sort -t "$(printf '\t')" -k1,1 -k2,2n | awk -F '\t' '
	function flush() {
		if (k) printf "%-26s median %6.1f ms  mean %6.1f ms\n", c, (k % 2 ? v[(k + 1) / 2] : (v[k / 2] + v[k / 2 + 1]) / 2) / 1000, m / k / 1000
	}
	$1 != c { flush(); c = $1; k = 0; m = 0 }
	{ v[++k] = $2; m += $2 }
	END { flush() }' | sort -k5 -rn
}

# calls TRACE PARENT_PID WHO REQUESTS: on-CPU time by system call of the
# parent (WHO=parent) or of every other tlshd process (WHO=workers), in
# ms per request ("user": outside any call, page faults included), and
# their user page faults per request; largest first.
calls() {
	awk -v parent="$2" -v who="$3" -v nreq="$4" "$TRACE_AWK"'
	function mine(pid) { return who == "parent" ? pid == parent : (pid in tl) && pid != parent }
	function charge(pid, now) { if (pid in since) t[call[pid] == "" ? "user" : call[pid]] += now - since[pid]; since[pid] = now }
	{
		if (!trace_line()) next
		if (ev == "sched_switch:") {
			if (nc ~ /^tlshd/) tl[np] = 1
			if (mine(pp)) { charge(pp, ts); delete since[pp] }
			if (mine(np)) since[np] = ts
			next
		}
		if (!mine(h)) next
		# prctl by option (its first argument, hex)
		if (ev == "sys_enter:") { charge(h, ts); call[h] = $(i + 3) == 157 ? "157:" substr($(i + 4), 2, length($(i + 4)) - 2) : $(i + 3) }
		else if (ev == "sys_exit:") { charge(h, ts); call[h] = "" }
		else if (ev == "page_fault_user:") faults++
	}
	END {
		for (c in t) printf "%s %.2f\n", c, t[c] / 1000 / nreq
		printf "faults %.1f\n", faults / nreq
	}' "$1" | sort -k2 -rn | awk '
	BEGIN { split("0 read 1 write 3 close 7 poll 9 mmap 10 mprotect 11 munmap 12 brk 14 rt_sigprocmask 16 ioctl " \
		"20 writev 22 pipe 39 getpid 41 socket 42 connect 44 sendto 45 recvfrom 46 sendmsg 47 recvmsg 48 shutdown " \
		"49 bind 51 getsockname 52 getpeername 53 socketpair 54 setsockopt 55 getsockopt 56 clone 61 wait4 " \
		"62 kill 72 fcntl 102 getuid 104 getgid 107 geteuid 108 getegid 116 setgroups 117 setresuid 119 setresgid " \
		"125 capget 126 capset 157 prctl 186 gettid 202 futex 228 clock_gettime 231 exit_group 250 keyctl " \
		"271 ppoll 293 pipe2 317 seccomp 318 getrandom 435 clone3 157:4 prctl(DUMPABLE) 157:8 prctl(KEEPCAPS) " \
		"157:f prctl(SET_NAME) 157:16 prctl(SECCOMP) 157:17 prctl(CAPBSET_READ) 157:18 prctl(CAPBSET_DROP) " \
		"157:26 prctl(NO_NEW_PRIVS)", a, " ")
		for (i = 1; i < length(a); i += 2) n[a[i]] = a[i + 1] }
	$1 == "faults" { f = $2; next }
	{ printf "%-22s %6.2f\n", ($1 in n) ? n[$1] : ($1 == "user" ? "user" : "NR " $1), $2; if (++k == 14) exit }
	END { if (f != "") printf "%-22s %6.1f\n", "page faults", f }'
}

# fault_regions TRACE PARENT_PID MAPS WHO REQUESTS: the user page faults
# per request of the parent (WHO=parent) or of the workers (WHO=workers)
# by what they hit (the parent's mapping at that address, as MAPS listed
# it before the round; "new" where mapped since) and by kind: cow (a
# write to a page a fork shares), write and read (a page not yet there),
# exec (code).
fault_regions() {
	awk -v parent="$2" -v who="$4" -v nreq="$5" "$TRACE_AWK"'
	function hex(s,  v, k) { v = 0; s = tolower(s); sub(/^0x/, "", s); for (k = 1; k <= length(s); k++) v = v * 16 + index("0123456789abcdef", substr(s, k, 1)) - 1; return v }
	FNR == NR {
		split($1, r, "-"); nm++; lo[nm] = hex(r[1]); hi[nm] = hex(r[2])
		name = $6 == "" ? "[anon]" : $6; sub(/.*\//, "", name); label[nm] = name " " substr($2, 1, 3)
		next
	}
	{
		if (!trace_line()) next
		if (ev == "sched_switch:") { if (nc ~ /^tlshd/) tl[np] = 1; next }
		if (ev != "page_fault_user:" || (who == "parent") != (h == parent) || !(h in tl)) next
		a = ""; e = ""
		for (j = i + 2; j <= NF; j++) { if ($j ~ /^address=/) a = hex(substr($j, 9)); if ($j ~ /^error_code=/) e = hex(substr($j, 12)) }
		if (a == "" || e == "") next
		kind = int(e / 16) % 2 ? "exec" : int(e / 2) % 2 ? (e % 2 ? "cow" : "write") : "read"
		where = "new ---"
		for (m = 1; m <= nm; m++) if (a >= lo[m] && a < hi[m]) { where = label[m]; break }
		c[where " " kind]++
	}
	END { for (k in c) printf "%-44s %6.1f\n", k, c[k] / nreq }' "$3" "$1" | sort -k4 -rn | head -n 25
}

part_timeline() {
	local a=tlshd rc=0 parent n e t=$OUT/timeline.trace
	say "---- timeline: one tlshd round, one controller at a time, under sched_switch: who ran during each request ----"
	: >"$DIAG"
	agent_start "$a" || rc=1
	parent=$(agent_pid "$a")
	cat "/proc/$parent/maps" >"$OUT/parent.maps"
	echo 65536 >"$TRACE/buffer_size_kb"
	echo 1 >"$TRACE/events/sched/sched_switch/enable"
	for e in raw_syscalls exceptions/page_fault_user; do
		echo 'comm ~ "tlshd*"' >"$TRACE/events/$e/filter"
		echo 1 >"$TRACE/events/$e/enable"
	done
	: >"$TRACE/trace"
	connect_seq "$CONTROLLERS" || rc=1
	trace_take "$t"
	for e in raw_syscalls exceptions/page_fault_user; do
		echo 0 >"$TRACE/events/$e/enable"
		echo 0 >"$TRACE/events/$e/filter"
	done
	echo 0 >"$TRACE/events/sched/sched_switch/enable"
	echo 8192 >"$TRACE/buffer_size_kb"
	disconnect_all
	agent_stop "$a"
	say "requests: $(events "$t" handshake_complete), scheduler switches: $(events "$t" sched_switch); ms of each request's submit -> complete, by who ran:"
	timeline_report "$t" "$parent" | sed 's/^/#   /'
	n=$(events "$t" handshake_complete)
	say "ms on the CPU per request, by system call (\"user\": outside any, page faults included; tracing inflates calls), the parent:"
	calls "$t" "$parent" parent "$n" | sed 's/^/#   /'
	say "the workers:"
	calls "$t" "$parent" workers "$n" | sed 's/^/#   /'
	say "the parent maps $(wc -l <"$OUT/parent.maps") areas, $(awk '$6 ~ /^\// { n++ } END { print n + 0 }' "$OUT/parent.maps") of them from $(awk '$6 ~ /^\// { print $6 }' "$OUT/parent.maps" | sort -u | wc -l) files; every fork copies them and every exit tears them down"
	say "page faults per request, by the parent's mapping they hit and kind; the parent's:"
	fault_regions "$t" "$parent" "$OUT/parent.maps" parent "$n" | sed 's/^/#   /'
	say "the workers':"
	fault_regions "$t" "$parent" "$OUT/parent.maps" workers "$n" | sed 's/^/#   /'
	# (the request whose submit -> ACCEPT is the median)
	local pick
	pick=$(awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+\.[0-9]+:$/) { ts = substr($i, 1, length($i) - 1); ev = $(i + 1) } }
		/ handshake_submit: / { sk = $0; sub(/.* sk=/, "", sk); sub(/ .*/, "", sk); s[sk] = ts; n++; idx[sk] = n }
		/ handshake_cmd_accept: / { sk = $0; sub(/.* sk=/, "", sk); sub(/ .*/, "", sk); if (sk in s) print (ts - s[sk]) * 1000000, idx[sk] }' "$t" |
		sort -n | awk '{ v[NR] = $2; d[NR] = $1 } END { print v[int((NR + 1) / 2)], d[int((NR + 1) / 2)] }')
	say "the trace of the median request for submit -> ACCEPT (submit $pick us):"
	awk -v want="${pick%% *}" '/ handshake_submit: / { n++; if (n == want) { on = 1; sk = $0; sub(/.* sk=/, "", sk); sub(/ .*/, "", sk) } }
		on && !/ sys_(enter|exit): NR (0|1|3|7|9|10|11|12|14|202|228|318) / { print; k++ } on && / handshake_cmd_accept: / && index($0, "sk=" sk) { exit } k > 400 { exit }' "$t" |
		sed -E 's/ +/ /g; s/^/#   /'
	say "its worker from ACCEPT to its first send, receive or poll (the setup phase):"
	awk -v want="${pick%% *}" '/ handshake_submit: / { n++; if (n == want) { sk = $0; sub(/.* sk=/, "", sk); sub(/ .*/, "", sk) } }
		sk != "" && pid == "" && / handshake_cmd_accept: / && index($0, "sk=" sk) { pid = $1; sub(/.*-/, "", pid); fd = $0; sub(/.* fd=/, "", fd); on = 1 }
		on { w = $1; sub(/.*-/, "", w) }
		on && w == pid { print; if (/ sys_enter: NR 7 / || $0 ~ (" sys_enter: NR (44|45) \\(" sprintf("%x", fd) ",") || ++k > 300) exit }' "$t" |
		sed -E 's/ +/ /g; s/^/#   /'
	check $rc "timeline: one tlshd round under sched_switch"
}

# ----------------------------------------------------------- key holder ---
part_keyholder() {
	local out rc=0
	say "---- key holder: one X.509 server handshake of the engine, the key in process vs in the key holder (goal: < 1000 us more at the median; under TCG, each switch of address space also empties QEMU's software TLB) ----"
	out=$("$KEYBENCH" -n $((ROUNDS * 20)) 2>"$DIAG") || rc=1
	while read -r line; do say "$line"; done <<<"$out"
	[ $rc = 0 ] || tail -n 5 "$DIAG" | sed 's/^/#   /'
	check $rc "tlshd-keybench: $((ROUNDS * 20)) handshakes per key type and mode"
}

part_profile() {
	local a=tlshd rc=0
	say "---- profile: one round of tlshd under perf record -a (cpu-clock) ----"
	command -v perf >/dev/null || { say "no perf in this user space"; return 0; }
	: >"$DIAG"
	agent_start "$a" || rc=1
	perf record -a -g -F 999 -o "$OUT/perf.data" -- bash -c "$(declare -f connect_one connect_all); OUT=$OUT PORT=$PORT SUBNQN=$SUBNQN QUEUES=$QUEUES RECONNECT_DELAY=$RECONNECT_DELAY; connect_all $CONTROLLERS" \
		>/dev/null 2>>"$DIAG" || rc=1
	local parent
	parent=$(agent_pid "$a")
	disconnect_all
	agent_stop "$a"
	say "the parent alone (pid $parent), its own samples by function:"
	perf report -i "$OUT/perf.data" --no-children --pid "$parent" --sort dso,sym --stdio -g none 2>/dev/null | grep -E '^ +[0-9]' | head -n 25 | sed 's/^/#   /'
	say "the parent alone, kernel functions with their callees:"
	perf report -i "$OUT/perf.data" --children --pid "$parent" --sort sym --stdio -g none 2>/dev/null | grep -E '^ +[0-9].*\[k\]' | head -n 40 | sed 's/^/#   /'
	say "the workers (every tlshd process but the parent), kernel functions with their callees:"
	perf report -i "$OUT/perf.data" --children --comms tlshd,tlshd-spare --sort pid,sym --stdio -g none 2>/dev/null | grep -E '^ +[0-9].*\[k\]' | grep -v -E "[^0-9]$parent:" |
		awk '{ $3 = ""; k = $0; sub(/^ *[0-9.]+% +[0-9.]+% +/, "", k); v[k] += $1 } END { for (k in v) printf "%6.2f%%  %s\n", v[k], k }' | sort -rn | head -n 40 | sed 's/^/#   /'
	say "samples by command:"
	perf report -i "$OUT/perf.data" --no-children --sort comm --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -n 15 | sed 's/^/#   /'
	say "samples by command and shared object:"
	perf report -i "$OUT/perf.data" --no-children --sort comm,dso --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -n 25 | sed 's/^/#   /'
	say "tlshd's processes by shared object:"
	perf report -i "$OUT/perf.data" --no-children --comms tlshd,tlshd-spare --sort dso --stdio -g none 2>/dev/null | grep -E '^ +[0-9]' | head -n 15 | sed 's/^/#   /'
	say "tlshd's processes, kernel entry points with what they call (system calls, faults):"
	perf report -i "$OUT/perf.data" --children --comms tlshd,tlshd-spare --sort sym --stdio -g none 2>/dev/null |
		grep -E '^ +[0-9].*\[k\] (__x64_sys_|__do_sys_|asm_exc_page_fault|do_exit|do_group_exit|ret_from_fork|__x64_sys_exit)' | head -n 30 | sed 's/^/#   /'
	say "top functions of tlshd's processes:"
	perf report -i "$OUT/perf.data" --no-children --comms tlshd,tlshd-spare --sort dso,sym --stdio -g none 2>/dev/null | grep -E '^ +[0-9]' | head -n 30 | sed 's/^/#   /'
	check $rc "profile: one tlshd round under perf"
}

# ------------------------------------------------------------------ main ---
echo 1 >/proc/sys/kernel/printk
# (The agents' PrivateTmp= pulls in tmp.mount, which would hide files in
# /tmp halfway: /tmp is mounted first, as on a booted system.)
systemctl start tmp.mount
echo
echo "@@GUEST-UP@@ uptime=$(cut -d' ' -f1 /proc/uptime) kernel=$KVER"
echo "@@TAP-BEGIN@@"
. /etc/os-release
say "guest: kernel $KVER, $PRETTY_NAME, $(nproc) vCPU (TCG), $(awk '$1 == "MemTotal:" { printf "%d MiB", $2 / 1024 }' /proc/meminfo); $(dpkg-query -W -f='${Package} ${Version}' libgnutls30t64); ktls-utils $(dpkg-query -W -f='${Version}' ktls-utils); tlshd $(/opt/tlshd/sbin/tlshd --version 2>&1 | head -n 1)"
: >"$DIAG"
rc=0
modprobe -a configfs tls nvme-fabrics nvme-tcp nvmet nvmet-tcp null_blk 2>>"$DIAG" || rc=1
[ "$rc" = 0 ] && { nvmet_setup 2>>"$DIAG" || rc=1; }
[ "$rc" = 0 ] && { trace_on 2>>"$DIAG" || { fail "no handshake tracepoints"; rc=1; }; }
n=$CONTROLLERS
[ "$STORM" -gt "$n" ] && n=$STORM
for i in $(seq 1 "$n"); do
	[ "$rc" = 0 ] || break
	new_host || rc=1
	echo "$HOSTNQN $HOSTID" >"$OUT/host.$i"
done
check $rc "set-up: nvmet TLS port, $n host PSKs in .nvme, handshake tracepoints"
say "a request's latency runs from its consumer's $HS_START to handshake:handshake_complete"
if [ "$rc" = 0 ]; then
	for part in $PARTS; do "part_$part"; done
fi
echo "1..$TAPN"
echo "@@TAP-END@@"
echo "@@GUEST-DONE@@ uptime=$(cut -d' ' -f1 /proc/uptime)"
echo "@@DAEMON-LOG-BEGIN@@"
journalctl -b --no-pager -o short-monotonic 2>&1 | grep -E 'tlshd|nvme' | tail -n 400
echo "@@DAEMON-LOG-END@@"
exit 0
