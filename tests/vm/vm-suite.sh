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
# kernel keyring).
#
# Environment:
#   TLSHD_BIN            daemon binary to test (default: ../../src/tlshd
#                        relative to this script)
#   TLSHD_VM_CACHE       kernel/initramfs cache (default /var/cache/tlshd-vm)
#   TLSHD_VM_LOGDIR      serial and daemon logs (default $TLSHD_VM_CACHE/logs)
#   TLSHD_VM_KERNELS     only kernels whose version starts with one of these
#                        words, e.g. "6.12" (default: all fetched)
#   TLSHD_VM_SCENARIOS   scenario numbers, e.g. "1 3" (default: 1 2 3 4 5 6 7 8 9)
#   TLSHD_VM_JOBS        VMs booted in parallel (default: number of CPUs)
#   TLSHD_VM_TIMEOUT     per-VM timeout in seconds (default 300)
#   TLSHD_VM_VERBOSE=1   print the daemon logs even when everything passed
#   TLSHD_VM_REQUIRED=1  (or CI=true) a suite that cannot run is a failure,
#                        not a skip
#   TLSHD_VM_SKIP_EXIT   exit status of a skip (default 77; note that
#                        automake's tap-driver.sh reports any non-zero exit
#                        as an ERROR, the "1..0 # SKIP" plan is what it needs)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SUITE_T0=$(date +%s.%N)

TLSHD_BIN=${TLSHD_BIN:-$HERE/../../src/tlshd}
CACHE=${TLSHD_VM_CACHE:-/var/cache/tlshd-vm}
LOGDIR=${TLSHD_VM_LOGDIR:-$CACHE/logs}
SCENARIOS=$(echo "${TLSHD_VM_SCENARIOS:-1 2 3 4 5 6 7 8 9}" | tr ',' ' ')
JOBS=${TLSHD_VM_JOBS:-$(nproc 2>/dev/null || echo 1)}
TIMEOUT=${TLSHD_VM_TIMEOUT:-300}

required() { [ "${CI:-}" = true ] || [ "${TLSHD_VM_REQUIRED:-0}" = 1 ]; }

# The suite cannot run here: skip loudly, or fail when it is required.
cannot_run() {
	local why=$1 banner
	banner="############################################################"
	{
		echo "$banner"
		echo "# tlshd VM suite NOT RUN: $why"
		echo "$banner"
	} >&2
	if required; then
		echo "1..1"
		echo "not ok 1 - VM suite could not run: $why"
		echo "# (CI=true or TLSHD_VM_REQUIRED=1: not running the VM suite is a failure)"
		exit 1
	fi
	echo "1..0 # SKIP VM suite could not run: $why"
	echo "$banner"
	echo "# tlshd VM suite NOT RUN: $why"
	echo "# (set CI=true or TLSHD_VM_REQUIRED=1 to make this a failure)"
	echo "$banner"
	exit "${TLSHD_VM_SKIP_EXIT:-77}"
}

elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

# ------------------------------------------------------ can we run at all ---
[ "$(id -u)" = 0 ] || cannot_run "must run as root (initramfs device nodes)"
for tool in qemu-system-x86_64:qemu-system-x86 busybox:busybox-static \
	keyctl:keyutils cpio:cpio depmod:kmod xz:xz-utils gzip:gzip \
	apt-get:apt dpkg-deb:dpkg flock:util-linux timeout:coreutils \
	certtool:gnutls-bin openssl:openssl; do
	command -v "${tool%%:*}" >/dev/null || cannot_run "${tool%%:*} not found (install ${tool#*:})"
done
if ! qemu-system-x86_64 -accel help 2>/dev/null | grep -qx tcg; then
	cannot_run "qemu-system-x86_64 has no TCG accelerator"
fi
[ -x "$TLSHD_BIN" ] || cannot_run "daemon binary '$TLSHD_BIN' not found (set TLSHD_BIN)"
TLSHD_BIN=$(cd "$(dirname "$TLSHD_BIN")" && pwd)/$(basename "$TLSHD_BIN")

mkdir -p "$CACHE" "$LOGDIR" 2>/dev/null || cannot_run "cannot create $CACHE / $LOGDIR"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tlshd-vm-suite.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# ---------------------------------------------------------------- kernels ---
t0=$(date +%s.%N)
if ! "$HERE/fetch-kernels.sh" "$CACHE" >"$WORK/fetch.log" 2>&1; then
	sed 's/^/# /' "$WORK/fetch.log" >&2
	cannot_run "test kernels could not be fetched: $(grep 'error:' "$WORK/fetch.log" | tail -n 1)"
fi
if ! "$HERE/fetch-nfs-utils.sh" "$CACHE" >>"$WORK/fetch.log" 2>&1; then
	sed 's/^/# /' "$WORK/fetch.log" >&2
	cannot_run "NFS user space could not be fetched: $(grep 'error:' "$WORK/fetch.log" | tail -n 1)"
fi
NFS_ROOT=$CACHE/nfs-utils/root
FETCH_S=$(elapsed "$t0")

KERNELS=()
while read -r kver; do
	[ -n "$kver" ] || continue
	if [ -n "${TLSHD_VM_KERNELS:-}" ]; then
		keep=0
		for want in ${TLSHD_VM_KERNELS//,/ }; do
			case $kver in "$want"*) keep=1 ;; esac
		done
		[ "$keep" = 1 ] || continue
	fi
	KERNELS+=("$kver")
done <"$CACHE/kernels.list"
[ "${#KERNELS[@]}" -gt 0 ] || cannot_run "no test kernel selected (TLSHD_VM_KERNELS='${TLSHD_VM_KERNELS:-}')"

