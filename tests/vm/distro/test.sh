#!/bin/bash
# Guest side of tests/vm/distro-suite.sh: runs in a Debian user space
# (mkroot.sh's image) with its own systemd as PID 1, as the oneshot unit
# tlshd-distro-test.service (stdout on the serial console), and drives the
# distribution's real tools against the tlshd built and installed there
# ("make install": /usr/sbin/tlshd, tlshd.service, /etc/tlshd.conf):
#
#   sd_start        systemctl start tlshd.service: active, ready line
#   sd_sandbox      the sandbox on the running daemon; exposure as rated by
#                   this systemd's systemd-analyze security
#   nvme_sha256     nvme gen-tls-key --hmac=1 --insert, nvmet TLS port,
#                   nvme connect --tls, 16 MiB read over kTLS, nvme disconnect
#   nvme_sha384     the same with --hmac=2 (48-byte PSK): connects with
#                   TLS_AES_256_GCM_SHA384 where tlshd has the SHA-384 binder
#                   API (SHA384_EXPECT=connect), else is refused clearly
#   nvme_wrong_key  the host's key (connect --tls_key) differs from the
#                   target's: nvme connect fails in time, both sides'
#                   reasons in the journal
#   nfs_tls_dns     nfs-server.service with /etc/exports lines xprtsec=tls,
#   nfs_mtls_dns    xprtsec=mtls (exportfs -ra); mount -o xprtsec=tls / mtls
#   nfs_tls_ipv6    by a DNS name (/etc/hosts, DNS SAN) and by an IPv6
#   nfs_mtls_ipv6   address (IP SAN); the mtls export refuses a tls mount
#   nfs_wrong_name  a server certificate without the mounted name: the mount
#                   fails fast, the reason logged
#   sd_journal      the handshake entries' fields (MESSAGE_ID, TLSHD_*),
#                   attributed to the unit; STATUS= in systemctl status
#   sd_reload       systemctl reload: a good file is taken, a broken one
#                   rejected; same MainPID; still serving
#   sd_stop         systemctl stop: inactive, exit status 0
#
# In the package VM (PKG=1: Debian's ktls-utils installed, tlshd's package
# in /usr/src/$DEB, not installed):
#   pkg_ktls        the user edits ktls-utils' configuration file (its
#                   conffile: /etc/tlshd.conf in Debian 13); its
#                   tlshd.service starts
#   pkg_install     apt-get install of the package: ktls-utils removed, our
#                   binary and unit, active with the user's file (unchanged),
#                   no configuration file of ours made
#   pkg_nvme        nvme-cli connect --tls through it (as nvme_sha256), the
#                   user's keyrings= looked up
#   pkg_purge       apt-get purge tlshd: nothing of ours left running or on
#                   disk, the user's file kept; what remains is reported
#
# /usr/libexec/tlshd-vm/distro.env (written by the host) names the tests to
# run (TESTS, in order: TAP numbers 1..N), the label of each result (LABEL:
# kernel, user space, GnuTLS) and what to expect (SHA384_EXPECT, the
# MESSAGE_IDs, MAX_EXPOSURE).
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
# Limits: a refused NVMe connect, a refused NFS mount.
REFUSE_MAX_MS=15000
WRONGNAME_MAX_MS=30000

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

# need_tlshd: the daemon runs (started by sd_start; started here when a
# test runs without it, e.g. with TLSHD_DISTRO_TESTS).
need_tlshd() {
	[ "$(systemctl is-active "$UNIT")" = active ] && return 0
	[ "${PKG:-0}" = 1 ] || write_config
	systemctl start "$UNIT" 2>>"$DIAG" || { fail "systemctl start $UNIT failed"; return 1; }
	diag "(started $UNIT for this test)"
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
	# (The first good identity serves sd_reload's connect.)
	[ "$rc" = 0 ] && [ -z "${H1NQN:-}" ] && { H1NQN=$HOSTNQN H1ID=$HOSTID; }
	return $rc
}

DESC_nvme_sha256="nvme-cli: gen-tls-key --hmac=1 --insert, nvmet TLS port, nvme connect --tls, ${READ_MB} MiB read over kTLS (a SHA-256 suite), nvme disconnect"
t_nvme_sha256() { nvme_good 1 "TLS_[A-Z0-9_]+_SHA256"; }

if [ "${SHA384_EXPECT:-refuse}" = connect ]; then
	DESC_nvme_sha384="nvme-cli: gen-tls-key --hmac=2 --insert (48-byte PSK), nvme connect --tls negotiates TLS_AES_256_GCM_SHA384, ${READ_MB} MiB read, nvme disconnect"
	t_nvme_sha384() {
		nvme_good 2 TLS_AES_256_GCM_SHA384 || return 1
		[ "$(echo "$KEY_DESC" | cut -c1-8)" = NVMe0R02 ] || [ "$(echo "$KEY_DESC" | cut -c1-8)" = NVMe1R02 ] ||
			{ fail "the key is not a SHA-384 (R02) PSK: '$KEY_DESC'"; return 1; }
	}
