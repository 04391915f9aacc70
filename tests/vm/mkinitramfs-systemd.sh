#!/bin/bash
# mkinitramfs-systemd.sh KERNEL_DIR OUTPUT STAGING_DIR NFS_ROOT
#
# Build the initramfs (gzip'd newc cpio) of the systemd test VM
# (systemd-suite.sh) for one kernel prepared by fetch-kernels.sh:
#   - /init is the host's systemd (252 on Debian 12) with systemd-journald,
#     systemd-shutdown, systemctl, journalctl and systemd-analyze, each with
#     the shared libraries ldd reports; a few unit files of the host
#     (journald and its sockets, the targets tlshd.service names) and the
#     test's own units from systemd/ (default.target -> tlshd-vm.target);
#   - busybox-static with its applet links (sh, modprobe, kill, dd, ...;
#     no systemd binary is replaced) and keyctl;
#   - every file of STAGING_DIR, a "make install DESTDIR=STAGING_DIR" of the
#     daemon: the unit, the binary its ExecStart= names (plus libraries),
#     the configuration file and the man pages, at their installed paths;
#   - KERNEL_DIR/lib/modules/<kver> (trimmed, uncompressed, depmod'ed: the
#     same module tree mkinitramfs.sh copies);
#   - the NFS user space unpacked by fetch-nfs-utils.sh under NFS_ROOT and
#     the test certificates in /etc/tlshd, as mkinitramfs.sh installs them
#     (lib.sh), plus a second, "public-style" CA that is the whole system
#     trust store (/etc/ssl/certs/ca-certificates.crt, the file GnuTLS
#     reads by default) and a client certificate it issued
#     (public-client.pem);
#   - the guest test script (systemd/test.sh) with its function library
#     (guest/lib.sh, shared with the scenarios of mkinitramfs.sh), two
#     fixtures of those scenarios (guest/fixture-daemon.sh for the daemon
#     started by hand, guest/fixture-nfs.sh) and an environment file naming
#     the installed unit, binary and configuration file.
# Prints "mkinitramfs-systemd: unit=... exec=... config=..." on stderr.
# Must run as root (device nodes, file ownership).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=$HERE/systemd

PROG=mkinitramfs-systemd
# shellcheck source=lib.sh
. "$HERE/lib.sh"

