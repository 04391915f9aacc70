#!/bin/bash
# systemd-suite.sh: tlshd as a systemd service, in VMs with systemd as PID 1
# (TAP on stdout).
#
# Installs the build ("make install DESTDIR=<staging>"), builds for each
# test kernel (fetch-kernels.sh) an initramfs whose /init is the host's
# systemd, with the installed unit, binary, configuration and man pages,
# Debian 12's NFS user space (fetch-nfs-utils.sh) and test certificates
# (mkinitramfs-systemd.sh), boots the kernels in parallel (run-vm.sh) and
# merges the guests' TAP (systemd/test.sh, 13 checks per kernel) into one
# renumbered stream.
#
# Environment:
#   TLSHD_BUILDDIR       configured build directory to install from (default:
#                        two levels up from $TLSHD_BIN)
#   TLSHD_BIN            the daemon binary of that build (default:
#                        ../../src/tlshd relative to this script)
#   TLSHD_VM_CACHE       kernel cache (default /var/cache/tlshd-vm)
#   TLSHD_VM_LOGDIR      serial logs and guest journals (default
#                        $TLSHD_VM_CACHE/logs)
#   TLSHD_VM_KERNELS     only kernels whose version starts with one of these
#                        words, e.g. "6.12" (default: all fetched)
#   TLSHD_VM_JOBS        VMs booted in parallel (default: number of CPUs)
#   TLSHD_VM_TIMEOUT     per-VM timeout in seconds (default 600: under
#                        make -j2 check it shares the CPU with other suites)
#   TLSHD_VM_VERBOSE=1   print the guests' tlshd journal even when all passed
#   TLSHD_VM_REQUIRED=1  (or CI=true) a suite that cannot run is a failure,
#                        not a skip
#   TLSHD_VM_SKIP_EXIT   exit status of a skip (default 0: automake's
#                        tap-driver.sh needs the "1..0 # SKIP" plan and
#                        status 0)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# Suite functions (lib.sh): a suite that cannot run skips with exit 0 by
# default.
SUITE="systemd VM suite" SUITE_SKIP_EXIT=0 SUITE_SKIP_BANNER=0
# shellcheck source=lib.sh
. "$HERE/lib.sh"
SUITE_T0=$(date +%s.%N)
NTESTS=13

TLSHD_BIN=${TLSHD_BIN:-$HERE/../../src/tlshd}
BUILDDIR=${TLSHD_BUILDDIR:-$(dirname "$(dirname "$TLSHD_BIN")")}
CACHE=${TLSHD_VM_CACHE:-/var/cache/tlshd-vm}
LOGDIR=${TLSHD_VM_LOGDIR:-$CACHE/logs}
JOBS=${TLSHD_VM_JOBS:-$(nproc 2>/dev/null || echo 1)}
TIMEOUT=${TLSHD_VM_TIMEOUT:-600}

# ------------------------------------------------------ can we run at all ---
suite_preflight ldd:libc-bin make:make systemctl:systemd journalctl:systemd \
	certtool:gnutls-bin openssl:openssl
[ -x /usr/lib/systemd/systemd ] || [ -x /lib/systemd/systemd ] ||
	cannot_run "no systemd binary to boot as PID 1 (install systemd)"
[ -f "$BUILDDIR/Makefile" ] || cannot_run "no configured build directory '$BUILDDIR' (set TLSHD_BUILDDIR)"
BUILDDIR=$(cd "$BUILDDIR" && pwd)

suite_workdir tlshd-systemd-suite

# ---------------------------------------------------------------- kernels ---
t0=$(date +%s.%N)
suite_fetch "test kernels" fetch-kernels.sh
suite_fetch "NFS user space" fetch-nfs-utils.sh
NFS_ROOT=$CACHE/nfs-utils/root
FETCH_S=$(elapsed "$t0")
suite_select_kernels