else
	DESC_nvme_sha384="nvme-cli: gen-tls-key --hmac=2 --insert (48-byte PSK) with GnuTLS < 3.8.11: nvme connect --tls refused within $((REFUSE_MAX_MS / 1000)) s, the reason names GnuTLS 3.8.11"
	t_nvme_sha384() {
		local mark rc=0
		setup_target && need_tlshd || return 1
		new_identity
		gen_key 2 || return 1
		mark=$(jmark)
		if nvme_cli_connect; then
			fail "nvme connect --tls with a SHA-384 PSK SUCCEEDED (nvme$CTRL) with a tlshd that cannot bind it"
			nvme_cli_disconnect
			return 1
		fi
		diag "nvme connect --tls failed as expected after ${CONNECT_MS} ms: $CONNECT_OUT"
		[ "$CONNECT_MS" -le "$REFUSE_MAX_MS" ] || { fail "the refusal took ${CONNECT_MS} ms"; rc=1; }
		jneed "$mark" "handshake failed: role=client auth=psk .*errno=EOPNOTSUPP reason=PSK [0-9]+ is a 48-byte SHA-384 key; binding it needs GnuTLS 3.8.11 or later" || rc=1
		jdiag "$mark" 'handshake|SHA-384'
		disconnect_all
		return $rc
	}
fi

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

# ------------------------------------------------------------------- NFS ---
NFS_EXPORT=/srv/nfs
NFS_MNT=/mnt/nfs
NFS_OPTS=vers=4.2,soft,timeo=50,retrans=2,retry=0
NFS_STATE=
NFS_UP_MS=0
NFS_GRACE=10

# The NFS server as Debian runs it: /etc/exports, nfs-server.service (which
# runs exportfs -r, rpc.mountd, rpc.nfsd), grace and lease cut to 10 s in
# /etc/nfs.conf.d.  Started before the first test so that the grace
# period is over when the NFS tests write.
nfs_server_setup() {
	local t0
	NFS_STATE=failed
	: >/tmp/nfs-setup.diag
	t0=$(now_ms)
	mkdir -p "$NFS_EXPORT" "$NFS_MNT" /etc/nfs.conf.d
	mount -t tmpfs -o mode=0755 tmpfs "$NFS_EXPORT" && mkdir "$NFS_EXPORT/tls" "$NFS_EXPORT/mtls" &&
		mount -t tmpfs -o mode=0755 tmpfs "$NFS_EXPORT/tls" &&
		mount -t tmpfs -o mode=0755 tmpfs "$NFS_EXPORT/mtls" ||
		{ echo "cannot mount the export tmpfs" >>/tmp/nfs-setup.diag; return 1; }
	cat >/etc/exports <<EOF
# tlshd distro VM test: the NFSv4 root takes TLS with or without a client
# certificate; below it, one export for each.
$NFS_EXPORT       *(rw,sync,insecure,no_root_squash,fsid=0,no_subtree_check,xprtsec=tls:mtls)
$NFS_EXPORT/tls   *(rw,sync,insecure,no_root_squash,fsid=1,no_subtree_check,xprtsec=tls)
$NFS_EXPORT/mtls  *(rw,sync,insecure,no_root_squash,fsid=2,no_subtree_check,xprtsec=mtls)
EOF
	printf '[nfsd]\ngrace-time=%s\nlease-time=%s\nvers3=n\n' "$NFS_GRACE" "$NFS_GRACE" >/etc/nfs.conf.d/tlshd-vm.conf
	# A loopback mount must not bypass RPC (and TLS) for I/O.
	modprobe nfs 2>/dev/null
	[ -w /sys/module/nfs/parameters/localio_enabled ] && echo N >/sys/module/nfs/parameters/localio_enabled
	systemctl start nfs-server.service >>/tmp/nfs-setup.diag 2>&1 ||
		{ echo "systemctl start nfs-server.service failed:" >>/tmp/nfs-setup.diag
		  systemctl status --no-pager nfs-server.service 2>&1 | tail -n 8 >>/tmp/nfs-setup.diag; return 1; }
	NFS_UP_MS=$(now_ms)
	echo "nfs-server.service active after $((NFS_UP_MS - t0)) ms; nfsd versions '$(cat /proc/fs/nfsd/versions 2>/dev/null)', $(cat /proc/fs/nfsd/threads 2>/dev/null) threads; nfsconf: grace-time=$(nfsconf --get nfsd grace-time 2>&1) lease-time=$(nfsconf --get nfsd lease-time 2>&1)" >>/tmp/nfs-setup.diag
	NFS_STATE=ok
}

nfs_server() {
	need_tlshd || return 1
	if [ "$NFS_STATE" != ok ]; then
		cat /tmp/nfs-setup.diag >>"$DIAG" 2>/dev/null
		fail "NFS server setup failed"
		return 1
	fi
	if [ "${NFS_SHOWN:-0}" = 0 ]; then
		cat /tmp/nfs-setup.diag >>"$DIAG"
		NFS_SHOWN=1
	fi
}

nfs_wait_grace() {
	local left=$((NFS_UP_MS + (NFS_GRACE + 1) * 1000 - $(now_ms)))
	[ "$left" -le 0 ] || { diag "waiting ${left} ms for the end of nfsd's grace period"; sleep $((left / 1000 + 1)); }
}

nfs_mounted() { awk -v m="$NFS_MNT" '$2 == m { f = 1 } END { exit !f }' /proc/mounts; }
nfs_clients() { tail -n +2 /proc/fs/nfsfs/servers 2>/dev/null | wc -l; }

# nfs_mount SPEC OPTS: mount -t nfs (mount.nfs of nfs-common); MOUNT_MS,
# MOUNT_ERR.
nfs_mount() {
	local t0 out rc
	MOUNT_ERR=
	# (A new mount must make a new connection: wait until the client of
	# the previous one has gone.)
	wait_for '[ "$(nfs_clients)" = 0 ]' 10
	t0=$(now_ms)
	out=$(timeout 60 mount -t nfs -o "$NFS_OPTS,$2" "$1" "$NFS_MNT" 2>&1)
	rc=$?
	MOUNT_MS=$(($(now_ms) - t0))
	[ "$rc" = 0 ] && nfs_mounted && return 0
	MOUNT_ERR="exit $rc: $(echo "$out" | tr '\n' ' ')"
	nfs_mounted && umount "$NFS_MNT" 2>/dev/null
	return 1
}

