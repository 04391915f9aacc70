#!/bin/bash
# tools/bench.sh [options]: how fast tlshd serves the kernel, next to
# Debian's ktls-utils and a bare GnuTLS handshake (make bench; not a test).
#
# Makes a Debian 13 user space (tests/vm/mkroot.sh, from the machine's own
# package mirror, cached) holding Debian's ktls-utils (its tlshd and unit,
# installed with apt at bench time) and this tree built in /opt/tlshd with
# bench/tlshd-floor, boots it on the newest test kernel under QEMU (TCG,
# one vCPU) and runs tests/vm/bench/guest.sh there: latency rounds
# alternating between the three, a reconnect storm, memory, throughput,
# the key holder's cost.
# A second boot with more guest memory repeats the storm with a larger
# pending-request cap.  Both agents see the same kernel, GnuTLS, nvme
# modules and load; nothing else runs in the guest.  The key holder's
# cost is measured once more natively on this machine (chroot into the
# same user space), because TCG inflates context switches.
#
# Options:
#   --runs N          latency boots (default 1; the figures of each are
#                     printed)
#   --rounds N        latency rounds per boot (default 5)
#   --controllers N   controllers connected at once per round (default 6)
#   --storm N         controllers in the storm (default 16)
#   --mem MIB         guest memory of the main boot (default 1536: cap 3)
#   --cpus N          guest vCPUs of every boot (default 1, as in the
#                     issue's figures; with 2, the host's two cores are
#                     both QEMU's, and the daemon's forks, exits and log
#                     writes can run beside the handshakes)
#   --big-mem MIB     guest memory of the storm boot (default 8192: cap 20;
#                     0: no second boot)
#   --parts LIST      parts of the main boot (default "latency serial storm
#                     memory throughput keyholder"; also "profile": one
#                     tlshd round under perf record)
#   --reconnect-delay S  nvme-tcp reconnect_delay of the controllers
#                     (default 1: a refused request is retried after 1 s)
#   --alt DIR         a second tlshd tree (a change to measure): built in
#                     the same user space into /opt/tlshd-alt, it takes
#                     turns with the others in the latency rounds, has
#                     its own storm after tlshd's, and is reported beside
#                     this tree's, as tlshd-alt
#
# Environment: TLSHD_SRCDIR (default: this tree), TLSHD_VM_CACHE,
# TLSHD_VM_ROOTS, TLSHD_VM_LOGDIR as for the VM suites.  Must run as root,
# on a quiet machine: everything is CPU-bound under TCG.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/../tests/vm" && pwd)
PROG=bench
# shellcheck source=../tests/vm/lib.sh
. "$HERE/lib.sh"

RUNS=1 ROUNDS=5 CONTROLLERS=6 STORM=16 MEM=1536 BIG_MEM=8192 RECONNECT_DELAY=1 ALT= CPUS=1
PARTS="latency serial storm memory throughput keyholder"
while [ $# -gt 0 ]; do
	case $1 in
	--runs) RUNS=$2; shift 2 ;;
	--rounds) ROUNDS=$2; shift 2 ;;
	--controllers) CONTROLLERS=$2; shift 2 ;;
	--storm) STORM=$2; shift 2 ;;
	--mem) MEM=$2; shift 2 ;;
	--cpus) CPUS=$2; shift 2 ;;
	--big-mem) BIG_MEM=$2; shift 2 ;;
	--parts) PARTS=$2; shift 2 ;;
	--reconnect-delay) RECONNECT_DELAY=$2; shift 2 ;;
	--alt) ALT=$(cd "$2" && pwd) || die "no tree $2"; shift 2 ;;
	*) die "unknown option $1 (see the head of $0)" ;;
	esac
done
[ "$(id -u)" = 0 ] || die "must run as root"

