#!/bin/bash
# demo.sh [--no-deps] [--build-dir DIR]
#
# The "main job" on a fresh Debian 12 machine, as root:
#   1. install the build and VM packages (tools/install-deps.sh);
#   2. build tlshd out of tree (autoreconf -fi; configure; make);
#   3. since the host kernel has no "handshake" netlink family, boot the
#      Debian 6.12 cloud kernel under QEMU and run the NVMe/TCP-over-TLS
#      loopback scenario with the freshly built daemon handling both the
#      client and the server handshakes;
#   4. print the daemon's log and a short summary.
#
# Options / environment:
#   --no-deps              skip the package installation
#   --build-dir DIR        build directory (default: TLSHD_BUILD_DIR, else
#                          build/ in the source tree)
#   TLSHD_VM_CACHE         kernel/initramfs cache (default /var/cache/tlshd-vm)
set -euo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VM=$SRC/tests/vm
BUILD=${TLSHD_BUILD_DIR:-$SRC/build}
CACHE=${TLSHD_VM_CACHE:-/var/cache/tlshd-vm}
DEPS=1

while [ $# -gt 0 ]; do
	case $1 in
	--no-deps) DEPS=0; shift ;;
	--build-dir) BUILD=$2; shift 2 ;;
	*) echo "usage: $0 [--no-deps] [--build-dir DIR]" >&2; exit 1 ;;
	esac
done

step() { printf '\n==> %s\n' "$*"; }
die() { echo "demo: error: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (package installation, initramfs device nodes)"
T0=$(date +%s)

if [ "$DEPS" = 1 ]; then
	step "Installing packages"
	"$SRC/tools/install-deps.sh"
fi

step "Building tlshd in $BUILD"
(cd "$SRC" && autoreconf -fi)
mkdir -p "$BUILD"
# The same configuration as tools/check.sh and the README's install steps,
# so that the two commands share build/ in any order.
(cd "$BUILD" && "$SRC/configure" --prefix=/usr --sysconfdir=/etc && make -j"$(nproc)")
TLSHD=$BUILD/src/tlshd
[ -x "$TLSHD" ] || die "build produced no $TLSHD"

step "Fetching the test kernels (cached in $CACHE)"
"$VM/fetch-kernels.sh" "$CACHE"
KVER=$(grep '^6\.12\.' "$CACHE/kernels.list" | head -n 1)
[ -n "$KVER" ] || die "no 6.12 kernel in $CACHE/kernels.list"

step "Booting Linux $KVER under QEMU: NVMe/TCP over TLS loopback"
mkdir -p "$CACHE/initramfs" "$CACHE/logs"
INITRD=$CACHE/initramfs/demo-$KVER.cpio.gz
SERIAL=$CACHE/logs/demo-$KVER.serial.log
DLOG=$CACHE/logs/demo-$KVER.tlshd.log
"$VM/mkinitramfs.sh" "$CACHE/kernels/$KVER" "$INITRD" "$TLSHD"
VM_T0=$(date +%s)
rc=0
TAP=$("$VM/run-vm.sh" --scenarios 1 --log "$SERIAL" --daemon-log "$DLOG" \
	"$CACHE/kernels/$KVER" "$INITRD") || rc=$?
VM_S=$(($(date +%s) - VM_T0))
echo "$TAP"

step "Daemon log (tlshd -s, inside the VM)"
cat "$DLOG" 2>/dev/null || echo "(none)"

step "Summary"
succ=$(grep -c 'handshake succeeded' "$DLOG" 2>/dev/null || true)
fail=$(grep -c 'handshake failed' "$DLOG" 2>/dev/null || true)
echo "kernel:             $KVER"
echo "handshakes:         ${succ:-0} succeeded ($(grep -c 'succeeded: role=client' "$DLOG" 2>/dev/null || true) client, $(grep -c 'succeeded: role=server' "$DLOG" 2>/dev/null || true) server), ${fail:-0} failed"
echo "cipher(s):          $(grep -o 'cipher=[^ ]*' "$DLOG" 2>/dev/null | sort -u | sed 's/cipher=//' | tr '\n' ' ')"
echo "handshake time:     $(grep -o 'duration_ms=[0-9]*' "$DLOG" 2>/dev/null | sed 's/duration_ms=//' | tr '\n' ' ')ms"
echo "read over kTLS:     $(echo "$TAP" | sed -n 's/.*read \([0-9]*\) bytes.*/\1/p' | head -n 1) bytes"
echo "connect:            $(echo "$TAP" | sed -n 's/.*connected \(nvme[0-9]*\) in \([0-9]*\) ms.*/\1 in \2 ms/p' | head -n 1)"
echo "VM wall time:       ${VM_S} s (serial log: $SERIAL)"
echo "total:              $(($(date +%s) - T0)) s"

if [ "$rc" = 0 ] && echo "$TAP" | grep -q '^ok 1 '; then
	echo "RESULT:             PASS"
	exit 0
fi
echo "RESULT:             FAIL"
exit 1