nfs_umount() {
	nfs_mounted || return 0
	timeout 30 umount "$NFS_MNT" 2>>"$DIAG" || timeout 10 umount -f -l "$NFS_MNT" 2>>"$DIAG"
	! nfs_mounted || { fail "could not unmount $NFS_MNT"; return 1; }
}

# nfs_rw SERVER_DIR: 1 MiB written through the mount, the same bytes in the
# server's directory, read back with O_DIRECT; kTLS carried it.
NFS_SEQ=0
nfs_rw() {
	local name want got srv t0
	NFS_SEQ=$((NFS_SEQ + 1))
	name=tlshd-distro-$NFS_SEQ.bin
	head -c 1048576 /dev/urandom >/tmp/nfs.data
	want=$(md5sum </tmp/nfs.data | cut -d' ' -f1)
	nfs_wait_grace
	t0=$(now_ms)
	timeout 60 dd if=/tmp/nfs.data of="$NFS_MNT/$name" bs=64k conv=fsync status=none 2>/tmp/dd.err ||
		{ fail "writing $NFS_MNT/$name failed: $(tr '\n' ' ' </tmp/dd.err)"; return 1; }
	srv=$(md5sum <"$1/$name" 2>/dev/null | cut -d' ' -f1)
	[ "$srv" = "$want" ] || { fail "$1/$name on the server: md5 '${srv:-missing}', written '$want'"; return 1; }
	got=$(timeout 60 dd if="$NFS_MNT/$name" bs=64k iflag=direct status=none 2>/tmp/dd.err | md5sum | cut -d' ' -f1)
	[ "$got" = "$want" ] || { fail "read back (O_DIRECT): md5 $got, written $want; $(tr '\n' ' ' </tmp/dd.err)"; return 1; }
	ktls_stat
	diag "1 MiB written, identical in $1, read back in $(($(now_ms) - t0)) ms; $KTLS"
	need_ktls
}

# nfs_good SPEC OPTS SERVER_DIR CLIENT_AUTH PEERNAME: mount, rw, the
# client handshake (CLIENT_AUTH: unauth or x509, with TLSHD_PEERNAME
# PEERNAME) and nfsd's (x509) logged, unmount.
nfs_good() {
	local mark rc=0
	nfs_server || return 1
	mark=$(jmark)
	nfs_mount "$1" "$2" || { fail "mount -t nfs -o $2 $1 failed after ${MOUNT_MS} ms: $MOUNT_ERR"; jdiag "$mark" 'handshake|rejected|certificate'; return 1; }
	diag "mount -t nfs -o ...,$2 $1: ${MOUNT_MS} ms"
	nfs_rw "$3" || rc=1
	jneed "$mark" "handshake succeeded: role=client auth=$4 " || rc=1
	jneed "$mark" 'handshake succeeded: role=server auth=x509 ' || rc=1
	[ "$4" != x509 ] || jneed "$mark" "handshake succeeded: role=server auth=x509 .* subject='CN=tlshd-distro client'" || rc=1
	journalctl -q --after-cursor="$mark" SYSLOG_IDENTIFIER=tlshd TLSHD_ROLE=client -o export --no-pager \
		--output-fields=TLSHD_PEERNAME 2>/dev/null | sed -n 's/^TLSHD_PEERNAME=//p' | sort -u >/tmp/peernames
	grep -qx -F "$5" /tmp/peernames ||
		{ fail "no client handshake entry with TLSHD_PEERNAME=$5 (seen: $(tr '\n' ' ' </tmp/peernames))"; rc=1; }
	jdiag "$mark" 'handshake|verified'
	nfs_umount || rc=1
	return $rc
}

DESC_nfs_tls_dns="nfs: /etc/exports lines with xprtsec=tls, xprtsec=mtls (and tls:mtls on the root) loaded by exportfs -ra; mount -o xprtsec=tls by DNS name (nfs.test, DNS SAN) of the tls export: 1 MiB written and read back over kTLS"
t_nfs_tls_dns() {
	nfs_server || return 1
	local out rc=0 e
	out=$(exportfs -ra 2>&1) || { fail "exportfs -ra failed: $out"; return 1; }
	exportfs -v >/tmp/exportfs.v 2>&1
	sed 's/^/  exportfs -v: /' /tmp/exportfs.v >>"$DIAG"
	for e in ":xprtsec=tls:mtls" "/tls:xprtsec=tls" "/mtls:xprtsec=mtls"; do
		tr -d ' \t\n' </tmp/exportfs.v | grep -q "$NFS_EXPORT${e%%:*}<world>([^)]*${e#*:}[,)]" ||
			{ fail "exportfs -v does not show $NFS_EXPORT${e%%:*} with ${e#*:}"; rc=1; }
	done
	nfs_good nfs.test:/tls xprtsec=tls "$NFS_EXPORT/tls" unauth nfs.test || rc=1
	return $rc
}

