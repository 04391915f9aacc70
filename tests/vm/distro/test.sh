#!/bin/bash
# Guest side of tests/vm/distro-suite.sh: runs in a Debian user space
# (mkroot.sh's image) with its own systemd as PID 1, as the oneshot unit
# tlshd-distro-test.service (stdout on the serial console), and drives the
# distribution's real tools against the tlshd built and installed there
# ("make install": /usr/sbin/tlshd, tlshd.service, /etc/tlshd.conf):
#
#   nvme_sha256     nvme gen-tls-key --hmac=1 --insert, nvmet TLS port,
#                   nvme connect --tls, 16 MiB read over kTLS, nvme disconnect
#   nvme_wrong_key  the host's key (connect --tls_key) differs from the
#                   target's: nvme connect fails in time, both sides'
#                   reasons in the journal
#
# /usr/libexec/tlshd-vm/distro.env (written by the host) names the tests to
# run (TESTS, in order: TAP numbers 1..N), the label of each result (LABEL:
# kernel, user space, GnuTLS).
#
# Output on stdout, between markers:
#   @@TAP-BEGIN@@ ... @@TAP-END@@          TAP, "#" lines
#   @@DAEMON-LOG-BEGIN@@ ... -END@@        the journal of this boot
# The unit's SuccessAction/FailureAction power the VM off afterwards.

LIBEXEC=/usr/libexec/tlshd-vm
. "$LIBEXEC/distro.env"

export PATH=/usr/sbin:/usr/bin:/sbin:/bin
export LC_ALL=C SYSTEMD_COLORS=0 SYSTEMD_PAGER=cat SYSTEMD_LESS='' HOME=/root
UNIT=tlshd.service
CONF=/etc/tlshd.conf
PKI=/etc/tlshd
CFS=/sys/kernel/config/nvmet
SUBNQN=nqn.2024-01.org.example.tlshd:distro-test
PORT=4420
DIAG=/tmp/diag
KVER=$(uname -r)
READ_MB=16
# Limit: a refused NVMe connect.
REFUSE_MAX_MS=15000

# diag, fail, now_ms, wait_for, ktls_stat, need_ktls, keyring_serial,
# nvmet_setup, wait_ns, read_over_tls, disconnect_all (shared with the
# busybox guests).
. "$LIBEXEC/lib.sh"

echo 1 >/proc/sys/kernel/printk

# --------------------------------------------------------------- journal ---
# A mark is the cursor of the journal's last entry; jsince prints tlshd's
# messages after it.
jmark() { journalctl -q -n 1 --show-cursor -o cat --no-pager 2>/dev/null | sed -n 's/^-- cursor: //p'; }
jsince() { journalctl -q --after-cursor="$1" SYSLOG_IDENTIFIER=tlshd -o cat --no-pager 2>/dev/null; }
jcount() { jsince "$1" | grep -c -E -e "$2"; }
# jneed MARK ERE [SECONDS]: a tlshd message after MARK matches, within
# SECONDS (default 10).
jneed() {
	local jn_mark=$1 jn_re=$2
	wait_for '[ "$(jcount "$jn_mark" "$jn_re")" -ge 1 ]' "${3:-10}" ||
		{ fail "no tlshd journal message matching '$2'"; return 1; }
}
# jdiag MARK ERE [N]: the first N (default 4) matching messages as
# diagnostics.
jdiag() { jsince "$1" | grep -E -e "$2" | head -n "${3:-4}" | sed 's/^/  tlshd: /' >>"$DIAG"; }

prop() { systemctl show -p "$1" --value "$UNIT" 2>/dev/null; }

# need_tlshd: the daemon runs (the installed unit, started by the first
# test that needs it).
need_tlshd() {
	[ "$(systemctl is-active "$UNIT")" = active ] && return 0
	write_config
	systemctl start "$UNIT" 2>>"$DIAG" || { fail "systemctl start $UNIT failed"; return 1; }
	diag "started $UNIT: $(tlshd --version 2>&1 | head -n 1), MainPID $(prop MainPID)"
}

dump_state() {
	diag "systemctl status $UNIT:"
	systemctl status --no-pager -l "$UNIT" 2>&1 | head -n 20 | sed 's/^/  /' >>"$DIAG"
	diag "journal (last 25 lines):"
	journalctl -b --no-pager -o short-monotonic 2>&1 | tail -n 25 | sed 's/^/  /' >>"$DIAG"
	diag "kernel messages (last 15 about nvme/nfs/tls/handshake):"
	dmesg | grep -i -E 'nvme|nfs|rpc|svc|tls|handshake|key|bug|warn|oops|error' | tail -n 15 |
		sed 's/^/  /' >>"$DIAG"
}

# ---------------------------------------------------------- configuration ---
# Client and server X.509 credentials (test CA made by the host for this
# run), [debug] for the handshake details.
write_config() {
	cat >"$CONF" <<EOF
[debug]
loglevel=${1:-1}
[authenticate.client]
x509.truststore=$PKI/ca.pem
x509.certificate=$PKI/client.pem
x509.private_key=$PKI/client.key
[authenticate.server]
x509.truststore=$PKI/ca.pem
x509.certificate=$PKI/server.pem
x509.private_key=$PKI/server.key
EOF
}

