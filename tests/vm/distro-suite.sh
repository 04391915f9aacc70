#!/bin/bash
# distro-suite.sh: tlshd on the user spaces people deploy (TAP on stdout).
#
# Makes four Debian user spaces from the machine's configured package mirror
# (mkroot.sh: mmdebstrap, cached between runs):
#   trixie   Debian 13: systemd 257, nvme-cli 2.13, nfs-utils 2.8, GnuTLS 3.8.9
#   testing  Debian testing: GnuTLS >= 3.8.11, whose PSK binder API lets
#            tlshd use 48-byte (SHA-384) PSKs
#   pkg      Debian 13 with Debian's own ktls-utils installed (1.0.0:
#            /etc/tlshd.conf)
#   pkg-testing  Debian testing with its ktls-utils (1.4.0: /etc/tlshd/config)
# builds tlshd from this source tree in the first two and installs it there
# ("make install"), runs its host unit tests there ("make check", relayed
# here as TAP), builds its Debian package (debian/) in the pkg ones
# without installing it, makes a disk image of each with the newest test kernel's modules
# (fetch-kernels.sh: the newest cloud kernel in trixie-backports), and boots
# them on that kernel under QEMU with their own systemd as PID 1
# (distro/test.sh, run by distro/tlshd-distro-test.service):
#   trixie   systemd 257 with the installed unit (start, sandbox and
#            exposure, journal fields, reload, stop); nvme-cli (gen-tls-key
#            --insert, connect --tls, disconnect; a wrong key; a SHA-384 key
#            refused clearly by a tlshd built against GnuTLS 3.8.9);
#            nfs-utils (/etc/exports with xprtsec=, mounts -o xprtsec=tls and
#            mtls by DNS name and IPv6 address, mtls-only export, a server
#            certificate without the mounted name)
#   testing  nvme-cli with a SHA-384 PSK end to end (TLS_AES_256_GCM_SHA384),
#            and the unit under that systemd
#   pkg, pkg-testing
#            ktls-utils' tlshd.service runs with the user's edit of its
#            configuration file (its conffile: /etc/tlshd.conf in Debian
#            13, /etc/tlshd/config in testing); apt-get install of the tlshd package removes
#            ktls-utils, our unit is active with that file (unchanged, no
#            file of ours made); nvme-cli connect --tls through it;
#            apt-get purge tlshd leaves nothing of ours but the account,
#            and the user's file in place
# Every result says which kernel, user space and GnuTLS it came from.
#
# Environment:
#   TLSHD_SRCDIR         source tree to build in the roots (default: two
#                        levels up from this script)
#   TLSHD_VM_CACHE       kernel cache (default /var/cache/tlshd-vm)
#   TLSHD_VM_ROOTS       root and image cache (default $TLSHD_VM_CACHE/roots)
#   TLSHD_VM_LOGDIR      serial logs and guest journals (default
#                        $TLSHD_VM_CACHE/logs)
#   TLSHD_VM_KERNELS     this suite boots the newest kernel only, and skips
#                        if these words (see vm-suite.sh) exclude it
#   TLSHD_DISTRO_VMS     which VMs to boot (default "trixie testing pkg
#                        pkg-testing")
#   TLSHD_DISTRO_TESTS   only these tests of distro/test.sh, e.g. "nfs_tls_dns
#                        sd_stop" (default: each VM's whole list)
#   TLSHD_DISTRO_TESTING testing suite name on the mirror (default testing)
#   TLSHD_VM_JOBS        VMs booted in parallel (default: number of CPUs)
#   TLSHD_VM_TIMEOUT     per-VM timeout in seconds (default 900)
#   TLSHD_VM_VERBOSE=1   print the guests' tlshd journal even when all passed
#   TLSHD_VM_REFRESH=1   make the roots again (also: TLSHD_VM_ROOT_MAX_DAYS)
#   TLSHD_VM_REQUIRED=1  (or CI=true) a suite that cannot run is a failure
#   TLSHD_VM_SKIP_EXIT   exit status of a skip (default 77)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SUITE="distro VM suite" SUITE_SKIP_EXIT=77 SUITE_SKIP_BANNER=1
# shellcheck source=lib.sh
. "$HERE/lib.sh"
SUITE_T0=$(date +%s.%N)

SRCDIR=$(cd "${TLSHD_SRCDIR:-$HERE/../..}" && pwd)
CACHE=${TLSHD_VM_CACHE:-/var/cache/tlshd-vm}
LOGDIR=${TLSHD_VM_LOGDIR:-$CACHE/logs}
JOBS=${TLSHD_VM_JOBS:-$(nproc 2>/dev/null || echo 1)}
TIMEOUT=${TLSHD_VM_TIMEOUT:-900}
VMS=${TLSHD_DISTRO_VMS:-trixie testing pkg pkg-testing}
TESTING=${TLSHD_DISTRO_TESTING:-testing}