DESC_nfs_mtls_dns="nfs: mount -o xprtsec=mtls by DNS name of the mtls-only export: read back, client certificate verified; a xprtsec=tls mount of it is refused"
t_nfs_mtls_dns() {
	local mark rc=0
	nfs_good nfs.test:/mtls xprtsec=mtls "$NFS_EXPORT/mtls" x509 nfs.test || rc=1
	nfs_server || return 1
	mark=$(jmark)
	if nfs_mount nfs.test:/mtls xprtsec=tls; then
		fail "a xprtsec=tls mount of the mtls-only export SUCCEEDED"
		nfs_umount
		return 1
	fi
	diag "xprtsec=tls mount of nfs.test:/mtls refused as expected after ${MOUNT_MS} ms: $MOUNT_ERR"
	echo "$MOUNT_ERR" | grep -q -i -E 'not permitted|permission denied|access denied' ||
		{ fail "the refusal is not a permission error: $MOUNT_ERR"; rc=1; }
	# Refused by the export's policy, after a good TLS handshake.
	jneed "$mark" 'handshake succeeded: role=client auth=unauth ' || rc=1
	return $rc
}

DESC_nfs_tls_ipv6="nfs: mount -o xprtsec=tls by IPv6 address ([::1], IP SAN) of the tls export: 1 MiB written and read back over kTLS"
t_nfs_tls_ipv6() { nfs_good '[::1]:/tls' xprtsec=tls "$NFS_EXPORT/tls" unauth ::1; }

DESC_nfs_mtls_ipv6="nfs: mount -o xprtsec=mtls by IPv6 address ([::1]) of the mtls-only export: read back, client certificate verified"
t_nfs_mtls_ipv6() { nfs_good '[::1]:/mtls' xprtsec=mtls "$NFS_EXPORT/mtls" x509 ::1; }

DESC_nfs_wrong_name="nfs: a server certificate without the mounted name (nfs-wrong.test): mount fails within $((WRONGNAME_MAX_MS / 1000)) s, name mismatch logged"
t_nfs_wrong_name() {
	local mark rc=0
	nfs_server || return 1
	mark=$(jmark)
	if nfs_mount nfs-wrong.test:/ xprtsec=tls; then
		fail "mount of nfs-wrong.test:/ SUCCEEDED (the certificate has no such name)"
		nfs_umount
		return 1
	fi
	diag "mount of nfs-wrong.test:/ refused as expected after ${MOUNT_MS} ms: $MOUNT_ERR"
	[ "$MOUNT_MS" -le "$WRONGNAME_MAX_MS" ] || { fail "the failing mount took ${MOUNT_MS} ms"; rc=1; }
	jneed "$mark" 'handshake failed: role=client auth=unauth .*errno=EACCES reason=server certificate rejected: .*name in the certificate does not match' || rc=1
	jdiag "$mark" 'handshake failed|rejected' 3
	return $rc
}

# --------------------------------------------------------------- systemd ---
# The installed unit under this distribution's systemd.

DESC_sd_start="systemctl start $UNIT (installed unit, Type=notify): active, ready line in its journal"
t_sd_start() {
	local rc t0 state
	write_config
	diag "unit $(systemctl show -p FragmentPath --value "$UNIT"), ExecStart $(prop ExecStart | sed -n 's/.*path=\([^ ;]*\).*/\1/p'), $(tlshd --version 2>&1 | head -n 1)"
	t0=$(now_ms)
	systemctl start "$UNIT" 2>>"$DIAG"
	rc=$?
	state=$(systemctl is-active "$UNIT")
	diag "systemctl start exited $rc after $(($(now_ms) - t0)) ms; is-active: $state; MainPID $(prop MainPID)"
	[ "$rc" = 0 ] && [ "$state" = active ] || { fail "$UNIT did not start"; return 1; }
	wait_for '[ "$(journalctl -u "$UNIT" -o cat --no-pager | grep -c "ready: serving TLS handshakes")" -ge 1 ]' 5 ||
		{ fail "no 'ready: serving TLS handshakes' line in journalctl -u $UNIT"; return 1; }
	journalctl -u "$UNIT" -o cat --no-pager | grep -E 'ready|keyring|credentials' | head -n 4 | sed 's/^/  tlshd: /' >>"$DIAG"
}

pstatus() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status" 2>/dev/null; }

