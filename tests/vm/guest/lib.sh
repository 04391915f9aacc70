# lib.sh: shell functions shared by the guest-side test scripts (busybox
# sh; sourced, never run): guest/scenarios.sh (with its fixture-*.sh) and
# systemd/test.sh.  Both images install it as /usr/libexec/tlshd-vm/lib.sh.
#
# The sourcing script sets:
#   KVER     the running kernel's release (uname -r)
#   DIAG     file collecting the diagnostics of the running test
#   CFS      nvmet's configfs directory (/sys/kernel/config/nvmet)
#   SUBNQN   NQN of the test subsystem
#   PORT     TCP port of the NVMe/TCP target on 127.0.0.1
# nvmet_setup sets NVME_KR; new_host sets HOSTNQN, HOSTID and PSK_SERIAL;
# nvme_connect sets CTRL, CONNECT_MS and CONNECT_ERR; wait_ns sets NS_PATH
# and NS_DEV.

# ---------------------------------------------------------------- helpers ---

# Add a line to the diagnostics of the running test (printed as "#" lines
# after its result).
diag() { echo "$*" >>"$DIAG"; }

# Add "FAIL: MESSAGE" to the diagnostics; returns 1.
fail() { diag "FAIL: $*"; return 1; }

# Uptime in milliseconds.
now_ms() { awk '{ printf "%d\n", $1 * 1000 }' /proc/uptime; }