# ---------------------------------------------------------------- install ---
# The real installation, as a package would do it.  (MAKEFLAGS of an outer
# "make check" must not leak into this make.)
STAGE=$WORK/stage
t0=$(date +%s.%N)
if ! env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u DESTDIR \
	make -C "$BUILDDIR" install DESTDIR="$STAGE" >"$WORK/install.log" 2>&1; then
	echo "1..1"
	echo "not ok 1 - make -C $BUILDDIR install DESTDIR=<staging> failed"
	tail -n 30 "$WORK/install.log" | sed 's/^/#   /'
	exit 1
fi
INSTALL_S=$(elapsed "$t0")

echo "1..$((NTESTS * ${#KERNELS[@]}))"
echo "# installed from $BUILDDIR in $INSTALL_S s:"
(cd "$STAGE" && find . -type f | sed 's/^\.//' | sort) | while read -r f; do
	echo "#   $f ($(stat -c %s "$STAGE$f") bytes)"
done
suite_print_kernels
echo "# NFS user space (Debian 12): $(tr '\n' ' ' <"$CACHE/nfs-utils/packages" | sed 's/ $//')"
echo "# kernels ready in $FETCH_S s; host systemd $(systemctl --version | awk 'NR == 1 { print $2 }'); logs in $LOGDIR"

# ------------------------------------------------------------ boot the VMs ---
run_kernel() {
	local kver=$1 dir=$2 t0
	t0=$(date +%s.%N)
	# (The image is rebuilt every run: it lives in the work directory, so
	# that concurrent runs do not share it.)
	suite_mkinitramfs "$dir" mkinitramfs-systemd.sh "$CACHE/kernels/$kver" \
		"$dir/initramfs.cpio.gz" "$STAGE" "$NFS_ROOT" || return 0
	elapsed "$t0" >"$dir/mkinitramfs.seconds"
	suite_run_vm "$dir" "$t0" --log "$LOGDIR/$kver.systemd.serial.log" \
		--daemon-log "$LOGDIR/$kver.systemd.journal.log" --timeout "$TIMEOUT" \
		"$CACHE/kernels/$kver" "$dir/initramfs.cpio.gz"
}

suite_boot_all run_kernel

# ------------------------------------------------------- merge TAP output ---
for kver in "${KERNELS[@]}"; do
	dir=$WORK/$kver
	serial=$LOGDIR/$kver.systemd.serial.log
	journal=$LOGDIR/$kver.systemd.journal.log
	echo "# ---- kernel $kver, systemd as PID 1 ----"
	if [ ! -f "$dir/error" ]; then
		grep '^mkinitramfs-systemd: unit=' "$dir/mkinitramfs.log" | sed 's/^mkinitramfs-systemd: /# image: /'
		suite_guest_times "$serial"
		echo "# VM wall time $(cat "$dir/seconds") s (initramfs $(cat "$dir/mkinitramfs.seconds") s, then boot + tests); test unit started at ${GUEST_UP:-?} s, done at ${GUEST_DONE:-?} s of guest uptime"
	fi
	# The guest's TAP, renumbered; a test without a result is a failure.
	suite_merge_tap "$kver" "systemd test" "$serial" $(seq 1 "$NTESTS")

	if [ -s "$journal" ]; then
		echo "# guest journal: $journal ($(handshake_summary "$journal"))"
		if [ "$KFAILED" != 0 ] || [ "${TLSHD_VM_VERBOSE:-0}" = 1 ]; then
			grep -E 'tlshd|systemd\[1\]' "$journal" | tail -n 60 | sed 's/^/#   journal| /'
		fi
	elif [ "$KFAILED" != 0 ] && [ -f "$serial" ]; then
		echo "# no guest journal came back; last lines of $serial:"
		tail -n 40 "$serial" | sed 's/^/#   serial| /'
	fi
done

echo "# $SUITE wall time: $(elapsed "$SUITE_T0") s for ${#KERNELS[@]} kernel(s), $FAILED failure(s)"
[ "$FAILED" = 0 ]