DESC_sd_sandbox="sandbox of the running daemon (capabilities, no_new_privs, seccomp, namespaces, unit properties), exposure rated by this systemd <= ${MAX_EXPOSURE}"
t_sd_sandbox() {
	local pid rc=0 k v want sec level
	need_tlshd || return 1
	pid=$(prop MainPID)
	[ -n "$pid" ] && [ "$pid" != 0 ] || { fail "no MainPID"; return 1; }
	for k in CapBnd CapEff; do
		v=$(pstatus "$pid" $k)
		[ "$v" = 00000000000010e0 ] || { fail "$k=$v, want 00000000000010e0 (CAP_NET_ADMIN, CAP_SETGID, CAP_SETUID, CAP_KILL)"; rc=1; }
	done
	[ "$(pstatus "$pid" NoNewPrivs)" = 1 ] || { fail "NoNewPrivs is not 1"; rc=1; }
	[ "$(pstatus "$pid" Seccomp)" = 2 ] || { fail "Seccomp is not 2 (filter)"; rc=1; }
	diag "/proc/$pid/status: CapBnd=$(pstatus "$pid" CapBnd) CapEff=$(pstatus "$pid" CapEff) NoNewPrivs=$(pstatus "$pid" NoNewPrivs) Seccomp=$(pstatus "$pid" Seccomp)"
	# Nice=-10 for the daemon, 0 for its children (setpriority under
	# this systemd's filter).
	nice_check "$pid" || rc=1
	# Idle spares wait as a worker handshakes: unprivileged, filtered.
	spare_check "$pid" || rc=1
	for k in mnt uts; do
		[ "$(readlink "/proc/$pid/ns/$k")" != "$(readlink /proc/1/ns/$k)" ] ||
			{ fail "the daemon shares PID 1's $k namespace"; rc=1; }
	done
	# / is read-only for the daemon (ProtectSystem=strict).
	v=$(awk '$5 == "/" { print $6 }' "/proc/$pid/mountinfo" | tail -n 1)
	case ",$v," in *,ro,*) ;; *) fail "/ is mounted '$v' in the daemon's namespace, want ro"; rc=1 ;; esac
	systemctl show -p ProtectSystem,PrivateTmp,PrivateDevices,ProtectHome,NoNewPrivileges,MemoryDenyWriteExecute,ProtectKernelModules,ProtectKernelTunables,ProtectControlGroups,RestrictNamespaces,RestrictAddressFamilies,IPAddressDeny,KeyringMode,Type "$UNIT" >/tmp/show
	for want in ProtectSystem=strict PrivateTmp=yes PrivateDevices=yes ProtectHome=yes NoNewPrivileges=yes \
		MemoryDenyWriteExecute=yes ProtectKernelModules=yes ProtectKernelTunables=yes ProtectControlGroups=yes \
		RestrictNamespaces=yes KeyringMode=shared Type=notify; do
		v=$(sed -n "s/^${want%%=*}=//p" /tmp/show)
		[ "${want%%=*}=$v" = "$want" ] || { fail "systemctl show: ${want%%=*}=$v, want $want"; rc=1; }
	done
	v=$(sed -n 's/^RestrictAddressFamilies=//p' /tmp/show | tr ' ' '\n' | sort | tr '\n' ' ')
	[ "$v" = "AF_NETLINK AF_UNIX " ] || { fail "RestrictAddressFamilies=$v, want AF_NETLINK AF_UNIX"; rc=1; }
	sec=$(systemd-analyze security --no-pager "$UNIT" 2>&1)
	level=$(echo "$sec" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
	if [ -n "$level" ]; then
		diag "systemd-analyze security $UNIT (systemd $(systemctl --version | awk 'NR == 1 { print $2 }'), running unit): overall exposure $level (limit $MAX_EXPOSURE)"
		echo "$sec" | grep -E '^(✗|- )' | head -n 12 | sed -e 's/  */ /g' -e 's/^/  /' >>"$DIAG"
		awk -v l="$level" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(l <= m) }' || { fail "exposure $level > $MAX_EXPOSURE"; rc=1; }
	else
		fail "systemd-analyze security gave no overall exposure: $(echo "$sec" | tail -n 3 | tr '\n' ' ')"
		rc=1
	fi
	return $rc
}

# handshake_entries [MATCH...]: the handshake entries of the journal, one
# line each: OK or FAILED (by MESSAGE_ID), then the fields as NAME=value.
handshake_entries() {
	journalctl -q "$@" -o export --no-pager \
		--output-fields=MESSAGE_ID,TLSHD_ROLE,TLSHD_AUTH,TLSHD_RESULT,TLSHD_ERRNO,TLSHD_CIPHER,TLSHD_DURATION_MS,TLSHD_PEER,TLSHD_PEERNAME,TLSHD_REASON,TLSHD_WORKER_UID,_SYSTEMD_UNIT 2>/dev/null |
		awk -v ok="$MSGID_OK" -v bad="$MSGID_FAIL" '
		function flush() {
			if (f["MESSAGE_ID"] == ok || f["MESSAGE_ID"] == bad)
				printf "%s ROLE=%s AUTH=%s RESULT=%s ERRNO=%s CIPHER=%s DURATION_MS=%s WORKER_UID=%s UNIT=%s PEERNAME=%s REASON=%s\n",
					f["MESSAGE_ID"] == ok ? "OK" : "FAILED", f["TLSHD_ROLE"], f["TLSHD_AUTH"], f["TLSHD_RESULT"],
					f["TLSHD_ERRNO"], f["TLSHD_CIPHER"], f["TLSHD_DURATION_MS"], f["TLSHD_WORKER_UID"],
					f["_SYSTEMD_UNIT"], f["TLSHD_PEERNAME"], f["TLSHD_REASON"]
			delete f
		}
		/^$/ { flush(); next }
		{ i = index($0, "="); if (i > 1) f[substr($0, 1, i - 1)] = substr($0, i + 1) }
		END { flush() }'
}

