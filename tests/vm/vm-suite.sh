#!/bin/bash
# vm-suite.sh: the "make check" entry point of the VM tests (TAP on stdout).
#
# Fetches the test kernels (fetch-kernels.sh) and Debian 12's NFS user space
# (fetch-nfs-utils.sh), builds an initramfs with the daemon under test for
# each kernel (mkinitramfs.sh), boots each under QEMU (run-vm.sh) and merges
# the per-kernel TAP blocks into one renumbered TAP stream: plan
# 1..(kernels x scenarios), "#" lines for diagnostics.
#
# Scenarios (guest/scenarios.sh): 1-5 NVMe/TCP over TLS (PSK), 6-9 NFS over
# TLS (X.509: tls, mtls, wrong server name, client certificate from the
# kernel keyring), 10-14 hostile load (stalled, trickling and alerting
# peers, the daemon stopped and resumed, a reload during a burst, the
# parent's memory and fds over hundreds of handshakes), 15 a peer taking
# small records (RFC 8449 record_size_limit, kTLS TLS_TX_MAX_PAYLOAD_LEN),
# 16-17 keyless workers (no private key in a worker's memory mid-handshake,
# the key holder's; escapes under the worker's filter killed; both need a
# daemon built with --enable-test-hooks).
#
# Environment:
#   TLSHD_BIN            daemon binary to test (default: ../../src/tlshd
#                        relative to this script)
#   TLSHD_MEMSCAN        tests/memscan, the private key search of the keyless
#                        workers scenario (same default place)
#   TLSHD_NVME_TLS_PEER  tests/nvme-tls-peer, the small-record NVMe/TCP host
#                        of scenario 15 (default: ../tests/nvme-tls-peer
#                        relative to TLSHD_BIN, i.e. in its build tree)
#   TLSHD_VM_CACHE       kernel/initramfs cache (default /var/cache/tlshd-vm)
#   TLSHD_VM_LOGDIR      serial and daemon logs (default $TLSHD_VM_CACHE/logs)
#   TLSHD_VM_KERNELS     only kernels whose version starts with one of these
#                        words, e.g. "6.12" (default: all fetched)
#   TLSHD_VM_SCENARIOS   scenario numbers, e.g. "1 3" (default: 1 2 ... 17, all)
#   TLSHD_VM_JOBS        VMs booted in parallel (default: number of CPUs)
#   TLSHD_VM_TIMEOUT     per-VM timeout in seconds (default 900)
#   TLSHD_VM_VERBOSE=1   print the daemon logs even when everything passed
#   TLSHD_VM_REQUIRED=1  (or CI=true) a suite that cannot run is a failure,
#                        not a skip
#   TLSHD_VM_SKIP_EXIT   exit status of a skip (default 77; note that
#                        automake's tap-driver.sh reports any non-zero exit
#                        as an ERROR, the "1..0 # SKIP" plan is what it needs)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# Suite functions (lib.sh): a suite that cannot run skips with exit 77 by
# default, and repeats its "NOT RUN" banner on stdout.
SUITE="VM suite" SUITE_SKIP_EXIT=77 SUITE_SKIP_BANNER=1
# shellcheck source=lib.sh
. "$HERE/lib.sh"
SUITE_T0=$(date +%s.%N)

TLSHD_BIN=${TLSHD_BIN:-$HERE/../../src/tlshd}
CACHE=${TLSHD_VM_CACHE:-/var/cache/tlshd-vm}
LOGDIR=${TLSHD_VM_LOGDIR:-$CACHE/logs}
SCENARIOS=$(echo "${TLSHD_VM_SCENARIOS:-1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17}" | tr ',' ' ')
JOBS=${TLSHD_VM_JOBS:-$(nproc 2>/dev/null || echo 1)}
TIMEOUT=${TLSHD_VM_TIMEOUT:-900}