# ------------------------------------------------------------------ NVMe ---
TARGET_STATE=
setup_target() {
	case $TARGET_STATE in
	ok) return 0 ;;
	failed) fail "NVMe target setup failed earlier"; return 1 ;;
	esac
	TARGET_STATE=failed
	# (kmod's modprobe: lib.sh's modload, written for busybox and
	# uncompressed modules, finds no .ko.xz in modules.dep and leaves
	# loading to us.)
	modprobe -a configfs tls nvme-fabrics nvme-tcp nvmet nvmet-tcp null_blk 2>/tmp/target.err ||
		{ sed 's/^/FAIL: /' /tmp/target.err >>"$DIAG"; return 1; }
	nvmet_setup 2>/tmp/target.err || { sed 's/^/FAIL: /' /tmp/target.err >>"$DIAG"; return 1; }
	diag "nvmet: subsystem $SUBNQN on port 1, 127.0.0.1:$PORT, addr_tsas=$(cat "$CFS/ports/1/addr_tsas"), .nvme keyring $NVME_KR"
	TARGET_STATE=ok
}

# new_identity: a host NQN with a fresh uuid (HOSTNQN, HOSTID).
new_identity() {
	HOSTID=$(new_uuid)
	HOSTNQN="nqn.2014-08.org.nvmexpress:uuid:$HOSTID"
}

# gen_key HMAC [KEYRING]: nvme gen-tls-key --insert for HOSTNQN -> SUBNQN
# into .nvme (or KEYRING); KEY_SERIAL is the key it made, KEY_DESC its
# description.
gen_key() {
	local out ring=${2:-} before
	before=$(awk '$8 == "psk" { print $1 }' /proc/keys | sort)
	out=$(nvme gen-tls-key --hostnqn="$HOSTNQN" --subsysnqn="$SUBNQN" --hmac="$1" \
		${ring:+--keyring="$ring"} --insert 2>&1) ||
		{ fail "nvme gen-tls-key --hmac=$1 ${ring:+--keyring=$ring }--insert failed: $out"; return 1; }
	KEY_SERIAL=$(awk '$8 == "psk" { print $1 }' /proc/keys | sort | comm -13 <(echo "$before") - | head -n 1)
	[ -n "$KEY_SERIAL" ] || { fail "nvme gen-tls-key --insert made no new psk key: $out"; return 1; }
	KEY_DESC=$(awk -v k="$KEY_SERIAL" '$1 == k { sub(/^([^ ]+ +){8}/, ""); print }' /proc/keys)
	diag "nvme gen-tls-key --hmac=$1 ${ring:+--keyring=$ring }--insert: key 0x$KEY_SERIAL '$KEY_DESC' ($(echo "$out" | tr '\n' ' ' | cut -c1-100))"
}

