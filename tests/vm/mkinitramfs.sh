#!/bin/bash
# mkinitramfs.sh KERNEL_DIR OUTPUT [TLSHD_BIN [NFS_ROOT]]
#
# Build the test VM's initramfs (gzip'd newc cpio) for one kernel prepared by
# fetch-kernels.sh:
#   - busybox-static with its applet links (shell, modprobe, nc, dd, ...)
#   - the tlshd binary under test (TLSHD_BIN argument or environment),
#     keyctl, tests/memscan and tests/nvme-tls-peer (TLSHD_MEMSCAN and
#     TLSHD_NVME_TLS_PEER in the environment, if set), each with the
#     shared libraries ldd reports
#   - the NFS user space unpacked by fetch-nfs-utils.sh (NFS_ROOT argument or
#     TLSHD_VM_NFS_ROOT, e.g. $TLSHD_VM_CACHE/nfs-utils/root): mount.nfs,
#     rpc.nfsd, rpc.mountd, exportfs, rpcbind, rpcinfo with their libraries,
#     /etc/netconfig, /etc/services, /etc/protocols, /etc/rpc
#   - a test CA, server and client certificates and keys, generated now
#     (certtool) into /etc/tlshd: never stored anywhere but in the image
#   - KERNEL_DIR/lib/modules/<kver> (trimmed, uncompressed, depmod'ed)
#   - /etc/passwd, /etc/group, /etc/hosts, /init and the guest scenario script
#     with its fixtures (guest/fixture-*.sh) and function library
#     (guest/lib.sh)
#
# Without a tlshd binary (or NFS user space) the image is still built (the
# scenarios that need it then fail inside the guest and say why).
# Must run as root (device nodes, file ownership).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
GUEST=$HERE/guest

PROG=mkinitramfs
# shellcheck source=lib.sh
. "$HERE/lib.sh"

[ $# -ge 2 ] || die "usage: $0 KERNEL_DIR OUTPUT [TLSHD_BIN [NFS_ROOT]]"
KDIR=$1
OUT=$2
TLSHD_BIN=${3:-${TLSHD_BIN:-}}
NFS_ROOT=${4:-${TLSHD_VM_NFS_ROOT:-}}

image_kernel "$KDIR"
[ "$(id -u)" = 0 ] || die "must run as root"

find_static_busybox
KEYCTL=$(command -v keyctl) || die "keyctl not found (install keyutils)"
for t in cpio gzip ldd certtool openssl; do
	command -v "$t" >/dev/null || die "$t not found"
done

STAGE=$(mktemp -d "${TMPDIR:-/tmp}/tlshd-initramfs.XXXXXX")
# mktemp makes it 0700, and it becomes the guest's "/": workers, which
# leave root, must be able to traverse it as on any real system.
chmod 755 "$STAGE"
trap 'rm -rf "$STAGE"' EXIT

# Merged-/usr layout and device nodes (lib.sh), busybox and its applets.
image_skeleton
mkdir -p "$STAGE/tmp"
# (rpcbind listens on /run/rpcbind.sock; the kernel's rpcbind client
# connects to /var/run/rpcbind.sock.)
ln -s ../run "$STAGE/var/run"
install_busybox

# Binaries with their libraries; those unpacked under NFS_ROOT are
# preferred to the host's.
LIB_ROOT=$NFS_ROOT
copy_with_libs "$KEYCTL" usr/bin/keyctl
if [ -n "$TLSHD_BIN" ]; then
	[ -x "$TLSHD_BIN" ] || die "tlshd binary $TLSHD_BIN not found or not executable"
	copy_with_libs "$TLSHD_BIN" usr/sbin/tlshd
else
	echo "mkinitramfs: warning: no tlshd binary given; daemon scenarios will fail" >&2
fi
if [ -x "${TLSHD_NVME_TLS_PEER:-}" ]; then
	copy_with_libs "$TLSHD_NVME_TLS_PEER" usr/bin/nvme-tls-peer
else
	echo "mkinitramfs: warning: no nvme-tls-peer (TLSHD_NVME_TLS_PEER); the record size scenario will fail" >&2
fi
if [ -x "${TLSHD_MEMSCAN:-}" ]; then
	copy_with_libs "$TLSHD_MEMSCAN" usr/bin/memscan
else
	echo "mkinitramfs: warning: no memscan (TLSHD_MEMSCAN); the keyless workers scenario will fail" >&2
fi

install_modules "$KDIR"

# (rpcbind drops privileges to _rpc and exits if the user is unknown.)
cat >"$STAGE/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
_rpc:x:100:65534::/run/rpcbind:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
EOF
cat >"$STAGE/etc/group" <<'EOF'
root:x:0:
nogroup:x:65534:
EOF
# nfs.test is in the NFS server certificate, nfs-wrong.test is not.
cat >"$STAGE/etc/hosts" <<'EOF'
127.0.0.1 localhost nfs.test nfs-wrong.test
EOF
cat >"$STAGE/etc/nsswitch.conf" <<'EOF'
passwd: files
group: files
shadow: files
hosts: files
networks: files
protocols: files
services: files
rpc: files
EOF
ln -s /proc/self/mounts "$STAGE/etc/mtab"

# ------------------------------------------------------- NFS user space ---
if [ -n "$NFS_ROOT" ]; then
	install_nfs_userspace "$NFS_ROOT"
else
	echo "mkinitramfs: warning: no NFS user space given; NFS scenarios will fail" >&2
fi

# --------------------------------------------- test CA and certificates ---
# (lib.sh: generated per image; the CA key is not kept.)
make_test_pki "$STAGE/etc/tlshd"
pki_end ca

install -m 755 "$GUEST/init" "$STAGE/init"
install -m 755 "$GUEST/scenarios.sh" "$STAGE/usr/libexec/tlshd-vm/scenarios.sh"
install -m 644 "$GUEST/lib.sh" "$GUEST"/fixture-*.sh "$STAGE/usr/libexec/tlshd-vm/"

pack_image "$OUT" 6
echo "mkinitramfs: $OUT ($KVER, $(du -h "$OUT" | cut -f1))" >&2
