#!/bin/bash
# run-vm.sh [options] KERNEL_DIR INITRAMFS
#
# Boot one test VM under QEMU (TCG) and print the guest's TAP block
# (the lines between @@TAP-BEGIN@@ and @@TAP-END@@) on stdout.
#
# Options:
#   --log FILE          serial console log (default: a temporary file that
#                       is removed on success and kept on failure)
#   --timeout SECONDS   overall QEMU timeout (default ${TLSHD_VM_TIMEOUT:-300})
#   --scenarios LIST    comma-separated scenario numbers (default: all)
#   --daemon-log FILE   also write the guest's daemon log to FILE
#   --disk IMAGE        attach a raw disk image (virtio, /dev/vda) with
#                       snapshot=on (the guest's writes are thrown away),
#                       and give the guest 2048 MiB (distro-suite.sh)
#   --append TEXT       add TEXT to the kernel command line
#   --mem MIB           guest memory (default 1024, 2048 with --disk); the
#                       kernel's cap on pending handshake requests is one
#                       per 400 MiB (3..50)
#   --cpus N            guest vCPUs (default 1; tools/bench.sh --cpus)
#
# Exit status: 0 if the TAP block came back complete (whatever the test
# results in it), 2 if it did not (VM crashed, hung or timed out), 1 on
# usage/setup errors.
set -euo pipefail

die() { echo "run-vm: error: $*" >&2; exit 1; }

LOG='' TIMEOUT=${TLSHD_VM_TIMEOUT:-300} SCENARIOS='' DAEMON_LOG=''
DISK='' EXTRA_APPEND='' MEM_ARG='' CPUS=1
while [ $# -gt 0 ]; do
	case $1 in
	--log) LOG=$2; shift 2 ;;
	--timeout) TIMEOUT=$2; shift 2 ;;
	--scenarios) SCENARIOS=$2; shift 2 ;;
	--daemon-log) DAEMON_LOG=$2; shift 2 ;;
	--disk) DISK=$2; shift 2 ;;
	--append) EXTRA_APPEND=$2; shift 2 ;;
	--mem) MEM_ARG=$2; shift 2 ;;
	--cpus) CPUS=$2; shift 2 ;;
	--) shift; break ;;
	-*) die "unknown option $1" ;;
	*) break ;;
	esac
done
[ $# -eq 2 ] || die "usage: $0 [--log FILE] [--timeout S] [--scenarios 1,2] KERNEL_DIR INITRAMFS"
KDIR=$1 INITRD=$2
[ -f "$KDIR/vmlinuz" ] || die "$KDIR/vmlinuz missing"
[ -f "$INITRD" ] || die "$INITRD missing"
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 not found (install qemu-system-x86)"

KEEP_LOG=1
if [ -z "$LOG" ]; then
	LOG=$(mktemp "${TMPDIR:-/tmp}/tlshd-vm-serial.XXXXXX")
	KEEP_LOG=0
fi

APPEND="console=ttyS0 quiet panic=-1"
[ -n "$SCENARIOS" ] && APPEND="$APPEND tlshd_vm.scenarios=$SCENARIOS"
[ -n "$EXTRA_APPEND" ] && APPEND="$APPEND $EXTRA_APPEND"
MEM=1024 DISK_ARGS=()
if [ -n "$DISK" ]; then
	[ -f "$DISK" ] || die "$DISK missing"
	MEM=2048
	DISK_ARGS=(-drive "file=$DISK,if=virtio,format=raw,snapshot=on")
fi
[ -z "$MEM_ARG" ] || MEM=$MEM_ARG

# -cpu max,cx16=off: Debian 12's QEMU 7.2 corrupts EFLAGS under TCG around
# cmpxchg16b (random guest panics); with it off, 2 vCPUs boot reliably
# too, but one keeps the suites simple and leaves the host's other core
# to the VM running beside it.
# No -enable-kvm: stock kernels cannot use this host's /dev/kvm.
# Output goes to the log file; stdin is /dev/null (no terminal in CI).
rc=0
timeout --kill-after=10 "$TIMEOUT" \
	qemu-system-x86_64 -cpu max,cx16=off -smp "$CPUS" -m "$MEM" \
	-nographic -no-reboot -nodefaults -serial stdio \
	-kernel "$KDIR/vmlinuz" -initrd "$INITRD" "${DISK_ARGS[@]}" \
	-append "$APPEND" </dev/null >"$LOG" 2>&1 || rc=$?

# The serial console turns \n into \r\n, and the firmware clears the
# screen with escape sequences: drop both.
sed -i -e 's/\r$//' -e 's/\x1b\[[0-9;?]*[A-Za-z]//g' -e 's/\x1bc//g' "$LOG"

if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
	echo "run-vm: QEMU timed out after $TIMEOUT s (log: $LOG)" >&2
elif [ "$rc" != 0 ]; then
	echo "run-vm: QEMU exited with status $rc (log: $LOG)" >&2
fi

if [ -n "$DAEMON_LOG" ]; then
	sed -n '/^@@DAEMON-LOG-BEGIN@@$/,/^@@DAEMON-LOG-END@@$/p' "$LOG" | sed '1d;$d' >"$DAEMON_LOG"
fi

# Print the TAP block (also a partial one, so the caller sees what ran).
sed -n '/^@@TAP-BEGIN@@$/,/^@@TAP-END@@$/p' "$LOG" | grep -v -E '^@@TAP-(BEGIN|END)@@$' || true

if grep -q '^@@TAP-END@@$' "$LOG"; then
	[ "$KEEP_LOG" = 1 ] || rm -f "$LOG"
	exit 0
fi
echo "run-vm: no complete TAP block in the serial output; last lines of $LOG:" >&2
tail -n 40 "$LOG" | sed 's/^/run-vm:   /' >&2
exit 2