NSC=$(echo $SCENARIOS | wc -w)
echo "1..$((NSC * ${#KERNELS[@]}))"
echo "# tlshd under test: $TLSHD_BIN ($(stat -c '%s bytes, modified %y' "$TLSHD_BIN"))"
grep '^fetch-kernels: kernel ' "$WORK/fetch.log" | sed 's/^fetch-kernels: /# /'
echo "# NFS user space (Debian 12): $(tr '\n' ' ' <"$CACHE/nfs-utils/packages" | sed 's/ $//')"
echo "# kernels ready in $FETCH_S s; logs in $LOGDIR"

# ------------------------------------------------------------ boot the VMs ---
# Runs in the background, one per kernel: initramfs, boot, collect.
run_kernel() {
	local kver=$1
	local dir=$WORK/$kver t0 rc=0
	mkdir -p "$dir"
	t0=$(date +%s.%N)
	if ! "$HERE/mkinitramfs.sh" "$CACHE/kernels/$kver" "$CACHE/initramfs/$kver.cpio.gz" "$TLSHD_BIN" \
		"$NFS_ROOT" >"$dir/mkinitramfs.log" 2>&1; then
		echo "initramfs" >"$dir/error"
		return
	fi
	"$HERE/run-vm.sh" --log "$LOGDIR/$kver.serial.log" --daemon-log "$LOGDIR/$kver.tlshd.log" \
		--timeout "$TIMEOUT" --scenarios "$(echo $SCENARIOS | tr ' ' ,)" \
		"$CACHE/kernels/$kver" "$CACHE/initramfs/$kver.cpio.gz" >"$dir/tap" 2>"$dir/run.log" || rc=$?
	echo "$rc" >"$dir/rc"
	elapsed "$t0" >"$dir/seconds"
}

mkdir -p "$CACHE/initramfs"
pids=()
for kver in "${KERNELS[@]}"; do
	# Keep at most $JOBS VMs running.
	while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do
		wait -n || true
	done
	run_kernel "$kver" &
	pids+=($!)
done
wait "${pids[@]}" || true

# ------------------------------------------------------- merge TAP output ---
FAILED=0
base=0
for kver in "${KERNELS[@]}"; do
	dir=$WORK/$kver
	label=${kver%%[+-]*}
	serial=$LOGDIR/$kver.serial.log
	echo "# ---- kernel $kver ----"
	if [ -f "$dir/error" ]; then
		sed 's/^/# /' "$dir/mkinitramfs.log"
	else
		up=$(sed -n 's/.*@@GUEST-UP@@ uptime=\([0-9.]*\).*/\1/p' "$serial" 2>/dev/null | head -n 1)
		done_at=$(sed -n 's/^@@GUEST-DONE@@ .*uptime=\([0-9.]*\).*/\1/p' "$serial" 2>/dev/null | head -n 1)
		echo "# VM wall time $(cat "$dir/seconds") s (initramfs + boot + tests); guest userspace up at ${up:-?} s, tests done at ${done_at:-?} s of guest uptime"
		[ "$(cat "$dir/rc")" = 0 ] || sed 's/^/# /' "$dir/run.log"
	fi

	# Split the guest's TAP into a header and one block per scenario (a
	# result line plus the "#" lines after it), then print them renumbered
	# in scenario order; a scenario without a result is a failure.
	rm -f "$dir"/block.*
	cur=header
	if [ -f "$dir/tap" ]; then
		while IFS= read -r line; do
			if [[ $line =~ ^(ok|not\ ok)\ ([0-9]+)(\ .*)?$ ]]; then
				cur=${BASH_REMATCH[2]}
				printf '%s %s%s\n' "${BASH_REMATCH[1]}" "@@N@@" "${BASH_REMATCH[3]}" >"$dir/block.$cur"
			elif [[ $line =~ ^1\.\.[0-9]+$ ]]; then
				continue
			elif [[ $line == \#* ]]; then
				printf '%s\n' "$line" >>"$dir/block.$cur"
			else
				# Anything else (e.g. QEMU's own messages) as a comment.
				printf '# %s\n' "$line" >>"$dir/block.$cur"
			fi
		done <"$dir/tap"
	fi
	[ -f "$dir/block.header" ] && cat "$dir/block.header"
	i=0
	for n in $SCENARIOS; do
		i=$((i + 1))
		num=$((base + i))
		if [ -f "$dir/block.$n" ]; then
			sed "1s/@@N@@/$num/" "$dir/block.$n"
			head -n 1 "$dir/block.$n" | grep -q '^not ok' && FAILED=$((FAILED + 1))
		else
			if [ -f "$dir/error" ]; then
				why="initramfs could not be built"
			else
				why="no result from the VM (crashed, hung or timed out; see $serial)"
			fi
			echo "not ok $num - [$label] scenario $n: $why"
			FAILED=$((FAILED + 1))
		fi
	done
	base=$((base + NSC))

	dlog=$LOGDIR/$kver.tlshd.log
	if [ -f "$dlog" ]; then
		echo "# daemon log: $dlog ($(grep -c 'handshake succeeded' "$dlog" || true) succeeded, $(grep -c 'handshake failed' "$dlog" || true) failed handshakes)"
		if [ "$FAILED" != 0 ] || [ "${TLSHD_VM_VERBOSE:-0}" = 1 ]; then
			sed 's/^/#   tlshd| /' "$dlog"
		fi
	fi
done

echo "# VM suite wall time: $(elapsed "$SUITE_T0") s for ${#KERNELS[@]} kernel(s), $FAILED failure(s)"
[ "$FAILED" = 0 ]
