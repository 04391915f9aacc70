#!/bin/bash
# systemd-suite.sh: tlshd as a systemd service, in VMs with systemd as PID 1
# (TAP on stdout).
#
# Installs the build ("make install DESTDIR=<staging>"), builds for each
# test kernel (fetch-kernels.sh) an initramfs whose /init is the host's
# systemd, with the installed unit, binary, configuration and man pages
# (mkinitramfs-systemd.sh), boots the kernels in parallel (run-vm.sh) and
# merges the guests' TAP (systemd/test.sh, 6 checks per kernel) into one
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
#   TLSHD_VM_TIMEOUT     per-VM timeout in seconds (default 300)
#   TLSHD_VM_VERBOSE=1   print the guests' tlshd journal even when all passed
#   TLSHD_VM_REQUIRED=1  (or CI=true) a suite that cannot run is a failure,
#                        not a skip
#   TLSHD_VM_SKIP_EXIT   exit status of a skip (default 0: automake's
#                        tap-driver.sh needs the "1..0 # SKIP" plan and
#                        status 0)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SUITE_T0=$(date +%s.%N)
NTESTS=6

TLSHD_BIN=${TLSHD_BIN:-$HERE/../../src/tlshd}
BUILDDIR=${TLSHD_BUILDDIR:-$(dirname "$(dirname "$TLSHD_BIN")")}
CACHE=${TLSHD_VM_CACHE:-/var/cache/tlshd-vm}
LOGDIR=${TLSHD_VM_LOGDIR:-$CACHE/logs}
JOBS=${TLSHD_VM_JOBS:-$(nproc 2>/dev/null || echo 1)}
TIMEOUT=${TLSHD_VM_TIMEOUT:-300}

required() { [ "${CI:-}" = true ] || [ "${TLSHD_VM_REQUIRED:-0}" = 1 ]; }

# The suite cannot run here: skip loudly, or fail when it is required.
cannot_run() {
	local why=$1 banner
	banner="############################################################"
	{
		echo "$banner"
		echo "# tlshd systemd VM suite NOT RUN: $why"
		echo "$banner"
	} >&2
	if required; then
		echo "1..1"
		echo "not ok 1 - systemd VM suite could not run: $why"
		echo "# (CI=true or TLSHD_VM_REQUIRED=1: not running the VM suite is a failure)"
		exit 1
	fi
	echo "1..0 # SKIP systemd VM suite could not run: $why"
	echo "# (set CI=true or TLSHD_VM_REQUIRED=1 to make this a failure)"
	exit "${TLSHD_VM_SKIP_EXIT:-0}"
}

elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

# ------------------------------------------------------ can we run at all ---
[ "$(id -u)" = 0 ] || cannot_run "must run as root (initramfs device nodes)"
for tool in qemu-system-x86_64:qemu-system-x86 busybox:busybox-static \
	keyctl:keyutils cpio:cpio depmod:kmod xz:xz-utils gzip:gzip ldd:libc-bin \
	apt-get:apt dpkg-deb:dpkg flock:util-linux timeout:coreutils make:make \
	systemctl:systemd journalctl:systemd; do
	command -v "${tool%%:*}" >/dev/null || cannot_run "${tool%%:*} not found (install ${tool#*:})"
done
[ -x /usr/lib/systemd/systemd ] || [ -x /lib/systemd/systemd ] ||
	cannot_run "no systemd binary to boot as PID 1 (install systemd)"
if ! qemu-system-x86_64 -accel help 2>/dev/null | grep -qx tcg; then
	cannot_run "qemu-system-x86_64 has no TCG accelerator"
fi
[ -f "$BUILDDIR/Makefile" ] || cannot_run "no configured build directory '$BUILDDIR' (set TLSHD_BUILDDIR)"
BUILDDIR=$(cd "$BUILDDIR" && pwd)

mkdir -p "$CACHE" "$LOGDIR" 2>/dev/null || cannot_run "cannot create $CACHE / $LOGDIR"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tlshd-systemd-suite.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# ---------------------------------------------------------------- kernels ---
t0=$(date +%s.%N)
if ! "$HERE/fetch-kernels.sh" "$CACHE" >"$WORK/fetch.log" 2>&1; then
	sed 's/^/# /' "$WORK/fetch.log" >&2
	cannot_run "test kernels could not be fetched: $(grep 'error:' "$WORK/fetch.log" | tail -n 1)"