SRCDIR=$(cd "${TLSHD_SRCDIR:-$HERE/../..}" && pwd)
CACHE=${TLSHD_VM_CACHE:-/var/cache/tlshd-vm}
LOGDIR=${TLSHD_VM_LOGDIR:-$CACHE/logs}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tlshd-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$LOGDIR"

# The same user space as the distro suite's Debian 13, with ktls-utils.
PKGS=build-essential,autoconf,automake,libtool,pkg-config,libgnutls28-dev,libnl-genl-3-dev,libkeyutils-dev,libglib2.0-dev,libsystemd-dev
PKGS=$PKGS,systemd,mount,keyutils,kmod,iproute2,procps,openssl,gnutls-bin,nvme-cli,ktls-utils,linux-perf

t0=$(date +%s.%N)
"$HERE/fetch-kernels.sh" "$CACHE" >"$WORK/fetch.log" 2>&1 || { cat "$WORK/fetch.log" >&2; die "fetching the kernels failed"; }
KVER=$(tail -n 1 "$CACHE/kernels.list")
KDIR=$CACHE/kernels/$KVER
read -r _ kpkgver <"$KDIR/package"
MODDEB=$CACHE/debs/linux-modules-${KVER}_${kpkgver//:/%3a}_amd64.deb
[ -f "$MODDEB" ] || die "no modules package $MODDEB for $KVER"
log "making the Debian 13 user space (ktls-utils from the mirror, this tree in /opt/tlshd)"
"$HERE/mkroot.sh" --include "$PKGS" --src "$SRCDIR" --prefix /opt/tlshd \
	--modules-deb "$MODDEB" --image --info "$WORK/info" bench trixie >"$WORK/mkroot.log" 2>&1 ||
	{ tail -n 30 "$WORK/mkroot.log" >&2; die "mkroot.sh failed"; }
# shellcheck disable=SC1091
. "$WORK/info"
log "user space ready in $(elapsed "$t0") s: $OS, GnuTLS $GNUTLS, ktls-utils $KTLS_UTILS, kernel $KVER"

# build_alt: the --alt tree, configured and installed like this one but
# into /opt/tlshd-alt, in a chroot of the same user space.
build_alt() {
	local src=$ROOT/usr/src/tlshd-alt
	rm -rf "$src" "$ROOT/usr/src/tlshd-alt-build" "$ROOT/opt/tlshd-alt"
	mkdir -p "$src" "$ROOT/usr/src/tlshd-alt-build"
	(cd "$ALT" && git -c safe.directory='*' ls-files -z --cached --others --exclude-standard |
		tar --null -T - -cf -) | tar -xf - -C "$src"
	chroot "$ROOT" sh -c 'set -e; cd /usr/src/tlshd-alt; autoreconf -fi
		cd /usr/src/tlshd-alt-build
		../tlshd-alt/configure --prefix=/opt/tlshd-alt --sysconfdir=/etc --disable-vm-tests
		make -j"$(nproc)" && make install' >"$WORK/alt-build.log" 2>&1 ||
		{ tail -n 30 "$WORK/alt-build.log" >&2; die "building the --alt tree failed"; }
}
if [ -n "$ALT" ]; then
	log "building the --alt tree $ALT into /opt/tlshd-alt"
	build_alt
fi

MSGID_OK=$(sed -n 's/^#define TLSHD_MESSAGE_ID_SUCCEEDED[[:space:]]*"\([0-9a-f]*\)".*/\1/p' "$SRCDIR/src/log.h")

# boot NAME MEM PARTS: one benchmark VM; prints its report.
boot() {
	local name=$1 mem=$2 parts=$3 p=$WORK/$1/payload serial=$LOGDIR/bench-$1.serial.log
	mkdir -p "$p/usr/libexec/tlshd-vm" "$p/etc/systemd/system" "$p/etc/systemd/journald.conf.d"
	install -m 755 "$HERE/bench/guest.sh" "$p/usr/libexec/tlshd-vm/bench-guest.sh"
	install -m 644 "$HERE/guest/lib.sh" "$p/usr/libexec/tlshd-vm/lib.sh"
	install -m 644 "$HERE/bench/tlshd-bench.target" "$HERE/bench/tlshd-bench-run.service" \
		"$p/etc/systemd/system/"
	# tlshd under its own shipped unit, beside ktls-utils' tlshd.service.
	install -m 644 "$ROOT/opt/tlshd/lib/systemd/system/tlshd.service" \
		"$p/etc/systemd/system/tlshd-bench.service"
	if [ -n "$ALT" ]; then
		mkdir -p "$p/opt"
		cp -a "$ROOT/opt/tlshd-alt" "$p/opt/"
		install -m 644 "$ROOT/opt/tlshd-alt/lib/systemd/system/tlshd.service" \
			"$p/etc/systemd/system/tlshd-alt-bench.service"
	fi
	cat >"$p/usr/libexec/tlshd-vm/bench.env" <<-EOF
	ROUNDS=$ROUNDS
	CONTROLLERS=$CONTROLLERS
	STORM=$STORM
	PARTS='$parts'
	MSGID_OK=$MSGID_OK
	RECONNECT_DELAY=$RECONNECT_DELAY
	ALT=$([ -n "$ALT" ] && echo 1 || echo 0)
	EOF
	echo tlshd-bench >"$p/etc/hostname"
	tr -d '-' </proc/sys/kernel/random/uuid >"$p/etc/machine-id"
	printf '[Journal]\nStorage=volatile\nRateLimitBurst=0\n' >"$p/etc/systemd/journald.conf.d/tlshd-vm.conf"
	"$HERE/distro/mkinitramfs.sh" "$WORK/$name/initramfs.cpio.gz" "$ROOT" "$KVER" "$p" \
		>"$WORK/$name/mkinitramfs.log" 2>&1 || { cat "$WORK/$name/mkinitramfs.log" >&2; die "initramfs failed"; }
	echo "== $name: guest memory $mem MiB, parts: $parts =="
	local t0 rc=0
	t0=$(date +%s.%N)
	# (no_hash_pointers: the handshake tracepoints print the consumer's
	# socket as the kprobe on handshake_req_submit() does, see guest.sh.)
	"$HERE/run-vm.sh" --log "$serial" --timeout 3600 --mem "$mem" --cpus "$CPUS" --disk "$IMAGE" \
		--daemon-log "$LOGDIR/bench-$name.journal.log" \
		--append "loglevel=1 no_hash_pointers systemd.unit=tlshd-bench.target systemd.show_status=0 systemd.firstboot=off" \
		"$KDIR" "$WORK/$name/initramfs.cpio.gz" || rc=$?
	echo "== $name: VM wall time $(elapsed "$t0") s; serial log $serial =="
	return $rc
}

rc=0
for run in $(seq 1 "$RUNS"); do
	boot "run$run" "$MEM" "$([ "$run" = 1 ] && echo "$PARTS" || echo latency)" || rc=1
done
if [ "$BIG_MEM" != 0 ] && [[ " $PARTS " == *" storm "* ]]; then
	boot big "$BIG_MEM" storm || rc=1
fi
# The key holder's cost once more on this machine's own CPU, without
# emulation: the same program, built in the same user space, in a chroot.
if [[ " $PARTS " == *" keyholder "* ]]; then
	echo "== native: tlshd-keybench on this machine's CPU ($(nproc) cores, no emulation), Debian 13 user space =="
	if chroot "$ROOT" /usr/src/tlshd-build/bench/tlshd-keybench -n 400 >"$WORK/keybench.out" 2>"$WORK/keybench.err"; then
		sed 's/^/# /' "$WORK/keybench.out"
	else
		rc=1
		sed 's/^/# /' "$WORK/keybench.out" "$WORK/keybench.err"
	fi
fi
exit $rc