# ------------------------------------------------------ can we run at all ---
suite_preflight certtool:gnutls-bin openssl:openssl
[ -x "$TLSHD_BIN" ] || cannot_run "daemon binary '$TLSHD_BIN' not found (set TLSHD_BIN)"
TLSHD_BIN=$(cd "$(dirname "$TLSHD_BIN")" && pwd)/$(basename "$TLSHD_BIN")
# (mkinitramfs.sh packs it; without it scenario 15 fails in the guest.)
export TLSHD_NVME_TLS_PEER=${TLSHD_NVME_TLS_PEER:-$(dirname "$TLSHD_BIN")/../tests/nvme-tls-peer}
export TLSHD_MEMSCAN=${TLSHD_MEMSCAN:-$(dirname "$TLSHD_BIN")/../tests/memscan}

suite_workdir tlshd-vm-suite

# ---------------------------------------------------------------- kernels ---
t0=$(date +%s.%N)
suite_fetch "test kernels" fetch-kernels.sh
suite_fetch "NFS user space" fetch-nfs-utils.sh
NFS_ROOT=$CACHE/nfs-utils/root
FETCH_S=$(elapsed "$t0")
suite_select_kernels

NSC=$(echo $SCENARIOS | wc -w)
echo "1..$((NSC * ${#KERNELS[@]}))"
echo "# tlshd under test: $TLSHD_BIN ($(stat -c '%s bytes, modified %y' "$TLSHD_BIN"))"
[ -x "$TLSHD_NVME_TLS_PEER" ] || echo "# no nvme-tls-peer at $TLSHD_NVME_TLS_PEER (make check TESTS=): scenario 15 will fail"
suite_print_kernels
echo "# NFS user space (Debian 12): $(tr '\n' ' ' <"$CACHE/nfs-utils/packages" | sed 's/ $//')"
echo "# kernels ready in $FETCH_S s; logs in $LOGDIR"

# ------------------------------------------------------------ boot the VMs ---
# Runs in the background, one per kernel: initramfs, boot, collect.
run_kernel() {
	local kver=$1 dir=$2 t0
	t0=$(date +%s.%N)
	suite_mkinitramfs "$dir" mkinitramfs.sh "$CACHE/kernels/$kver" "$CACHE/initramfs/$kver.cpio.gz" \
		"$TLSHD_BIN" "$NFS_ROOT" || return 0
	suite_run_vm "$dir" "$t0" --log "$LOGDIR/$kver.serial.log" --daemon-log "$LOGDIR/$kver.tlshd.log" \
		--timeout "$TIMEOUT" --scenarios "$(echo $SCENARIOS | tr ' ' ,)" \
		"$CACHE/kernels/$kver" "$CACHE/initramfs/$kver.cpio.gz"
}

mkdir -p "$CACHE/initramfs"
suite_boot_all run_kernel

# ------------------------------------------------------- merge TAP output ---
for kver in "${KERNELS[@]}"; do
	serial=$LOGDIR/$kver.serial.log
	echo "# ---- kernel $kver ----"
	if [ ! -f "$WORK/$kver/error" ]; then
		suite_guest_times "$serial"
		echo "# VM wall time $(cat "$WORK/$kver/seconds") s (initramfs + boot + tests); guest userspace up at ${GUEST_UP:-?} s, tests done at ${GUEST_DONE:-?} s of guest uptime"
	fi
	# The guest's TAP, renumbered in scenario order; a scenario without a
	# result is a failure.
	suite_merge_tap "$kver" scenario "$serial" $SCENARIOS

	dlog=$LOGDIR/$kver.tlshd.log
	if [ -f "$dlog" ]; then
		echo "# daemon log: $dlog ($(handshake_summary "$dlog"))"
		if [ "$FAILED" != 0 ] || [ "${TLSHD_VM_VERBOSE:-0}" = 1 ]; then
			sed 's/^/#   tlshd| /' "$dlog"
		fi
	fi
done

echo "# $SUITE wall time: $(elapsed "$SUITE_T0") s for ${#KERNELS[@]} kernel(s), $FAILED failure(s)"
[ "$FAILED" = 0 ]