DESC_sd_journal="journal: per-handshake entries (MESSAGE_ID, TLSHD_ROLE/AUTH/RESULT/ERRNO/CIPHER/DURATION_MS/PEERNAME/REASON) attributed to $UNIT; STATUS= counts them"
t_sd_journal() {
	local rc=0 all unit want st n
	handshake_entries SYSLOG_IDENTIFIER=tlshd >/tmp/hs.all
	handshake_entries -u "$UNIT" >/tmp/hs.unit
	all=$(wc -l </tmp/hs.all) unit=$(wc -l </tmp/hs.unit)
	diag "$all handshake entries with SYSLOG_IDENTIFIER=tlshd, $unit with journalctl -u $UNIT"
	[ "$all" -gt 0 ] && [ "$all" = "$unit" ] ||
		{ fail "$((all - unit)) of $all handshake entries are not attributed to $UNIT"; rc=1; }
	if [ -n "${H1NQN:-}" ]; then
		want="^OK ROLE=client AUTH=psk RESULT=succeeded ERRNO=0 CIPHER=TLS_[A-Z0-9_]+ DURATION_MS=[0-9]+ WORKER_UID=[0-9]+ UNIT=$UNIT "
		grep -q -E "$want" /tmp/hs.unit || { fail "no entry like '$want'"; rc=1; }
		grep -q -E "${want/client/server}" /tmp/hs.unit || { fail "no entry like '${want/client/server}'"; rc=1; }
	fi
	if [ "${NFS_STATE:-}" = ok ]; then
		for want in "^OK ROLE=client AUTH=unauth RESULT=succeeded .* PEERNAME=nfs.test " \
			"^OK ROLE=client AUTH=x509 RESULT=succeeded .* PEERNAME=::1 " \
			"^OK ROLE=server AUTH=x509 RESULT=succeeded " \
			"^FAILED ROLE=client AUTH=unauth RESULT=failed ERRNO=EACCES .*REASON=server certificate rejected"; do
			grep -q -E "$want" /tmp/hs.unit || { fail "no entry like '$want'"; rc=1; }
		done
	fi
	if echo " $TESTS " | grep -q ' nvme_wrong_key '; then
		grep -q -E '^FAILED ROLE=server AUTH=psk RESULT=failed ERRNO=E[A-Z]+ .*REASON=.+' /tmp/hs.unit ||
			{ fail "no failed server PSK entry with TLSHD_ERRNO and TLSHD_REASON"; rc=1; }
	fi
	# One of each kind, as examples.
	for want in 'OK ROLE=client AUTH=psk' 'OK ROLE=server AUTH=psk' 'OK ROLE=client AUTH=x509' \
		'OK ROLE=server AUTH=x509' 'FAILED ROLE=client' 'FAILED ROLE=server'; do
		grep -m 1 "^$want " /tmp/hs.unit | cut -c1-300 | sed 's/^/  /' >>"$DIAG"
	done
	n=$(grep -c '^OK ' /tmp/hs.unit)
	st=$(systemctl status --no-pager "$UNIT" 2>/dev/null | sed -n 's/^ *Status: "\(.*\)"$/\1/p')
	diag "systemctl status: Status: \"$st\""
	echo "$st" | grep -q -E "handshakes: [0-9]+ in flight, [1-9][0-9]* succeeded, [0-9]+ failed" ||
		{ fail "no 'Status: \"handshakes: N in flight, M succeeded, K failed\"' with M > 0 ($n good entries)"; rc=1; }
	return $rc
}

DESC_sd_reload="systemctl reload: a changed file is taken, a broken one rejected (same MainPID, still active), then a connect succeeds"
t_sd_reload() {
	local rc=0 pid0 mark r
	need_tlshd || return 1
	pid0=$(prop MainPID)
	mark=$(jmark)
	write_config 2
	systemctl reload "$UNIT" 2>>"$DIAG" || { fail "systemctl reload (good file) failed"; rc=1; }
	jneed "$mark" '^configuration reloaded$' || rc=1
	mark=$(jmark)
	printf '[debug\nloglevel=1\n' >"$CONF"
	systemctl reload "$UNIT" 2>>"$DIAG"
	r=$?
	[ "$r" = 0 ] || { fail "systemctl reload (broken file) exited $r"; rc=1; }
	jneed "$mark" 'rejected, keeping the current one' || rc=1
	jdiag "$mark" 'reload|rejected|malformed|tlshd.conf'
	[ "$(systemctl is-active "$UNIT")" = active ] || { fail "$UNIT is not active after the reloads"; rc=1; }
	[ "$(prop MainPID)" = "$pid0" ] || { fail "MainPID changed: $pid0 -> $(prop MainPID)"; rc=1; }
	write_config
	systemctl reload "$UNIT" 2>>"$DIAG"
	# Still serving.
	if [ -n "${H1NQN:-}" ]; then
		HOSTNQN=$H1NQN HOSTID=$H1ID
		mark=$(jmark)
		if nvme_cli_connect; then
			diag "nvme connect --tls after the reloads: nvme$CTRL in ${CONNECT_MS} ms"
			jneed "$mark" 'handshake succeeded: role=server auth=psk ' || rc=1
			nvme_cli_disconnect || rc=1
		else
			fail "nvme connect --tls after the reloads failed: $CONNECT_OUT"
			rc=1
		fi
	else
		diag "(no NVMe identity from nvme_sha256: no connect after the reloads)"
	fi
	return $rc
}

DESC_sd_stop="systemctl stop $UNIT: inactive, Result=success, exit status 0, 'shutting down' logged, no tlshd process left"
t_sd_stop() {
	local rc=0 mark r
	disconnect_all
	mark=$(jmark)
	systemctl stop "$UNIT" 2>>"$DIAG"
	r=$?
	systemctl show -p ActiveState,Result,ExecMainCode,ExecMainStatus "$UNIT" >/tmp/show.stop
	diag "systemctl stop exited $r; $(tr '\n' ' ' </tmp/show.stop)"
	[ "$r" = 0 ] || { fail "systemctl stop exited $r"; rc=1; }
	for want in ActiveState=inactive Result=success ExecMainCode=1 ExecMainStatus=0; do
		grep -qx "$want" /tmp/show.stop || { fail "want $want"; rc=1; }
	done
	jneed "$mark" 'shutting down' 5 || rc=1
	pidof tlshd >/dev/null && { fail "tlshd processes left: $(pidof tlshd)"; rc=1; }
	return $rc
}