[ $# -eq 4 ] || die "usage: $0 KERNEL_DIR OUTPUT STAGING_DIR NFS_ROOT"
KDIR=$1 OUT=$2 INST=$3 NFS_ROOT=$4

image_kernel "$KDIR"
[ -d "$INST" ] || die "staging directory $INST missing"
INST=$(cd "$INST" && pwd)
[ "$(id -u)" = 0 ] || die "must run as root"

find_static_busybox
KEYCTL=$(command -v keyctl) || die "keyctl not found (install keyutils)"
for t in cpio gzip ldd certtool openssl; do
	command -v "$t" >/dev/null || die "$t not found"
done

# systemd of the host.  (systemd-executor exists from systemd 255 on.)
SD_LIBEXEC=
for d in /usr/lib/systemd /lib/systemd; do
	[ -x "$d/systemd" ] && { SD_LIBEXEC=$d; break; }
done
[ -n "$SD_LIBEXEC" ] || die "systemd not found (install systemd)"
SD_UNITS=
for d in /usr/lib/systemd/system /lib/systemd/system; do
	[ -f "$d/systemd-journald.service" ] && { SD_UNITS=$d; break; }
done
[ -n "$SD_UNITS" ] || die "systemd-journald.service not found (install systemd)"
for t in systemctl journalctl; do
	command -v "$t" >/dev/null || die "$t not found (install systemd)"
done

# --- the installed daemon ---------------------------------------------------
UNIT=$(cd "$INST" && find . -name tlshd.service -path '*/systemd/system/*' | head -n 1)
[ -n "$UNIT" ] || die "no systemd/system/tlshd.service under $INST (make install DESTDIR=...?)"
UNIT=${UNIT#.}
# ExecStart=[-@:+!]PATH ARGS...
EXEC=$(sed -n 's/^ExecStart=[-@:+!]*\([^ ]*\).*/\1/p' "$INST$UNIT" | head -n 1)
[ -n "$EXEC" ] || die "$UNIT has no ExecStart="
[ -x "$INST$EXEC" ] || die "ExecStart=$EXEC of $UNIT is not in the staging tree"
# The configuration file the binary reads by default (its --help says).
CONF=$("$INST$EXEC" --help 2>&1 | sed -n 's/.*read FILE instead of \([^ ]*\).*/\1/p' | head -n 1)
[ -n "$CONF" ] || die "cannot tell the default configuration file from '$EXEC --help'"
[ -f "$INST$CONF" ] || die "$CONF (the default configuration) was not installed"

STAGE=$(mktemp -d "${TMPDIR:-/tmp}/tlshd-initramfs-sd.XXXXXX")
# mktemp makes it 0700, and it becomes the guest's "/": workers, which
# leave root, must be able to traverse it as on any real system.
chmod 755 "$STAGE"
trap 'rm -rf "$STAGE"' EXIT

# Merged-/usr layout and device nodes (lib.sh).  (Binaries are copied with
# their libraries by copy_with_libs, lib.sh.)
image_skeleton
mkdir -p "$STAGE/etc/systemd" "$STAGE/var/log" "$STAGE/tmp" "$STAGE/var/tmp"
# (rpcbind listens on /run/rpcbind.sock; the kernel's rpcbind client
# connects to /var/run/rpcbind.sock.)
ln -s ../run "$STAGE/var/run"
chmod 1777 "$STAGE/tmp" "$STAGE/var/tmp"

# --- systemd ----------------------------------------------------------------
for b in systemd systemd-journald systemd-shutdown systemd-executor; do
	[ -x "$SD_LIBEXEC/$b" ] && copy_with_libs "$SD_LIBEXEC/$b" "usr/lib/systemd/$b"
done
for b in systemctl journalctl systemd-analyze; do
	p=$(command -v "$b") && copy_with_libs "$p" "usr/bin/$b"
done
ln -s usr/lib/systemd/systemd "$STAGE/init"
ln -s ../lib/systemd/systemd "$STAGE/usr/sbin/init"

U=$STAGE/usr/lib/systemd/system
mkdir -p "$U/sockets.target.wants"
for u in systemd-journald.service systemd-journald.socket systemd-journald-dev-log.socket \
	sockets.target local-fs.target remote-fs-pre.target remote-fs.target shutdown.target; do
	[ -f "$SD_UNITS/$u" ] && cp "$SD_UNITS/$u" "$U/$u"
done
ln -s ../systemd-journald.socket "$U/sockets.target.wants/systemd-journald.socket"
ln -s ../systemd-journald-dev-log.socket "$U/sockets.target.wants/systemd-journald-dev-log.socket"
install -m 644 "$SRC/tlshd-vm.target" "$SRC/tlshd-vm-test.service" "$U/"
ln -s tlshd-vm.target "$U/default.target"
install -m 644 "$SRC/system.conf" "$STAGE/etc/systemd/system.conf"

# --- busybox and keyctl (no existing file is replaced) ----------------------
install_busybox
copy_with_libs "$KEYCTL" usr/bin/keyctl

# --- the installed daemon: every file of the staging tree --------------------
(cd "$INST" && find . ! -type d -print0) | while IFS= read -r -d '' f; do
	f=${f#.}
	mkdir -p "$STAGE$(dirname "$f")"
	cp -a "$INST$f" "$STAGE$f"
done
copy_with_libs "$INST$EXEC" "${EXEC#/}"

# --- NFS user space and test certificates (lib.sh) -------------------------
install_nfs_userspace "$NFS_ROOT"
make_test_pki "$STAGE/etc/tlshd"
# The "public" CA: trusted system-wide, never named in the daemon's
# configuration; a client certificate from it must not authenticate a
# client to nfsd.
pki_ca public-ca "tlshd-vm public-style root CA"
pki_client public-ca public-client
pki_end ca public-ca
install -D -m 644 "$STAGE/etc/tlshd/public-ca.pem" "$STAGE/etc/ssl/certs/ca-certificates.crt"

# --- kernel modules -----------------------------------------------------------
install_modules "$KDIR"

# --- /etc ---------------------------------------------------------------------
# (rpcbind drops privileges to _rpc and exits if the user is unknown.)
cat >"$STAGE/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
_rpc:x:100:65534::/run/rpcbind:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
EOF
cat >"$STAGE/etc/group" <<'EOF'
root:x:0:
systemd-journal:x:101:
nogroup:x:65534:
EOF
# nfs.test is in the NFS server certificate, nfs-wrong.test is not.
echo 127.0.0.1 localhost nfs.test nfs-wrong.test >"$STAGE/etc/hosts"
printf '%s: files\n' passwd group shadow hosts networks protocols services rpc >"$STAGE/etc/nsswitch.conf"
echo tlshd-vm >"$STAGE/etc/hostname"
if [ -f /usr/lib/os-release ]; then
	cp /usr/lib/os-release "$STAGE/usr/lib/os-release"
else
	printf 'NAME=Linux\nID=linux\n' >"$STAGE/usr/lib/os-release"
fi
ln -s ../usr/lib/os-release "$STAGE/etc/os-release"
# A fresh machine id per image (the journal files are named after it).
tr -d '-' </proc/sys/kernel/random/uuid >"$STAGE/etc/machine-id"
ln -s ../proc/self/mounts "$STAGE/etc/mtab"

install -m 755 "$SRC/test.sh" "$STAGE/usr/libexec/tlshd-vm/systemd-test.sh"
install -m 644 "$HERE/guest/lib.sh" "$HERE/guest/fixture-daemon.sh" "$HERE/guest/fixture-nfs.sh" \
	"$STAGE/usr/libexec/tlshd-vm/"
cat >"$STAGE/usr/libexec/tlshd-vm/systemd-test.env" <<EOF
TLSHD_UNIT_PATH='$UNIT'
TLSHD_EXEC='$EXEC'
TLSHD_CONF='$CONF'
EOF

pack_image "$OUT" 1
echo "mkinitramfs-systemd: unit=$UNIT exec=$EXEC config=$CONF" >&2
echo "mkinitramfs-systemd: $OUT ($KVER, $(du -h "$OUT" | cut -f1))" >&2
