# shellcheck shell=bash
# lib.sh: shell functions shared by the host-side scripts of the VM tests
# (bash; sourced, never run).  Each section names the variables its
# functions use; the sourcing script sets them.
#
#   messages   die, log                             ($PROG)
#   apt        find_mirror, lock_cache, apt_private, apt_update, pkg_version,
#              apt_download                         (fetch-kernels.sh,
#                                                    fetch-nfs-utils.sh)
#   initramfs  image_kernel, find_static_busybox, image_skeleton,
#              install_busybox, copy_with_libs, install_modules, pack_image
#                                                   (mkinitramfs*.sh)
#   nfs, pki   install_nfs_userspace, pki_*, make_test_pki
#                                                   (mkinitramfs*.sh)
#   suites     required, cannot_run, elapsed, suite_* (vm-suite.sh,
#              systemd-suite.sh)

# ---------------------------------------------------------------- messages ---
# $PROG: the script's name in its messages, e.g. "fetch-kernels".

# Print "PROG: error: MESSAGE" on stderr and exit 1.
die() { echo "$PROG: error: $*" >&2; exit 1; }

# Print "PROG: MESSAGE" on stderr.
log() { echo "$PROG: $*" >&2; }

# --------------------------------------------------------------------- apt ---
# apt runs with a private sources list and state directory under the cache
# (the suites it needs are not in the host's apt sources).
# Variables: ARCH, KEYRING (the Debian archive keyring), APT_DIR (apt's
# private state), DEB_DIR (downloaded .debs); apt_private sets MIRROR and
# APT_OPTS.

# Print the Debian archive URI the VM tests download packages from:
# TLSHD_VM_MIRROR if set, else the first non-security Debian archive URI of
# the host's own apt configuration (never a hard-coded host).
find_mirror() {
	local f uri
	if [ -n "${TLSHD_VM_MIRROR:-}" ]; then
		echo "$TLSHD_VM_MIRROR"
		return
	fi
	# deb822 sources: "URIs: <uri> [<uri>...]"
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -r "$f" ] || continue
		for uri in $(awk 'tolower($1) == "uris:" { $1 = ""; print }' "$f"); do
			case $uri in
			*security*|cdrom:*|file:*) continue ;;
			esac
			echo "$uri"
			return
		done
	done
	# one-line sources: "deb [options] <uri> <suite> <components>"
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -r "$f" ] || continue
		uri=$(sed -e 's/#.*//' -e 's/\[[^]]*\]//' "$f" |
			awk '$1 == "deb" && $2 !~ /security|^cdrom:|^file:/ { print $2; exit }')
		if [ -n "$uri" ]; then
			echo "$uri"
			return
		fi
	done
	return 1
}

# lock_cache LOCKNAME: create the cache directory $CACHE_DIR (made an
# absolute path) and hold the lock $CACHE_DIR/LOCKNAME (on fd 9) until the
# script exits, so that concurrent runs (e.g. two "make check") serialise.
lock_cache() {
	mkdir -p "$CACHE_DIR" || die "cannot create cache directory $CACHE_DIR"
	CACHE_DIR=$(cd "$CACHE_DIR" && pwd)
	exec 9>"$CACHE_DIR/$1"
	flock 9
}

# apt_private SUITE...: find the mirror (MIRROR), write a private sources
# list with the main component of each SUITE and set APT_OPTS, the apt-get
# and apt-cache options that use it and $APT_DIR instead of the host's state.
apt_private() {
	local suite
	MIRROR=$(find_mirror) || die "no Debian mirror found in /etc/apt/sources.list{,.d/*} (set TLSHD_VM_MIRROR)"
	MIRROR=${MIRROR%/}
	log "mirror from the host's apt configuration: $MIRROR"

	mkdir -p "$APT_DIR/lists/partial" "$APT_DIR/archives/partial" "$APT_DIR/cache" "$DEB_DIR"
	for suite in "$@"; do
		echo "deb [arch=$ARCH signed-by=$KEYRING] $MIRROR $suite main"
	done >"$APT_DIR/sources.list"
	APT_OPTS=(
		-o "Dir::Etc::SourceList=$APT_DIR/sources.list"
		-o "Dir::Etc::SourceParts=/dev/null"
		-o "Dir::State::Lists=$APT_DIR/lists"
		-o "Dir::Cache=$APT_DIR/cache"
		-o "Dir::Cache::archives=$APT_DIR/archives"
		-o "APT::Architecture=$ARCH"
		-o "APT::Architectures=$ARCH"
		-o "Acquire::Languages=none"
		-o "APT::Sandbox::User=root"
	)
}