# What each user space holds: the build, the tools under test (softhsm2:
# the host tests' key in a PKCS#11 token).
BUILD_PKGS=build-essential,autoconf,automake,libtool,pkg-config,libgnutls28-dev,libnl-genl-3-dev,libkeyutils-dev,libglib2.0-dev,libsystemd-dev
RUN_PKGS=systemd,mount,keyutils,kmod,iproute2,procps,openssl,gnutls-bin,softhsm2,nvme-cli
NFS_PKGS=nfs-kernel-server,nfs-common,rpcbind
# (pkg: the package's build dependencies too; adduser for its postinst.)
DEB_PKGS=debhelper,dpkg-dev,systemd-dev,adduser,ktls-utils
declare -A R_SUITE=([trixie]=trixie [testing]=$TESTING [pkg]=trixie [pkg-testing]=$TESTING)
declare -A R_PKGS=([trixie]=$BUILD_PKGS,$RUN_PKGS,$NFS_PKGS [testing]=$BUILD_PKGS,$RUN_PKGS
	[pkg]=$BUILD_PKGS,$RUN_PKGS,$DEB_PKGS [pkg-testing]=$BUILD_PKGS,$RUN_PKGS,$DEB_PKGS)
# How tlshd gets into each root: built and installed, with its unit tests
# run; or its package built.
declare -A R_BUILD=([trixie]="--check" [testing]="--check" [pkg]="--deb" [pkg-testing]="--deb")
# The tests each VM runs (distro/test.sh), in order.
declare -A R_TESTS=(
	[trixie]="sd_start sd_sandbox nvme_sha256 nvme_sha384 nvme_wrong_key nfs_tls_dns nfs_mtls_dns nfs_tls_ipv6 nfs_mtls_ipv6 nfs_wrong_name sd_journal sd_reload sd_stop"
	[testing]="sd_start sd_sandbox nvme_sha256 nvme_sha384 sd_journal sd_stop"
	[pkg]="pkg_ktls pkg_install pkg_nvme pkg_purge"
	[pkg-testing]="pkg_ktls pkg_install pkg_nvme pkg_purge"
)
ROOT_NAMES="trixie testing pkg pkg-testing"
if [ -n "${TLSHD_DISTRO_TESTS:-}" ]; then
	for name in $ROOT_NAMES; do
		keep=
		for t in ${R_TESTS[$name]}; do
			case " ${TLSHD_DISTRO_TESTS//,/ } " in *" $t "*) keep="$keep $t" ;; esac
		done
		R_TESTS[$name]=${keep# }
	done
fi

# ------------------------------------------------------ can we run at all ---
suite_preflight mmdebstrap:mmdebstrap mke2fs:e2fsprogs chroot:coreutils certtool:gnutls-bin \
	sha256sum:coreutils findmnt:util-linux
[ -f "$SRCDIR/configure.ac" ] || cannot_run "no source tree at $SRCDIR (set TLSHD_SRCDIR)"
suite_workdir tlshd-distro-suite

t0=$(date +%s.%N)
suite_fetch "test kernels" fetch-kernels.sh
KVER=$(tail -n 1 "$CACHE/kernels.list")
KERNELS=("$KVER")
if [ -n "${TLSHD_VM_KERNELS:-}" ]; then
	suite_select_kernels
	if [ "${KERNELS[*]}" != "$KVER" ] && ! printf '%s\n' "${KERNELS[@]}" | grep -qx -F "$KVER"; then
		echo "1..0 # SKIP $SUITE boots the newest kernel ($KVER), which TLSHD_VM_KERNELS='$TLSHD_VM_KERNELS' leaves out"
		exit 0
	fi
fi
KDIR=$CACHE/kernels/$KVER
# kernels/<kver>/package: "linux-binary-<kver> <version>"; the modules
# package of the same version is in debs/.
read -r kbin kpkgver <"$KDIR/package"
MODDEB=$CACHE/debs/linux-modules-${KVER}_${kpkgver//:/%3a}_amd64.deb
[ -f "$MODDEB" ] || cannot_run "no modules package $MODDEB for $KVER (fetch-kernels.sh keeps it)"
KLABEL=${KVER%%[+-]*}

# ------------------------------------------------------- the user spaces ---
# The roots at once (each has its own lock); a root that cannot be made
# fails its results, not the suite's plan.
mkdir -p "$LOGDIR"
for name in $ROOT_NAMES; do
	mkdir -p "$WORK/$name"
	(
		rc=0
		# shellcheck disable=SC2046
		"$HERE/mkroot.sh" --include "${R_PKGS[$name]}" --src "$SRCDIR" \
			$(if [ "${R_BUILD[$name]}" = --check ]; then echo --check "$WORK/$name"; else echo --deb; fi) \
			--modules-deb "$MODDEB" --image --info "$WORK/$name/info" \
			"$name" "${R_SUITE[$name]}" >"$WORK/$name/mkroot.log" 2>&1 || rc=$?
		echo "$rc" >"$WORK/$name/mkroot.status"
	) &
done
wait
ROOTS_S=$(elapsed "$t0")

# ---------------------------------------------------------------- the VMs ---
# Certificates for this run only (never stored): a CA, the NFS server's
# (the names and addresses the tests mount by; nfs-wrong.test is not among
# them) and the client's.  ECDSA P-256, cheap under TCG.
PKI=$WORK/pki
mkdir -p "$PKI"
pki() { certtool "$@" >>"$WORK/pki.log" 2>&1 || { cat "$WORK/pki.log" >&2; die "certtool $* failed"; }; }
newkey() { pki --generate-privkey --key-type ecdsa --curve secp256r1 --outfile "$1"; chmod 600 "$1"; }
tmpl() { printf '%s\n' "$@" "expiration_days = 30" >"$WORK/tmpl"; }
newkey "$PKI/ca.key"
tmpl 'cn = "tlshd-distro test CA"' ca cert_signing_key crl_signing_key
pki --generate-self-signed --load-privkey "$PKI/ca.key" --template "$WORK/tmpl" --outfile "$PKI/ca.pem"
newkey "$PKI/server.key"
tmpl 'cn = "nfs.test"' 'dns_name = "nfs.test"' 'dns_name = "localhost"' 'ip_address = "127.0.0.1"' \
	'ip_address = "::1"' tls_www_server signing_key
pki --generate-certificate --load-privkey "$PKI/server.key" --load-ca-certificate "$PKI/ca.pem" \
	--load-ca-privkey "$PKI/ca.key" --template "$WORK/tmpl" --outfile "$PKI/server.pem"
newkey "$PKI/client.key"
tmpl 'cn = "tlshd-distro client"' tls_www_client signing_key
pki --generate-certificate --load-privkey "$PKI/client.key" --load-ca-certificate "$PKI/ca.pem" \
	--load-ca-privkey "$PKI/ca.key" --template "$WORK/tmpl" --outfile "$PKI/client.pem"
rm -f "$PKI/ca.key"

# The MESSAGE_IDs of the handshake entries, from the sources.
MSGID_OK=$(sed -n 's/^#define TLSHD_MESSAGE_ID_SUCCEEDED[[:space:]]*"\([0-9a-f]*\)".*/\1/p' "$SRCDIR/src/log.h")
MSGID_FAIL=$(sed -n 's/^#define TLSHD_MESSAGE_ID_FAILED[[:space:]]*"\([0-9a-f]*\)".*/\1/p' "$SRCDIR/src/log.h")

upstream() { local v=${1#*:}; echo "${v%%-*}"; }

# payload NAME: the files /init copies into the root of VM NAME.
payload() {
	local name=$1 p=$WORK/$1/payload expect=refuse
	# shellcheck disable=SC1091
	. "$WORK/$name/info"
	[ "$SHA384_PSK" = yes ] && expect=connect
	mkdir -p "$p/usr/libexec/tlshd-vm" "$p/etc/systemd/system" "$p/etc/sysctl.d" \
		"$p/etc/systemd/journald.conf.d"
	install -m 755 "$HERE/distro/test.sh" "$p/usr/libexec/tlshd-vm/distro-test.sh"
	install -m 644 "$HERE/guest/lib.sh" "$p/usr/libexec/tlshd-vm/lib.sh"
	install -m 644 "$HERE/distro/tlshd-distro.target" "$HERE/distro/tlshd-distro-test.service" \
		"$p/etc/systemd/system/"
	# (pkg: /etc/tlshd is the user's and ktls-utils', and what is left
	# there after the purge is reported.)
	if [ "${R_BUILD[$name]}" = --check ]; then
		mkdir -p "$p/etc/tlshd"
		install -m 644 "$PKI/ca.pem" "$PKI/server.pem" "$PKI/client.pem" "$p/etc/tlshd/"
		install -m 600 "$PKI/server.key" "$PKI/client.key" "$p/etc/tlshd/"
	fi
	local label
	label="$KLABEL, $OS, GnuTLS $(upstream "$GNUTLS")"
	[ "${R_BUILD[$name]}" = --check ] || label="$KLABEL, $OS, ktls-utils $KTLS_UTILS -> package $DEB"
	cat >"$p/usr/libexec/tlshd-vm/distro.env" <<-EOF
	TESTS='${R_TESTS[$name]}'
	LABEL='$label'
	SHA384_EXPECT=$expect
	MSGID_OK=$MSGID_OK
	MSGID_FAIL=$MSGID_FAIL
	MAX_EXPOSURE=2.2
	PKG=$([ "${R_BUILD[$name]}" = --deb ] && echo 1 || echo 0)
	DEB='$DEB'
	EOF
	cat >"$p/etc/hosts" <<-EOF
	127.0.0.1 localhost
	::1 localhost ip6-localhost ip6-loopback
	# nfs.test is in the NFS server's certificate, nfs-wrong.test is not.
	127.0.0.1 nfs.test nfs-wrong.test
	EOF
	echo tlshd-distro >"$p/etc/hostname"
	tr -d '-' </proc/sys/kernel/random/uuid >"$p/etc/machine-id"
	# Kernel messages stay off the console (procps' sysctl.d sets 4).
	echo 'kernel.printk = 1 4 1 7' >"$p/etc/sysctl.d/99-tlshd-vm.conf"
	# The journal stays in memory (no flush to the disk under TCG).
	printf '[Journal]\nStorage=volatile\n' >"$p/etc/systemd/journald.conf.d/tlshd-vm.conf"
}

run_vm() {
	local name=$1 dir=$2 t0
	t0=$(date +%s.%N)
	# shellcheck disable=SC1091
	. "$dir/info"
	payload "$name"
	if ! "$HERE/distro/mkinitramfs.sh" "$dir/initramfs.cpio.gz" "$ROOT" "$KVER" "$dir/payload" \
		>"$dir/mkinitramfs.log" 2>&1; then
		echo initramfs >"$dir/error"
		return 0
	fi
	suite_run_vm "$dir" "$t0" --log "$LOGDIR/distro-$name.serial.log" \
		--daemon-log "$LOGDIR/distro-$name.journal.log" --timeout "$TIMEOUT" \
		--disk "$IMAGE" \
		--append "loglevel=1 systemd.unit=tlshd-distro.target systemd.show_status=0 systemd.firstboot=off" \
		"$KDIR" "$dir/initramfs.cpio.gz"
}

t0=$(date +%s.%N)
BOOT=()
for name in $VMS; do
	[ "$(cat "$WORK/$name/mkroot.status")" = 0 ] && [ -n "${R_TESTS[$name]}" ] && BOOT+=("$name")
done
pids=()
for name in "${BOOT[@]}"; do
	while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do
		wait -n || true
	done
	run_vm "$name" "$WORK/$name" &
	pids+=($!)
done
[ "${#pids[@]}" = 0 ] || wait "${pids[@]}" || true
VMS_S=$(elapsed "$t0")

# ----------------------------------------------------------------- report ---
OUT=$WORK/out.tap
exec 3>&1 >"$OUT"

# relay_check NAME LABEL: the host unit tests' results ("make check" in the
# root) as TAP lines of this suite, so that they count in the summary.
relay_check() {
	local dir=$WORK/$1 label=$2 line res rest n=0 st
	st=$(cat "$dir/check.status" 2>/dev/null || echo missing)
	while IFS= read -r line; do
		[[ $line =~ ^(PASS|FAIL|XFAIL|XPASS|SKIP|ERROR):\ (.*)$ ]] || continue
		res=${BASH_REMATCH[1]} rest=${BASH_REMATCH[2]}
		n=$((n + 1))
		TAP_NUM=$((TAP_NUM + 1))
		# A SKIP line keeps its directive; elsewhere "# SKIP" or "# TODO"
		# in a description is escaped, or it would become one.
		shopt -s nocasematch
		if [ "$res" = SKIP ]; then
			[[ $rest =~ \#[[:space:]]*SKIP ]] || rest="$rest # SKIP"
		elif [[ $rest =~ \#[[:space:]]*(SKIP|TODO) ]]; then
			rest=${rest//#/\\#}
		fi
		shopt -u nocasematch
		case $res in
		PASS|SKIP) echo "ok $TAP_NUM - [$label] $rest" ;;
		XFAIL) echo "ok $TAP_NUM - [$label] $rest # TODO expected failure" ;;
		*) echo "not ok $TAP_NUM - [$label] $res: $rest"; FAILED=$((FAILED + 1)) ;;
		esac
	done <"$dir/check.log"
	if [ "$n" = 0 ] || [ "$st" != 0 ]; then
		TAP_NUM=$((TAP_NUM + 1))
		FAILED=$((FAILED + 1))
		echo "not ok $TAP_NUM - [$label] make check in the root exited $st with $n results"
		tail -n 30 "$dir/check.log" 2>/dev/null | sed 's/^/#   /'
	fi
}

for name in $ROOT_NAMES; do
	dir=$WORK/$name
	echo "# ---- user space $name (${R_SUITE[$name]}) ----"
	if [ "$(cat "$dir/mkroot.status")" != 0 ]; then
		sed 's/^/# /' "$dir/mkroot.log"
		TAP_NUM=$((TAP_NUM + 1))
		FAILED=$((FAILED + 1))
		echo "not ok $TAP_NUM - [$name] the ${R_SUITE[$name]} user space could not be made (mkroot.sh): $(grep 'error:' "$dir/mkroot.log" | tail -n 1)"
		continue
	fi
	(
		# shellcheck disable=SC1091
		. "$dir/info"
		echo "# user space: $OS, GnuTLS $(upstream "$GNUTLS"), nvme-cli $(upstream "$NVME_CLI"), nfs-utils $(upstream "${NFS_UTILS:-none}"), systemd $(upstream "$SYSTEMD") (Debian packages: libgnutls30t64 $GNUTLS, nvme-cli $NVME_CLI, nfs-common ${NFS_UTILS:-not installed}, systemd $SYSTEMD)"
		[ -z "$DEB" ] || echo "# tlshd's package built there from $SRCDIR (sources $BUILD_KEY): /usr/src/$DEB, not installed; Debian's ktls-utils $KTLS_UTILS installed"
		[ -n "$DEB" ] || echo "# tlshd built there from $SRCDIR (sources $BUILD_KEY); SHA-384 PSK binder API (gnutls_psk_allocate_client_credentials2): $SHA384_PSK"
		echo "# root $ROOT; image $IMAGE"
	)
	grep '^mkroot: ' "$dir/mkroot.log" | sed 's/^/# /'
	[ "${R_BUILD[$name]}" = --check ] || continue
	label="$(. "$dir/info" && echo "$OS, GnuTLS $(upstream "$GNUTLS")") host unit tests"
	relay_check "$name" "$label"
done

for name in $VMS; do
	[ -n "${R_TESTS[$name]}" ] || continue
	dir=$WORK/$name
	serial=$LOGDIR/distro-$name.serial.log
	journal=$LOGDIR/distro-$name.journal.log
	echo "# ---- kernel $KVER, $name user space, its systemd as PID 1 ----"
	if [ "$(cat "$dir/mkroot.status")" != 0 ]; then
		for t in ${R_TESTS[$name]}; do
			TAP_NUM=$((TAP_NUM + 1))
			FAILED=$((FAILED + 1))
			echo "not ok $TAP_NUM - [$KLABEL, $name] $t: not run, the ${R_SUITE[$name]} user space could not be made"
		done
		continue
	elif [ ! -f "$dir/error" ]; then
		suite_guest_times "$serial"
		echo "# VM wall time $(cat "$dir/seconds") s; test unit started at ${GUEST_UP:-?} s, done at ${GUEST_DONE:-?} s of guest uptime"
	fi
	# shellcheck disable=SC2086
	suite_merge_tap "$name" "distro test" "$serial" $(seq 1 "$(echo ${R_TESTS[$name]} | wc -w)")
	if [ -s "$journal" ]; then
		echo "# guest journal: $journal ($(handshake_summary "$journal"))"
		if [ "$KFAILED" != 0 ] || [ "${TLSHD_VM_VERBOSE:-0}" = 1 ]; then
			grep -E 'tlshd|systemd\[1\]|nfs|rpc' "$journal" | tail -n 80 | sed 's/^/#   journal| /'
		fi
	elif [ "$KFAILED" != 0 ] && [ -f "$serial" ]; then
		echo "# no guest journal came back; last lines of $serial:"
		tail -n 40 "$serial" | sed 's/^/#   serial| /'
	fi
done

echo "# $SUITE wall time: $(elapsed "$SUITE_T0") s (user spaces, builds and unit tests ${ROOTS_S} s, VMs ${VMS_S} s), $FAILED failure(s)"
exec 1>&3 3>&-
echo "1..$TAP_NUM"
cat "$OUT"
[ "$FAILED" = 0 ]