# nvme_cli_connect [EXTRA ARGS]: nvme connect --tls as HOSTNQN/HOSTID; sets
# CTRL, CONNECT_MS, CONNECT_OUT.
nvme_cli_connect() {
	local t0 rc
	CTRL=
	t0=$(now_ms)
	CONNECT_OUT=$(timeout 60 nvme connect -t tcp -a 127.0.0.1 -s "$PORT" -n "$SUBNQN" \
		--hostnqn="$HOSTNQN" --hostid="$HOSTID" --tls "$@" 2>&1)
	rc=$?
	CONNECT_MS=$(($(now_ms) - t0))
	CONNECT_OUT=$(echo "$CONNECT_OUT" | tr '\n' ' ')
	[ "$rc" = 0 ] || return 1
	CTRL=$(echo "$CONNECT_OUT" | sed -n 's/.*connecting to device: nvme\([0-9]*\).*/\1/p')
	if [ -z "$CTRL" ]; then
		local c
		for c in /sys/class/nvme/nvme*; do
			[ "$(cat "$c/hostnqn" 2>/dev/null)" = "$HOSTNQN" ] && CTRL=${c##*/nvme}
		done
	fi
	[ -n "$CTRL" ] || { CONNECT_OUT="no controller for $HOSTNQN after: $CONNECT_OUT"; return 1; }
}

# nvme_cli_disconnect: nvme disconnect -n SUBNQN; no controller left.
nvme_cli_disconnect() {
	local out
	out=$(timeout 30 nvme disconnect -n "$SUBNQN" 2>&1) ||
		{ fail "nvme disconnect -n $SUBNQN failed: $out"; return 1; }
	diag "nvme disconnect: $(echo "$out" | tr '\n' ' ')"
	wait_for '! ls -d /sys/class/nvme/nvme* >/dev/null 2>&1' 10 ||
		{ fail "controllers left after nvme disconnect: $(ls /sys/class/nvme/)"; return 1; }
}

# nvme_good HMAC CIPHER: a new identity, its key by gen-tls-key, connect,
# read, both handshakes logged with CIPHER, disconnect.
nvme_good() {
	local mark rc=0
	setup_target && need_tlshd || return 1
	new_identity
	gen_key "$1" || return 1
	mark=$(jmark)
	nvme_cli_connect || { fail "nvme connect --tls failed after ${CONNECT_MS} ms: $CONNECT_OUT"; jdiag "$mark" 'handshake|PSK|key'; return 1; }
	diag "nvme connect --tls: nvme$CTRL in ${CONNECT_MS} ms ($CONNECT_OUT)"
	read_over_tls "$CTRL" "$READ_MB" || rc=1
	jneed "$mark" "handshake succeeded: role=client auth=psk .*cipher=$2 " || rc=1
	jneed "$mark" "handshake succeeded: role=server auth=psk .*cipher=$2 " || rc=1
	jdiag "$mark" 'handshake|identity'
	nvme_cli_disconnect || rc=1
	[ "$rc" = 0 ] && [ -z "${H1NQN:-}" ] && { H1NQN=$HOSTNQN H1ID=$HOSTID; }
	return $rc
}

DESC_nvme_sha256="nvme-cli: gen-tls-key --hmac=1 --insert, nvmet TLS port, nvme connect --tls, ${READ_MB} MiB read over kTLS (a SHA-256 suite), nvme disconnect"
t_nvme_sha256() { nvme_good 1 "TLS_[A-Z0-9_]+_SHA256"; }

DESC_nvme_wrong_key="nvme-cli: the host's key (gen-tls-key --keyring, given by connect --tls_key) differs from the target's: nvme connect fails within $((REFUSE_MAX_MS / 1000)) s, client and server reasons logged"
t_nvme_wrong_key() {
	local mark ring rc=0
	setup_target && need_tlshd || return 1
	new_identity
	gen_key 1 || return 1
	# The host's key of the same identity, with other bytes, in a keyring
	# of its own.  (This unit's session keyring is private: link root's
	# user keyring in, so that gen-tls-key finds the keyring by name.)
	keyctl link @u @s >/dev/null 2>&1
	ring=$(keyctl newring tlshd-wrong @u) || { fail "keyctl newring tlshd-wrong @u failed"; return 1; }
	gen_key 1 tlshd-wrong || return 1
	mark=$(jmark)
	# (nvme-cli 2.13 drops --keyring from the connect options it writes;
	# --tls_key names the key itself.)
	if nvme_cli_connect --tls_key=$((16#$KEY_SERIAL)); then
		fail "nvme connect with a mismatched key SUCCEEDED (nvme$CTRL)"
		nvme_cli_disconnect
		return 1
	fi
	diag "nvme connect --tls --tls_key=$((16#$KEY_SERIAL)) failed as expected after ${CONNECT_MS} ms: $CONNECT_OUT"
	[ "$CONNECT_MS" -le "$REFUSE_MAX_MS" ] || { fail "the refusal took ${CONNECT_MS} ms"; rc=1; }
	jneed "$mark" 'handshake failed: role=client auth=psk .*errno=E[A-Z]+ reason=[^ ]' || rc=1
	jneed "$mark" 'handshake failed: role=server auth=psk .*errno=E[A-Z]+ reason=[^ ]' || rc=1
	jdiag "$mark" 'handshake failed'
	keyctl unlink "$ring" @u >/dev/null 2>&1
	disconnect_all
	return $rc
}

# ------------------------------------------------------------------ main ---
echo
echo "@@GUEST-UP@@ uptime=$(cut -d' ' -f1 /proc/uptime) kernel=$KVER"

echo "@@TAP-BEGIN@@"
set -- $TESTS
echo "1..$#"
. /etc/os-release
echo "# guest: kernel $KVER; $PRETTY_NAME; systemd $(systemctl --version | awk 'NR == 1 { print $2 }') as PID 1; $(nvme version 2>&1 | head -n 1); $(dpkg-query -W -f='${Package} ${Version}' libgnutls30t64 2>/dev/null)$(dpkg-query -W -f='; nfs-common ${Version}' nfs-common 2>/dev/null); tests started at $(cut -d' ' -f1 /proc/uptime) s"
n=0
for t in $TESTS; do
	n=$((n + 1))
	: >"$DIAG"
	t0=$(now_ms)
	eval "desc=\$DESC_$t"
	if "t_$t"; then res=ok; else res="not ok"; fi
	if [ "$res" != ok ]; then
		dump_state
		disconnect_all
	fi
	echo "$res $n - [$LABEL] $t: $desc"
	echo "# $t took $(($(now_ms) - t0)) ms"
	sed -e '/^$/d' -e 's/^/#   /' "$DIAG"
done
echo "@@TAP-END@@"
echo "@@GUEST-DONE@@ uptime=$(cut -d' ' -f1 /proc/uptime)"

echo "@@DAEMON-LOG-BEGIN@@"
journalctl -b --no-pager -o short-monotonic 2>&1
echo "@@DAEMON-LOG-END@@"
exit 0
