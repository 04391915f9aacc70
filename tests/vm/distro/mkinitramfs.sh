#!/bin/bash
# distro/mkinitramfs.sh OUTPUT ROOT KVER PAYLOAD_DIR
#
# The initramfs of a distro test VM (gzip'd newc cpio): busybox-static, the
# virtio_blk module of kernel KVER taken from the Debian root ROOT (mkroot.sh
# unpacked the kernel's modules there; uncompressed for busybox insmod),
# distro/init as /init, and PAYLOAD_DIR as /payload, which /init copies
# into the root before it starts systemd.  Must run as root.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PROG=distro-mkinitramfs
# shellcheck source=../lib.sh
. "$HERE/lib.sh"

[ $# -eq 4 ] || die "usage: $0 OUTPUT ROOT KVER PAYLOAD_DIR"
OUT=$1 ROOT=$2 KVER=$3 PAYLOAD=$4
[ "$(id -u)" = 0 ] || die "must run as root"
find_static_busybox

ko=$(find "$ROOT/usr/lib/modules/$KVER/kernel/drivers/block" -name 'virtio_blk.ko*' 2>/dev/null | head -n 1)
[ -n "$ko" ] || die "no virtio_blk module for $KVER under $ROOT/usr/lib/modules"
grep -q -E "^kernel/drivers/block/virtio_blk\.ko[^:]*:[[:space:]]*$" "$ROOT/usr/lib/modules/$KVER/modules.dep" ||
	die "virtio_blk of $KVER depends on other modules; this initramfs loads it alone"

STAGE=$(mktemp -d "${TMPDIR:-/tmp}/tlshd-distro-initramfs.XXXXXX")
chmod 755 "$STAGE"
trap 'rm -rf "$STAGE"' EXIT
image_skeleton
install_busybox
case $ko in
*.xz) xz -dc "$ko" >"$STAGE/virtio_blk.ko" ;;
*.zst) zstd -qdc "$ko" >"$STAGE/virtio_blk.ko" ;;
*) cp "$ko" "$STAGE/virtio_blk.ko" ;;
esac
install -m 755 "$HERE/distro/init" "$STAGE/init"
mkdir -p "$STAGE/payload"
cp -a "$PAYLOAD/." "$STAGE/payload/"
pack_image "$OUT" 1
