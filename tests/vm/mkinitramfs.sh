#!/bin/bash
# mkinitramfs.sh KERNEL_DIR OUTPUT [TLSHD_BIN]
#
# Build the test VM's initramfs (gzip'd newc cpio) for one kernel prepared by
# fetch-kernels.sh:
#   - busybox-static with its applet links (shell, modprobe, nc, dd, ...)
#   - the tlshd binary under test (TLSHD_BIN argument or environment) and
#     keyctl, each with the shared libraries ldd reports
#   - KERNEL_DIR/lib/modules/<kver> (trimmed, uncompressed, depmod'ed)
#   - /etc/passwd, /etc/group, /init and the guest scenario script
#
# Without a tlshd binary the image is still built (the scenarios that need
# the daemon then fail inside the guest and say why).
# Must run as root (device nodes, file ownership).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
GUEST=$HERE/guest

die() { echo "mkinitramfs: error: $*" >&2; exit 1; }

[ $# -ge 2 ] || die "usage: $0 KERNEL_DIR OUTPUT [TLSHD_BIN]"
KDIR=$1
OUT=$2
TLSHD_BIN=${3:-${TLSHD_BIN:-}}

[ -f "$KDIR/vmlinuz" ] || die "$KDIR/vmlinuz missing (run fetch-kernels.sh)"
KVER=$(ls "$KDIR/lib/modules" 2>/dev/null | head -n 1)
[ -n "$KVER" ] || die "no modules under $KDIR/lib/modules"
[ "$(id -u)" = 0 ] || die "must run as root"

BUSYBOX=
for b in /bin/busybox /usr/bin/busybox; do
	[ -x "$b" ] && { BUSYBOX=$b; break; }
done
[ -n "$BUSYBOX" ] || die "busybox not found (install busybox-static)"
# The dynamic "busybox" package also installs /bin/busybox; we need the
# static one (no libraries to carry, full applet set).
if ldd "$BUSYBOX" >/dev/null 2>&1; then
	die "$BUSYBOX is dynamically linked (install busybox-static)"
fi
KEYCTL=$(command -v keyctl) || die "keyctl not found (install keyutils)"
for t in cpio gzip ldd; do
	command -v "$t" >/dev/null || die "$t not found"
done

STAGE=$(mktemp -d "${TMPDIR:-/tmp}/tlshd-initramfs.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT

# Merged-/usr layout, like the host: /bin, /sbin, /lib, /lib64 are links.
mkdir -p "$STAGE"/{usr/bin,usr/sbin,usr/lib,usr/lib64,usr/libexec/tlshd-vm,etc,dev,proc,sys,tmp,root,run,var}
ln -s usr/bin "$STAGE/bin"
ln -s usr/sbin "$STAGE/sbin"
ln -s usr/lib "$STAGE/lib"
ln -s usr/lib64 "$STAGE/lib64"

# The kernel opens /dev/console before it runs /init (devtmpfs comes later).
mknod -m 600 "$STAGE/dev/console" c 5 1
mknod -m 666 "$STAGE/dev/null" c 1 3

# busybox and its applets (no existing file is replaced).
cp "$BUSYBOX" "$STAGE/usr/bin/busybox"
"$BUSYBOX" --list-full | while read -r applet; do
	applet=${applet#/}
	case $applet in
	bin/*|sbin/*) applet=usr/$applet ;;
	esac
	[ -e "$STAGE/$applet" ] || [ -L "$STAGE/$applet" ] && continue
	mkdir -p "$STAGE/$(dirname "$applet")"
	ln -s /usr/bin/busybox "$STAGE/$applet"
done

# Copy a dynamically linked binary to DEST (path inside the image), with the
# libraries ldd resolves (kept at the paths ldd prints; /lib is a link into
# /usr/lib as on the host).
copy_with_libs() {
	local bin=$1 dest=$2 lib
	rm -f "$STAGE/$dest"
	install -D -m 755 "$bin" "$STAGE/$dest"
	for lib in $(ldd "$bin" 2>/dev/null | grep -o -E '/[^ ]+'); do
		[ -e "$STAGE$lib" ] && continue
		mkdir -p "$STAGE$(dirname "$lib")"
		cp -L "$lib" "$STAGE$lib"
	done
}

copy_with_libs "$KEYCTL" usr/bin/keyctl
if [ -n "$TLSHD_BIN" ]; then
	[ -x "$TLSHD_BIN" ] || die "tlshd binary $TLSHD_BIN not found or not executable"
	copy_with_libs "$TLSHD_BIN" usr/sbin/tlshd
else
	echo "mkinitramfs: warning: no tlshd binary given; daemon scenarios will fail" >&2
fi

mkdir -p "$STAGE/usr/lib/modules"
cp -a "$KDIR/lib/modules/$KVER" "$STAGE/usr/lib/modules/$KVER"

cat >"$STAGE/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
EOF
cat >"$STAGE/etc/group" <<'EOF'
root:x:0:
nogroup:x:65534:
EOF
echo 127.0.0.1 localhost >"$STAGE/etc/hosts"

install -m 755 "$GUEST/init" "$STAGE/init"
install -m 755 "$GUEST/scenarios.sh" "$STAGE/usr/libexec/tlshd-vm/scenarios.sh"

mkdir -p "$(dirname "$OUT")"
(cd "$STAGE" && find . -print0 | LC_ALL=C sort -z |
	cpio --null --create --format=newc --owner=0:0 --quiet) | gzip -6 >"$OUT.tmp"
mv "$OUT.tmp" "$OUT"
echo "mkinitramfs: $OUT ($KVER, $(du -h "$OUT" | cut -f1))" >&2