# children PID [NAME]: the pids of PID's child processes, only those whose
# name (comm) is NAME if given, e.g. the daemon's key holder, tlshd-keys.
children() {
	local f p
	for f in $(grep -l "^PPid:[[:space:]]*$1\$" /proc/[0-9]*/status 2>/dev/null); do
		[ -z "${2:-}" ] || grep -q "^Name:[[:space:]]*$2\$" "$f" 2>/dev/null || continue
		p=${f#/proc/}
		echo "${p%/status}"
	done
}

# wait_for SNIPPET SECONDS: run the shell snippet (eval'ed) every 0.1 s
# until it succeeds, for up to SECONDS; fails if it never did.  The snippet
# sees the caller's local variables, not its positional parameters (and may
# use "set --": it is kept in a variable of its own).
wait_for() {
	local wf_cmd="$1" wf_end=$(($(now_ms) + $2 * 1000))
	while ! eval "$wf_cmd"; do
		[ "$(now_ms)" -lt "$wf_end" ] || return 1
		sleep 0.1
	done
}

new_uuid() { cat /proc/sys/kernel/random/uuid; }

# A counter of /proc/net/tls_stat (e.g. TlsCurrTxSw; empty without kTLS).
tls_stat() { awk -v k="$1" '$1 == k { print $2 }' /proc/net/tls_stat 2>/dev/null; }

# ktls_stat: the software kTLS sockets now open, KTLS_TX and KTLS_RX (empty
# without kTLS), and KTLS, the two for the diagnostics
# ("tls_stat TlsCurrTxSw=N TlsCurrRxSw=M").
ktls_stat() {
	KTLS_TX=$(tls_stat TlsCurrTxSw) KTLS_RX=$(tls_stat TlsCurrRxSw)
	KTLS="tls_stat TlsCurrTxSw=${KTLS_TX:-?} TlsCurrRxSw=${KTLS_RX:-?}"
}

# need_ktls [MIN]: after ktls_stat, fail unless at least MIN (default 1)
# kTLS sockets are open in each direction.
need_ktls() {
	[ "${KTLS_TX:-0}" -ge "${1:-1}" ] && [ "${KTLS_RX:-0}" -ge "${1:-1}" ] ||
		{ fail "kTLS not active: want >= ${1:-1} sockets each way, $KTLS"; return 1; }
}

# keyring_serial DESCRIPTION: serial of the keyring (type "keyring") with
# that description, in decimal; fails if there is none.
keyring_serial() {
	local hex
	hex=$(awk -v d="$1:" '$8 == "keyring" && $9 == d { print $1; exit }' /proc/keys)
	[ -n "$hex" ] || return 1
	echo $((0x$hex))
}

# key_unlink KEYRING SERIAL...: unlink keys from a keyring (quietly).
key_unlink() {
	local ring=$1 k
	shift
	for k; do keyctl unlink "$k" "$ring" >/dev/null 2>&1; done
}

# modload MODULE: modprobe MODULE unless it is built into this kernel (not
# in modules.dep: fine); fails if modprobe does.
modload() {
	if grep -q -E "/$1\.ko:|/$(echo "$1" | tr _ -)\.ko:|/$(echo "$1" | tr - _)\.ko:" \
		"/lib/modules/$KVER/modules.dep"; then
		modprobe "$1" || return 1
	fi
	return 0
}

# ------------------------------------------------- NVMe target and host ---
# The kernel NVMe host and target (nvmet) talk to each other over 127.0.0.1,
# both handshakes going to the daemon under test.

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

# nvmet_setup: load the NVMe/TCP host and target modules, mount configfs if
# it is not, find the kernel's .nvme keyring (NVME_KR) and configure the
# subsystem and its TLS port.  On failure it returns 1 and says why on
# stderr (after the errors of the configfs writes, if any).
nvmet_setup() {
	local m
	for m in configfs nvme-keyring tls nvme-fabrics nvme-tcp nvmet nvmet-tcp null_blk; do
		modload "$m" || { echo "modprobe $m failed" >&2; return 1; }
	done
	grep -q ' /sys/kernel/config configfs ' /proc/mounts ||
		mount -t configfs configfs /sys/kernel/config || { echo "cannot mount configfs" >&2; return 1; }
	NVME_KR=$(keyring_serial .nvme) || { echo "no .nvme keyring in /proc/keys" >&2; return 1; }
	wait_for '[ -b /dev/nullb0 ]' 5 || :
	configure_nvmet || { echo "nvmet configfs setup failed" >&2; return 1; }
}

# add_psk KEYRING HOSTNQN FILE: store a retained SHA-256 (version 0) PSK for
# HOSTNQN -> SUBNQN; prints the key serial.
add_psk() {
	keyctl padd psk "NVMe0R01 $2 $SUBNQN" "$1" <"$3"
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
	local ns_ctrl=$1
	NS_PATH= NS_DEV=
	wait_for 'ns_found "$ns_ctrl"' "$2"
}

# ns_found CTRL: namespace 1 of controller CTRL has a block device (sets
# NS_PATH and NS_DEV as wait_ns).
ns_found() {
	local d
	for d in "/sys/class/nvme/nvme$1"/nvme*n1; do
		[ -e "$d/stat" ] || continue
		NS_PATH=${d##*/}
		NS_DEV=/dev/$(echo "$NS_PATH" | sed 's/c[0-9]*n/n/')
		[ -b "$NS_DEV" ] && return 0
	done
	return 1
}

# Bytes read from a block device with O_DIRECT (bypassing the page cache,
# so every byte comes through the TLS connection): read_bytes DEV MIB.
read_bytes() {
	dd if="$1" bs=1M count="$2" iflag=direct 2>/dev/null | wc -c
}

# read_over_tls CTRL MIB: wait up to 15 s for namespace 1 of controller
# CTRL (NS_DEV), read MIB MiB from it with O_DIRECT and check that kTLS
# carried them (software kTLS sockets in both directions).
read_over_tls() {
	local bytes t0 want=$(($2 * 1048576))
	wait_ns "$1" 15 || { fail "no namespace block device for nvme$1 within 15 s"; return 1; }
	t0=$(now_ms)
	bytes=$(read_bytes "$NS_DEV" "$2")
	[ "$bytes" = "$want" ] || { fail "read $bytes bytes from $NS_DEV, want $want"; return 1; }
	ktls_stat
	diag "read $bytes bytes from $NS_DEV in $(($(now_ms) - t0)) ms; $KTLS"
	need_ktls
}

# disconnect CTRL: delete controller nvmeCTRL (if it exists) and wait up to
# 10 s for it to go.
disconnect() {
	[ -e "/sys/class/nvme/nvme$1/delete_controller" ] || return 0
	local dc_dir=/sys/class/nvme/nvme$1
	echo 1 >"$dc_dir/delete_controller" 2>/dev/null
	wait_for '[ ! -e "$dc_dir" ]' 10
}

# Delete every NVMe controller (a diagnostic line for each that stays).
disconnect_all() {
	local c
	for c in /sys/class/nvme/nvme*; do
		[ -e "$c" ] || continue
		disconnect "${c##*/nvme}" || diag "could not delete controller ${c##*/}"
	done
}

# spare_status PID: "pid euid CapEff filters" of each idle spare (comm
# tlshd-spare) of the daemon PID.
spare_status() {
	local ss_p
	for ss_p in $(awk -v p="$1" '$4 == p && $2 == "(tlshd-spare)" { print $1 }' /proc/[0-9]*/stat 2>/dev/null); do
		awk -v p="$ss_p" '$1 == "Uid:" { u = $3 } $1 == "CapEff:" { c = $2 }
			$1 == "Seccomp_filters:" { f = $2 } END { print p, u, c, f }' "/proc/$ss_p/status" 2>/dev/null
	done
}

# spares_confined FILE FILTERS: every line of FILE (spare_status) not
# root, no capability, FILTERS system call filters; FILE not empty.
spares_confined() {
	[ -s "$1" ] && awk -v w="$2" '$2 == 0 || $3 != "0000000000000000" || $4 != w { bad = 1 }
		END { exit bad }' "$1"
}

# spare_check PID: every idle spare of the daemon PID confined before it
# has a request, as a worker is before its handshake: not root, no
# capability (DONE is the daemon's), one system call filter more than the
# daemon's.
# Spares get there right after they start: waits up to 10 s for it.
spare_check() {
	local sc_f sc_want
	sc_f=$(awk '$1 == "Seccomp_filters:" { print $2 }' "/proc/$1/status")
	sc_want=$((${sc_f:-0} + 1))
	wait_for "spare_status $1 >/tmp/spares; spares_confined /tmp/spares $sc_want" 10 || true
	diag "idle spares (pid euid CapEff filters; the daemon has ${sc_f:-0} filters): $(tr '\n' ';' </tmp/spares)"
	[ -s /tmp/spares ] || { fail "the daemon has no idle spares"; return 1; }
	spares_confined /tmp/spares "$sc_want" ||
		{ fail "idle spares not confined before their request: $(tr '\n' ';' </tmp/spares)"; return 1; }
}

# nice_check PID: the daemon PID at nice -10 (its unit's Nice=) and every
# child of it (spares, the key holder) back at 0; says which are not.
nice_check() {
	local nc_rc=0 nc_v
	nc_v=$(awk '{ print $19 }' "/proc/$1/stat")
	[ "$nc_v" = -10 ] || { fail "the daemon runs at nice $nc_v, want -10 (Nice=)"; nc_rc=1; }
	awk -v p="$1" '$4 == p { print $1, $2, $19 }' /proc/[0-9]*/stat 2>/dev/null >/tmp/children
	[ -s /tmp/children ] || { fail "the daemon has no children (spares)"; nc_rc=1; }
	if awk '$3 != 0 { bad = 1 } END { exit !bad }' /tmp/children; then
		fail "children of the daemon not at nice 0: $(awk '$3 != 0' /tmp/children | tr '\n' ' ')"
		nc_rc=1
	fi
	diag "nice: daemon $nc_v, children (pid comm nice): $(tr '\n' ' ' </tmp/children)"
	return $nc_rc
}