fi
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
grep '^fetch-kernels: kernel ' "$WORK/fetch.log" | sed 's/^fetch-kernels: /# /'
echo "# kernels ready in $FETCH_S s; host systemd $(systemctl --version | awk 'NR == 1 { print $2 }'); logs in $LOGDIR"

# ------------------------------------------------------------ boot the VMs ---
run_kernel() {
	local kver=$1
	local dir=$WORK/$kver t0 rc=0
	mkdir -p "$dir"
	t0=$(date +%s.%N)
	# (The image is rebuilt every run: it lives in the work directory, so
	# that concurrent runs do not share it.)
	if ! "$HERE/mkinitramfs-systemd.sh" "$CACHE/kernels/$kver" \
		"$dir/initramfs.cpio.gz" "$STAGE" >"$dir/mkinitramfs.log" 2>&1; then
		echo "initramfs" >"$dir/error"
		return
	fi
	elapsed "$t0" >"$dir/mkinitramfs.seconds"
	"$HERE/run-vm.sh" --log "$LOGDIR/$kver.systemd.serial.log" \
		--daemon-log "$LOGDIR/$kver.systemd.journal.log" --timeout "$TIMEOUT" \
		"$CACHE/kernels/$kver" "$dir/initramfs.cpio.gz" >"$dir/tap" 2>"$dir/run.log" || rc=$?
	echo "$rc" >"$dir/rc"
	elapsed "$t0" >"$dir/seconds"
}

pids=()
for kver in "${KERNELS[@]}"; do
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
	serial=$LOGDIR/$kver.systemd.serial.log
	journal=$LOGDIR/$kver.systemd.journal.log
	kfailed=0
	echo "# ---- kernel $kver, systemd as PID 1 ----"
	if [ -f "$dir/error" ]; then
		sed 's/^/# /' "$dir/mkinitramfs.log"
	else
		grep '^mkinitramfs-systemd: unit=' "$dir/mkinitramfs.log" | sed 's/^mkinitramfs-systemd: /# image: /'
		up=$(sed -n 's/.*@@GUEST-UP@@ uptime=\([0-9.]*\).*/\1/p' "$serial" 2>/dev/null | head -n 1)
		done_at=$(sed -n 's/^@@GUEST-DONE@@ uptime=\([0-9.]*\).*/\1/p' "$serial" 2>/dev/null | head -n 1)
		echo "# VM wall time $(cat "$dir/seconds") s (initramfs $(cat "$dir/mkinitramfs.seconds") s, then boot + tests); test unit started at ${up:-?} s, done at ${done_at:-?} s of guest uptime"
		[ "$(cat "$dir/rc")" = 0 ] || sed 's/^/# /' "$dir/run.log"
	fi

	# One block per test: its result line and the "#" lines after it.
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
				printf '# %s\n' "$line" >>"$dir/block.$cur"
			fi
		done <"$dir/tap"
	fi
	[ -f "$dir/block.header" ] && cat "$dir/block.header"
	for n in $(seq 1 "$NTESTS"); do
		num=$((base + n))
		if [ -f "$dir/block.$n" ]; then
			sed "1s/@@N@@/$num/" "$dir/block.$n"
			head -n 1 "$dir/block.$n" | grep -q '^not ok' && kfailed=$((kfailed + 1))
		else
			if [ -f "$dir/error" ]; then
				why="initramfs could not be built"
			else
				why="no result from the VM (crashed, hung or timed out; see $serial)"
			fi
			echo "not ok $num - [$label] systemd test $n: $why"
			kfailed=$((kfailed + 1))
		fi
	done
	base=$((base + NTESTS))
	FAILED=$((FAILED + kfailed))

	if [ -s "$journal" ]; then
		echo "# guest journal: $journal ($(grep -c 'handshake succeeded' "$journal" || true) succeeded, $(grep -c 'handshake failed' "$journal" || true) failed handshakes)"
		if [ "$kfailed" != 0 ] || [ "${TLSHD_VM_VERBOSE:-0}" = 1 ]; then
			grep -E 'tlshd|systemd\[1\]' "$journal" | tail -n 60 | sed 's/^/#   journal| /'
		fi
	elif [ "$kfailed" != 0 ] && [ -f "$serial" ]; then
		echo "# no guest journal came back; last lines of $serial:"
		tail -n 40 "$serial" | sed 's/^/#   serial| /'
	fi
done

echo "# systemd VM suite wall time: $(elapsed "$SUITE_T0") s for ${#KERNELS[@]} kernel(s), $FAILED failure(s)"
[ "$FAILED" = 0 ]