# apt_update FAILED MISSING: update the private package lists (log in
# $APT_DIR/update.log); die with FAILED if apt-get fails, with MISSING if an
# index could not be fetched (apt-get update exits 0 then).
apt_update() {
	apt-get "${APT_OPTS[@]}" -q update >"$APT_DIR/update.log" 2>&1 || {
		cat "$APT_DIR/update.log" >&2
		die "$1"
	}
	if grep -qE '^(W|E): (Failed|Some index)' "$APT_DIR/update.log"; then
		cat "$APT_DIR/update.log" >&2
		die "$2"
	fi
}

# pkg_version PACKAGE: the candidate version of PACKAGE in the private lists
# (empty if there is none).
pkg_version() {
	apt-cache "${APT_OPTS[@]}" show "$1" 2>/dev/null | awk '$1 == "Version:" { print $2; exit }'
}

# apt_download PACKAGE VERSION: download the .deb into $DEB_DIR, or die.
apt_download() {
	log "downloading $1 $2"
	(cd "$DEB_DIR" && apt-get "${APT_OPTS[@]}" -q download "$1=$2") >&2 ||
		die "apt-get download $1=$2 failed"
}

# --------------------------------------------------------------- initramfs ---
# Variables: STAGE (the image's staging directory), BUSYBOX and KVER (set
# by find_static_busybox and image_kernel), LIB_ROOT (optional: a tree whose
# libraries copy_with_libs prefers to the host's).

# image_kernel KERNEL_DIR: check a kernel prepared by fetch-kernels.sh and
# set KVER to the version of its module tree.
image_kernel() {
	[ -f "$1/vmlinuz" ] || die "$1/vmlinuz missing (run fetch-kernels.sh)"
	KVER=$(ls "$1/lib/modules" 2>/dev/null | head -n 1) || true
	[ -n "$KVER" ] || die "no modules under $1/lib/modules"
}

# Set BUSYBOX to the host's busybox, which must be the static one (no
# libraries to carry, full applet set): the dynamic "busybox" package also
# installs /bin/busybox.
find_static_busybox() {
	local b
	BUSYBOX=
	for b in /bin/busybox /usr/bin/busybox; do
		[ -x "$b" ] && { BUSYBOX=$b; break; }
	done
	[ -n "$BUSYBOX" ] || die "busybox not found (install busybox-static)"
	if ldd "$BUSYBOX" >/dev/null 2>&1; then
		die "$BUSYBOX is dynamically linked (install busybox-static)"
	fi
}

# The directories every image has, in the host's merged-/usr layout (/bin,
# /sbin, /lib, /lib64 are links into /usr), and the device nodes the kernel
# opens before /init runs (devtmpfs comes later).
image_skeleton() {
	mkdir -p "$STAGE"/{usr/bin,usr/sbin,usr/lib,usr/lib64,usr/libexec/tlshd-vm,etc,dev,proc,sys,run,root,var}
	ln -s usr/bin "$STAGE/bin"
	ln -s usr/sbin "$STAGE/sbin"
	ln -s usr/lib "$STAGE/lib"
	ln -s usr/lib64 "$STAGE/lib64"
	mknod -m 600 "$STAGE/dev/console" c 5 1
	mknod -m 666 "$STAGE/dev/null" c 1 3
}

# Copy $BUSYBOX into the image with a link for each of its applets; an
# applet never replaces a file already there.
install_busybox() {
	local applet
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
}