# ------------------------------------------------------- Debian packages ---
# The package VM (PKG=1): Debian's own ktls-utils is installed, and the
# user has edited its configuration file; the tlshd package (/usr/src/$DEB,
# built in that root from this tree) goes over it with apt, serves NVMe/TLS
# with that configuration, and is purged.  The file is ktls-utils'
# conffile: /etc/tlshd.conf in Debian 13's ktls-utils 1.0.0 (its tlshd
# reads no other), /etc/tlshd/config where a later one ships that (1.4.0
# in testing).
USER_CONF=/etc/tlshd/config
if [ "${PKG:-0}" = 1 ]; then
	USER_CONF=$(dpkg-query -W -f='${Conffiles}\n' ktls-utils 2>/dev/null |
		awk '$1 == "/etc/tlshd.conf" || $1 == "/etc/tlshd/config" { print $1; exit }')
	USER_CONF=${USER_CONF:-/etc/tlshd/config}
fi
USER_RING=tlshd-user-ring
UNIT_FILE=/usr/lib/systemd/system/tlshd.service

pkgstat() { dpkg-query -W -f='${db:Status-Abbrev}${Version}' "$1" 2>/dev/null | tr -s ' ' ' '; }
owner() { dpkg-query -S "$1" 2>/dev/null | cut -d: -f1 | tr '\n' ' ' | sed 's/ $//'; }
conf_sum() { sha256sum "$USER_CONF" 2>/dev/null | cut -c1-16; }
# apt_diag FILE: the lines of apt's and dpkg's output that say what
# happened to which package.
apt_diag() {
	grep -E '^(The following|  |Removing|Unpacking|Setting up|Selecting|Purging|Preparing|dpkg|Note|W:|E:|[0-9]+ upgraded)|ktls-utils|tlshd' "$1" |
		grep -v -E '^\(Reading database' | head -n 30 | sed 's/^/  apt| /' >>"$DIAG"
}

DESC_pkg_ktls="Debian's ktls-utils with the user's $USER_CONF ([debug] loglevel=1, [authenticate] keyrings=$USER_RING): its $UNIT starts, active"
t_pkg_ktls() {
	local st rc=0
	st=$(pkgstat ktls-utils)
	diag "ktls-utils: '$st'; /usr/sbin/tlshd from $(owner /usr/sbin/tlshd); $UNIT from $(owner "$UNIT_FILE"); ktls-utils conffiles: $(dpkg-query -W -f='${Conffiles}' ktls-utils | awk 'NF { printf "%s ", $1 }')"
	case $st in ii*) ;; *) fail "ktls-utils is not installed"; return 1 ;; esac
	ls -d /etc/tlshd.conf /etc/tlshd/config 2>/dev/null | sort >/tmp/confs.before
	diag "configuration files before: $(tr '\n' ' ' </tmp/confs.before); the user's: $USER_CONF ($(owner "$USER_CONF" | sed 's/^$/no package/'))"
	mkdir -p "${USER_CONF%/*}"
	cat >"$USER_CONF" <<CONF
# The user's configuration, edited for ktls-utils' tlshd.
[debug]
loglevel=1
tls=0
nl=0

[authenticate]
keyrings=$USER_RING
CONF
	conf_sum >/tmp/user-conf.sum
	systemctl start "$UNIT" 2>>"$DIAG" || { fail "systemctl start $UNIT (ktls-utils) failed"; rc=1; }
	[ "$(systemctl is-active "$UNIT")" = active ] || { fail "ktls-utils' $UNIT is not active"; return 1; }
	diag "ktls-utils' $UNIT active, MainPID $(prop MainPID), ExecStart $(prop ExecStart | sed -n 's/.*argv\[\]=\([^;]*\);.*/\1/p')"
	journalctl -u "$UNIT" -o cat --no-pager | head -n 5 | sed 's/^/  ktls-utils tlshd: /' >>"$DIAG"
	return $rc
}

DESC_pkg_install="apt-get install ./$DEB over ktls-utils: ktls-utils removed, /usr/sbin/tlshd ours, $UNIT active with the user's $USER_CONF (unchanged), no configuration file made"
t_pkg_install() {
	local rc=0 mark st ver out pid
	mark=$(jmark)
	timeout 300 apt-get install -y "/usr/src/$DEB" >/tmp/apt.out 2>&1
	st=$?
	diag "apt-get install -y /usr/src/$DEB exited $st"
	apt_diag /tmp/apt.out
	[ "$st" = 0 ] || { fail "apt-get install failed"; tail -n 10 /tmp/apt.out | sed 's/^/  /' >>"$DIAG"; return 1; }
	st=$(pkgstat ktls-utils)
	diag "ktls-utils now: '${st:-not installed}'; tlshd: '$(pkgstat tlshd)'"
	case $st in ii*) fail "ktls-utils is still installed"; rc=1 ;; esac
	case $(pkgstat tlshd) in ii*) ;; *) fail "the tlshd package is not installed"; rc=1 ;; esac
	ver=$(dpkg-query -W -f='${Version}' tlshd)
	out=$(tlshd --version 2>&1 | head -n 1)
	diag "/usr/sbin/tlshd from $(owner /usr/sbin/tlshd), $UNIT from $(owner "$UNIT_FILE"); tlshd --version: $out"
	[ "$(owner /usr/sbin/tlshd)" = tlshd ] || { fail "/usr/sbin/tlshd is not the tlshd package's"; rc=1; }
	[ "$out" = "tlshd ${ver%%-*}" ] || { fail "tlshd --version: '$out', want 'tlshd ${ver%%-*}'"; rc=1; }
	wait_for '[ "$(systemctl is-active "$UNIT")" = active ]' 10 ||
		{ fail "$UNIT is $(systemctl is-active "$UNIT") after the installation"; rc=1; }
	pid=$(prop MainPID)
	diag "$UNIT $(systemctl is-active "$UNIT") ($(systemctl is-enabled "$UNIT" 2>&1)), MainPID $pid, $(readlink "/proc/$pid/exe" 2>/dev/null), unit $(prop FragmentPath)"
	jneed "$mark" "^configuration: $USER_CONF\$" || rc=1
	jneed "$mark" 'ready: serving TLS handshakes' || rc=1
	jdiag "$mark" 'configuration|ready|tlshd\.conf' 6
	[ "$(conf_sum)" = "$(cat /tmp/user-conf.sum)" ] ||
		{ fail "$USER_CONF changed: $(cat /tmp/user-conf.sum) -> $(conf_sum)"; rc=1; }
	ls -d /etc/tlshd.conf /etc/tlshd/config 2>/dev/null | sort >/tmp/confs.after
	cmp -s /tmp/confs.before /tmp/confs.after ||
		{ fail "configuration files were $(tr '\n' ' ' </tmp/confs.before), now $(tr '\n' ' ' </tmp/confs.after)"; rc=1; }
	[ ! -e /var/lib/tlshd/made-etc-tlshd.conf ] || { fail "postinst installed its own /etc/tlshd.conf"; rc=1; }
	diag "$USER_CONF unchanged (sha256 $(conf_sum)..., $(owner "$USER_CONF" | sed 's/^$/no package/')); configuration files: $(tr '\n' ' ' </tmp/confs.after); account: $(getent passwd tlshd)"
	return $rc
}