# copy_with_libs BINARY DEST: copy a dynamically linked binary to DEST (a
# path inside the image) with the libraries ldd resolves, kept at the paths
# ldd prints (/lib is a link into /usr/lib as on the host); die if ldd
# cannot find one.  Libraries under $LIB_ROOT, if set, are preferred to the
# host's (ldd then prints their $LIB_ROOT path; they go to the same path
# without that prefix).
copy_with_libs() {
	local bin=$1 dest=$2 lib ldpath='' out dst
	if [ -n "${LIB_ROOT:-}" ]; then
		ldpath=$LIB_ROOT/usr/lib/x86_64-linux-gnu:$LIB_ROOT/lib/x86_64-linux-gnu
	fi
	rm -f "$STAGE/$dest"
	install -D -m 755 "$bin" "$STAGE/$dest"
	out=$(LD_LIBRARY_PATH=$ldpath ldd "$bin" 2>/dev/null) || true
	if echo "$out" | grep -q 'not found'; then
		die "$bin: shared libraries not found: $(echo "$out" | grep 'not found' | tr -s ' \t\n' ' ')"
	fi
	for lib in $(echo "$out" | grep -o -E '/[^ ]+'); do
		dst=$lib
		[ -n "${LIB_ROOT:-}" ] && dst=${lib#"$LIB_ROOT"}
		[ -e "$STAGE$dst" ] && continue
		mkdir -p "$STAGE$(dirname "$dst")"
		cp -L "$lib" "$STAGE$dst"
	done
}

# install_modules KERNEL_DIR: copy the kernel's (trimmed, uncompressed,
# depmod'ed) module tree into the image.
install_modules() {
	mkdir -p "$STAGE/usr/lib/modules"
	cp -a "$1/lib/modules/$KVER" "$STAGE/usr/lib/modules/$KVER"
}

# pack_image OUTPUT GZIP_LEVEL: write the staging directory as a gzip'd
# newc cpio archive (sorted, all files owned by root), atomically.
pack_image() {
	mkdir -p "$(dirname "$1")"
	(cd "$STAGE" && find . -print0 | LC_ALL=C sort -z |
		cpio --null --create --format=newc --owner=0:0 --quiet) | gzip -"$2" >"$1.tmp"
	mv "$1.tmp" "$1"
}

# --------------------------------------------------------------- nfs, pki ---
# What the NFS tests of both images need.  Variables: STAGE (as above);
# the pki_* functions keep their state in PKI_DIR (pki_begin).

# install_nfs_userspace NFS_ROOT: the NFS user space unpacked by
# fetch-nfs-utils.sh (mount.nfs, rpc.nfsd, rpc.mountd, exportfs, rpcbind,
# rpcinfo with their libraries, those under NFS_ROOT preferred), the files
# of /etc it reads (netconfig, services, protocols, rpc), an empty
# /etc/exports and nfsd's state directories.  (rpcbind also needs an _rpc
# user, and the image a /var/run -> /run link: the image provides them.)
install_nfs_userspace() {
	local LIB_ROOT=$1 b f
	[ -x "$1/usr/sbin/rpc.nfsd" ] || die "no NFS user space in $1 (run fetch-nfs-utils.sh)"
	for b in sbin/mount.nfs usr/sbin/rpc.nfsd usr/sbin/rpc.mountd usr/sbin/exportfs \
		sbin/rpcbind usr/sbin/rpcinfo; do
		copy_with_libs "$1/$b" "usr/${b#usr/}"
	done
	for f in etc/netconfig etc/services etc/protocols etc/rpc; do
		[ -f "$1/$f" ] || die "$1/$f missing"
		install -m 644 "$1/$f" "$STAGE/$f"
	done
	: >"$STAGE/etc/exports"
	mkdir -p "$STAGE/var/lib/nfs/v4recovery" "$STAGE/var/lib/nfs/rpc_pipefs" "$STAGE/srv" "$STAGE/mnt"
}

# Test certificates: ECDSA P-256 (cheap under TCG), valid for a year,
# generated per image with certtool; the private keys exist only in the
# staging directory and in the image, a CA's key not even there (pki_end).

# pki_begin DIR: make DIR, where the pki_* functions write NAME.pem and
# NAME.key.
pki_begin() {
	PKI_DIR=$1
	mkdir -p "$PKI_DIR"
	: >"$PKI_DIR/.pki.log"
}

pki_run() {
	certtool "$@" >>"$PKI_DIR/.pki.log" 2>&1 || { cat "$PKI_DIR/.pki.log" >&2; die "certtool $* failed"; }
}

# pki_template LINE...: certtool's template (with the validity) for the
# next pki_ca or pki_issue.
pki_template() { printf '%s\n' "$@" "expiration_days = 365" >"$PKI_DIR/.tmpl"; }

# pki_key NAME: a new private key NAME.key (mode 600).
pki_key() {
	pki_run --generate-privkey --key-type ecdsa --curve secp256r1 --outfile "$PKI_DIR/$1.key"
	chmod 600 "$PKI_DIR/$1.key"
}

# pki_ca NAME CN: a self-signed CA, NAME.pem and NAME.key.
pki_ca() {
	pki_key "$1"
	pki_template "cn = \"$2\"" 'ca' 'cert_signing_key' 'crl_signing_key'
	pki_run --generate-self-signed --load-privkey "$PKI_DIR/$1.key" \
		--template "$PKI_DIR/.tmpl" --outfile "$PKI_DIR/$1.pem"
}

# pki_issue CA NAME TEMPLATE_LINE...: NAME.pem and NAME.key, issued by the
# CA NAME CA (CA.pem, CA.key).
pki_issue() {
	local ca=$1 name=$2
	shift 2
	pki_key "$name"
	pki_template "$@"
	pki_run --generate-certificate --load-privkey "$PKI_DIR/$name.key" \
		--load-ca-certificate "$PKI_DIR/$ca.pem" --load-ca-privkey "$PKI_DIR/$ca.key" \
		--template "$PKI_DIR/.tmpl" --outfile "$PKI_DIR/$name.pem"
}

# pki_client CA NAME: a TLS client certificate "CN=tlshd-vm NAME".
pki_client() { pki_issue "$1" "$2" "cn = \"tlshd-vm $2\"" 'tls_www_client' 'signing_key'; }

# pki_der NAME: NAME.der and NAME.key.der (mode 600), the DER forms the
# keys named by NFS's cert_serial=/privkey_serial= hold.
pki_der() {
	openssl x509 -in "$PKI_DIR/$1.pem" -outform DER -out "$PKI_DIR/$1.der" ||
		die "openssl x509 -outform DER failed"
	openssl pkey -in "$PKI_DIR/$1.key" -outform DER -out "$PKI_DIR/$1.key.der" ||
		die "openssl pkey -outform DER failed"
	chmod 600 "$PKI_DIR/$1.key.der"
}

# pki_end CA...: drop the CAs' private keys and the scratch files.
pki_end() {
	local ca
	for ca; do rm -f "$PKI_DIR/$ca.key"; done
	rm -f "$PKI_DIR/.tmpl" "$PKI_DIR/.pki.log"
}

# make_test_pki DIR: the project's test CA (ca.pem, "CN=tlshd-vm test
# CA"), the NFS server's certificate (server.pem: localhost, nfs.test and
# 127.0.0.1, not nfs-wrong.test) and two client certificates: client.pem
# for the daemon's configuration, keyring-client for the kernel keyring
# (also as DER).  Leaves ca.key for more certificates: call pki_end ca.
make_test_pki() {
	pki_begin "$1"
	pki_ca ca "tlshd-vm test CA"
	pki_issue ca server 'cn = "nfs.test"' 'dns_name = "localhost"' 'dns_name = "nfs.test"' \
		'ip_address = "127.0.0.1"' 'tls_www_server' 'signing_key'
	pki_client ca client
	pki_client ca keyring-client
	pki_der keyring-client
}

# ------------------------------------------------------------------ suites ---
# The drivers of "make check" (TAP on stdout).  Variables: SUITE (its name
# in messages, e.g. "VM suite"), SUITE_SKIP_EXIT (exit status of a skip
# unless TLSHD_VM_SKIP_EXIT says otherwise), SUITE_SKIP_BANNER (1: repeat
# the "NOT RUN" banner on stdout after a skip plan), HERE, CACHE, LOGDIR,
# JOBS, WORK, KERNELS (set by suite_workdir and suite_select_kernels).

# A suite that cannot run is a failure (CI=true or TLSHD_VM_REQUIRED=1),
# not a skip.
required() { [ "${CI:-}" = true ] || [ "${TLSHD_VM_REQUIRED:-0}" = 1 ]; }

# cannot_run WHY: the suite cannot run here: say so loudly on stderr, then
# print a skip plan and exit, or, when the suite is required, a failure.
cannot_run() {
	local why=$1 banner
	banner="############################################################"
	{
		echo "$banner"
		echo "# tlshd $SUITE NOT RUN: $why"
		echo "$banner"
	} >&2
	if required; then
		echo "1..1"
		echo "not ok 1 - $SUITE could not run: $why"
		echo "# (CI=true or TLSHD_VM_REQUIRED=1: not running the VM suite is a failure)"
		exit 1
	fi
	echo "1..0 # SKIP $SUITE could not run: $why"
	if [ "${SUITE_SKIP_BANNER:-0}" = 1 ]; then
		echo "$banner"
		echo "# tlshd $SUITE NOT RUN: $why"
	fi
	echo "# (set CI=true or TLSHD_VM_REQUIRED=1 to make this a failure)"
	[ "${SUITE_SKIP_BANNER:-0}" = 1 ] && echo "$banner"
	exit "${TLSHD_VM_SKIP_EXIT:-$SUITE_SKIP_EXIT}"
}

# elapsed T0: seconds (one decimal) since T0, a "date +%s.%N" time.
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

# suite_preflight COMMAND:PACKAGE...: cannot run unless as root (the images
# need device nodes), with the commands every suite needs (fetching kernels,
# building images, QEMU) and each COMMAND the suite names, and with QEMU's
# TCG (run-vm.sh uses no KVM).
suite_preflight() {
	local tool
	[ "$(id -u)" = 0 ] || cannot_run "must run as root (initramfs device nodes)"
	for tool in qemu-system-x86_64:qemu-system-x86 busybox:busybox-static \
		keyctl:keyutils cpio:cpio depmod:kmod xz:xz-utils gzip:gzip \
		apt-get:apt dpkg-deb:dpkg flock:util-linux timeout:coreutils "$@"; do
		command -v "${tool%%:*}" >/dev/null || cannot_run "${tool%%:*} not found (install ${tool#*:})"
	done
	if ! qemu-system-x86_64 -accel help 2>/dev/null | grep -qx tcg; then
		cannot_run "qemu-system-x86_64 has no TCG accelerator"
	fi
}

# suite_workdir PREFIX: create the cache and log directories, and WORK, a
# temporary directory removed when the suite exits.
suite_workdir() {
	mkdir -p "$CACHE" "$LOGDIR" 2>/dev/null || cannot_run "cannot create $CACHE / $LOGDIR"
	WORK=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
	trap 'rm -rf "$WORK"' EXIT
}

# suite_fetch WHAT SCRIPT: run SCRIPT (fetch-kernels.sh, ...) on the cache,
# its output appended to $WORK/fetch.log; cannot run if it fails ("WHAT
# could not be fetched", with the script's last error line).
suite_fetch() {
	if ! "$HERE/$2" "$CACHE" >>"$WORK/fetch.log" 2>&1; then
		sed 's/^/# /' "$WORK/fetch.log" >&2
		cannot_run "$1 could not be fetched: $(grep 'error:' "$WORK/fetch.log" | tail -n 1)"
	fi
}

# suite_select_kernels: KERNELS, the fetched kernels (kernels.list) whose
# version starts with one of the words of TLSHD_VM_KERNELS (default: all).
suite_select_kernels() {
	local kver keep want
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
}

# suite_print_kernels: the kernels fetch-kernels.sh reported, as "#" lines.
suite_print_kernels() {
	grep '^fetch-kernels: kernel ' "$WORK/fetch.log" | sed 's/^fetch-kernels: /# /'
}

# suite_boot_all FUNCTION: run "FUNCTION KVER DIR" in the background for
# each of KERNELS, DIR being a new directory $WORK/KVER for its results, at
# most $JOBS at a time, and wait for all of them.
suite_boot_all() {
	local kver pids=()
	for kver in "${KERNELS[@]}"; do
		while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do
			wait -n || true
		done
		mkdir -p "$WORK/$kver"
		"$1" "$kver" "$WORK/$kver" &
		pids+=($!)
	done
	wait "${pids[@]}" || true
}

# suite_mkinitramfs DIR SCRIPT ARGUMENTS...: build an image with SCRIPT
# (mkinitramfs.sh, ...), its messages in DIR/mkinitramfs.log; if it fails,
# DIR/error says so (suite_merge_tap reports it) and this fails.
suite_mkinitramfs() {
	local dir=$1 script=$2
	shift 2
	if ! "$HERE/$script" "$@" >"$dir/mkinitramfs.log" 2>&1; then
		echo "initramfs" >"$dir/error"
		return 1
	fi
}

# suite_run_vm DIR T0 RUN-VM-ARGUMENTS...: boot a VM with run-vm.sh; its
# TAP goes to DIR/tap, its messages to DIR/run.log, its exit status to
# DIR/rc and the seconds since T0 to DIR/seconds.
suite_run_vm() {
	local dir=$1 t0=$2 rc=0
	shift 2
	"$HERE/run-vm.sh" "$@" >"$dir/tap" 2>"$dir/run.log" || rc=$?
	echo "$rc" >"$dir/rc"
	elapsed "$t0" >"$dir/seconds"
}

# suite_guest_times SERIAL: GUEST_UP and GUEST_DONE, the guest's uptime at
# its @@GUEST-UP@@ and @@GUEST-DONE@@ lines (empty if there is none).
# shellcheck disable=SC2034 # (used by the suites)
suite_guest_times() {
	GUEST_UP=$(sed -n 's/.*@@GUEST-UP@@ uptime=\([0-9.]*\).*/\1/p' "$1" 2>/dev/null | head -n 1)
	GUEST_DONE=$(sed -n 's/^@@GUEST-DONE@@ .*uptime=\([0-9.]*\).*/\1/p' "$1" 2>/dev/null | head -n 1)
}

# suite_merge_tap KVER WHAT SERIAL N...: print what the VM of KVER left in
# DIR=$WORK/KVER: the image builder's messages if it failed (DIR/error),
# else run-vm.sh's if that failed (DIR/rc); then its TAP (DIR/tap),
# renumbered: its "#" header lines, then for each test N (in that order)
# its result line as number TAP_NUM+1, TAP_NUM+2, ... with the "#" lines
# after it.  Plans are dropped; other lines (e.g. QEMU's own messages)
# become "#" lines.  A missing result is a failure, "[<kernel version>]
# WHAT N: <why>" (see SERIAL, the VM's serial log).  Sets KFAILED to the
# number of failures, adds it to FAILED and advances TAP_NUM (both start
# at 0).
TAP_NUM=0 FAILED=0
suite_merge_tap() {
	local dir=$WORK/$1 label=${1%%[+-]*} what=$2 serial=$3 cur=header line n why
	shift 3
	KFAILED=0
	if [ -f "$dir/error" ]; then
		sed 's/^/# /' "$dir/mkinitramfs.log"
	elif [ "$(cat "$dir/rc")" != 0 ]; then
		sed 's/^/# /' "$dir/run.log"
	fi
	rm -f "$dir"/block.*
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
	for n in "$@"; do
		TAP_NUM=$((TAP_NUM + 1))
		if [ -f "$dir/block.$n" ]; then
			sed "1s/@@N@@/$TAP_NUM/" "$dir/block.$n"
			head -n 1 "$dir/block.$n" | grep -q '^not ok' && KFAILED=$((KFAILED + 1))
		else
			if [ -f "$dir/error" ]; then
				why="initramfs could not be built"
			else
				why="no result from the VM (crashed, hung or timed out; see $serial)"
			fi
			echo "not ok $TAP_NUM - [$label] $what $n: $why"
			KFAILED=$((KFAILED + 1))
		fi
	done
	FAILED=$((FAILED + KFAILED))
}

# handshake_summary LOG: "N succeeded, M failed handshakes" of a daemon log.
handshake_summary() {
	echo "$(grep -c 'handshake succeeded' "$1" || true) succeeded, $(grep -c 'handshake failed' "$1" || true) failed handshakes"
}