DESC_pkg_nvme="nvme-cli with the packaged tlshd: gen-tls-key --insert, nvme connect --tls, ${READ_MB} MiB read over kTLS, disconnect; the user's keyrings=$USER_RING looked up (debug log)"
t_pkg_nvme() {
	local mark rc=0
	mark=$(jmark)
	nvme_good 1 "TLS_[A-Z0-9_]+_SHA256" || rc=1
	jneed "$mark" "no keyring '$USER_RING' in /proc/keys" || rc=1
	jdiag "$mark" "$USER_RING" 2
	return $rc
}

DESC_pkg_purge="apt-get purge tlshd: package gone, $UNIT stopped and gone, no tlshd process, /usr/sbin/tlshd gone, the user's $USER_CONF kept as it was, no other configuration file"
t_pkg_purge() {
	local rc=0 st f left
	disconnect_all
	timeout 300 apt-get purge -y tlshd >/tmp/apt.out 2>&1
	st=$?
	diag "apt-get purge -y tlshd exited $st"
	apt_diag /tmp/apt.out
	[ "$st" = 0 ] || { fail "apt-get purge failed"; tail -n 10 /tmp/apt.out | sed 's/^/  /' >>"$DIAG"; return 1; }
	st=$(pkgstat tlshd)
	case $st in ''|pn*|un*) ;; *) fail "tlshd package state after purge: '$st'"; rc=1 ;; esac
	[ "$(systemctl is-active "$UNIT" 2>/dev/null)" != active ] || { fail "$UNIT still active"; rc=1; }
	pidof tlshd >/dev/null && { fail "tlshd processes left: $(pidof tlshd)"; rc=1; }
	for f in /usr/sbin/tlshd "$UNIT_FILE" /lib/systemd/system/tlshd.service /var/lib/tlshd /usr/share/tlshd; do
		[ ! -e "$f" ] || { fail "$f left after the purge"; rc=1; }
	done
	[ "$(conf_sum)" = "$(cat /tmp/user-conf.sum)" ] || { fail "$USER_CONF gone or changed: '$(conf_sum)'"; rc=1; }
	ls -d /etc/tlshd.conf /etc/tlshd/config 2>/dev/null | sort >/tmp/confs.after
	cmp -s /tmp/confs.before /tmp/confs.after ||
		{ fail "configuration files were $(tr '\n' ' ' </tmp/confs.before), now $(tr '\n' ' ' </tmp/confs.after)"; rc=1; }
	left=$(find /etc/systemd/system /var/lib/systemd/deb-systemd-helper-enabled /var/lib/systemd/deb-systemd-helper-masked \
		-name 'tlshd.service*' 2>/dev/null | tr '\n' ' ')
	[ -z "$left" ] || { fail "unit links left: $left"; rc=1; }
	diag "after the purge: tlshd '${st:-not known}', $UNIT $(systemctl is-active "$UNIT" 2>&1) ($(systemctl show -p LoadState --value "$UNIT")), ktls-utils '$(pkgstat ktls-utils)'"
	diag "left behind: $USER_CONF (sha256 $(conf_sum)..., $(owner "$USER_CONF" | sed 's/^$/no package/')); /etc/tlshd: $(ls /etc/tlshd 2>&1 | tr '\n' ' '); account: $(getent passwd tlshd || echo none)"
	return $rc
}

# ------------------------------------------------------------------ main ---
echo
echo "@@GUEST-UP@@ uptime=$(cut -d' ' -f1 /proc/uptime) kernel=$KVER"
case " $TESTS " in *" nfs_"*) nfs_server_setup ;; esac
# (The package's postinst starts tlshd.service, whose PrivateTmp= pulls in
# tmp.mount, which would hide the files of the test in /tmp halfway: /tmp
# is mounted first, as on a booted Debian 13.)
[ "${PKG:-0}" != 1 ] || systemctl start tmp.mount

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
		nfs_mounted && umount -f -l "$NFS_MNT" 2>/dev/null
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
