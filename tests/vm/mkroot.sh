#!/bin/bash
# mkroot.sh [options] NAME SUITE
#
# A Debian user space for the distro tests (distro-suite.sh), made with
# mmdebstrap from the machine's own package mirror (read from its apt
# configuration by lib.sh's find_mirror, never written here) and cached
# between runs; optionally, in it:
#   - tlshd built from a source tree (copied in, built out of tree) and
#     installed ("make install", as a package would: binary, unit, config);
#   - its host unit tests ("make check", TAP) run;
#   - or instead (--deb) its Debian package built there (dpkg-buildpackage
#     -b, nocheck) and left as /usr/src/tlshd_*.deb, not installed;
#   - a kernel's modules package unpacked, and an ext4 disk image of the
#     whole root for a VM (made by mke2fs -d, without mounting anything).
#
# Options:
#   --include PKGS     packages to install, comma-separated (on top of
#                      mmdebstrap's "apt" variant)
#   --src DIR          build tlshd from the source tree DIR
#   --prefix DIR       configure it with --prefix=DIR (default /usr; the
#                      benchmark puts it in /opt/tlshd, beside ktls-utils)
#   --check DIR        then run "make check" in the root; its console
#                      output goes to DIR/check.log, its exit status to
#                      DIR/check.status
#   --deb              with --src: build the Debian package (debian/) instead
#                      of "make install"; the root then holds the .deb in
#                      /usr/src, and its build dependencies
#   --modules-deb DEB  unpack this kernel modules package into the root
#                      (linux-modules-<kver>, as fetch-kernels.sh keeps it)
#   --image            make (or reuse) the root's disk image
#   --info FILE        write what was made as shell assignments: ROOT,
#                      IMAGE, OS ("Debian 13 (trixie)"), GNUTLS, NVME_CLI, NFS_UTILS, SYSTEMD
#                      (package versions, empty if not installed),
#                      SHA384_PSK (yes if the build has
#                      gnutls_psk_allocate_client_credentials2), BUILD_KEY
#
# Cache: ${TLSHD_VM_ROOTS:-${TLSHD_VM_CACHE:-/var/cache/tlshd-vm}/roots}/
#   NAME-KEY/root         the root (KEY: suite, package list, this format)
#   NAME-KEY/build.key    hash of the sources built there last
#   NAME-KEY/images/      disk images, one per build and kernel (the newest
#                         few are kept)
# A root older than TLSHD_VM_ROOT_MAX_DAYS (default 7: "testing" moves) or
# any root with TLSHD_VM_REFRESH=1 is made again.  Each NAME-KEY is locked
# while it is worked on, so concurrent runs serialise.  Must run as root.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PROG=mkroot
# shellcheck source=lib.sh
. "$HERE/lib.sh"

# Bump when what a root holds changes without the package list changing.
ROOT_FORMAT=1
# Bump when the image layout changes.
IMAGE_FORMAT=2
IMAGE_SIZE=3G
KEEP_IMAGES=3

INCLUDE='' SRC='' PREFIX=/usr DEB=0 CHECK_DIR='' MODULES_DEB='' WANT_IMAGE=0 INFO=''
while [ $# -gt 0 ]; do
	case $1 in
	--include) INCLUDE=$2; shift 2 ;;
	--src) SRC=$2; shift 2 ;;
	--prefix) PREFIX=$2; shift 2 ;;
	--check) CHECK_DIR=$2; shift 2 ;;
	--deb) DEB=1; shift ;;
	--modules-deb) MODULES_DEB=$2; shift 2 ;;
	--image) WANT_IMAGE=1; shift ;;
	--info) INFO=$2; shift 2 ;;
	-*) die "unknown option $1" ;;
	*) break ;;
	esac
done
[ $# -eq 2 ] || die "usage: $0 [--include PKGS] [--src DIR [--check DIR]] [--modules-deb DEB] [--image] [--info FILE] NAME SUITE"
NAME=$1 SUITE=$2
[ "$(id -u)" = 0 ] || die "must run as root"
for tool in mmdebstrap mke2fs chroot flock sha256sum tar dpkg-deb depmod; do
	command -v "$tool" >/dev/null || die "$tool not found (tools/install-deps.sh installs it)"
done
[ -z "$CHECK_DIR" ] || [ -n "$SRC" ] || die "--check needs --src"
[ "$DEB" = 0 ] || { [ -n "$SRC" ] && [ -z "$CHECK_DIR" ]; } || die "--deb needs --src, and no --check"

ROOTS=${TLSHD_VM_ROOTS:-${TLSHD_VM_CACHE:-/var/cache/tlshd-vm}/roots}
mkdir -p "$ROOTS" || die "cannot create $ROOTS"
ROOTS=$(cd "$ROOTS" && pwd)

PKGS=$(echo "$INCLUDE" | tr ', ' '\n\n' | sed '/^$/d' | LC_ALL=C sort -u | paste -sd, -)
KEY=$(printf '%s\n' "format=$ROOT_FORMAT" "suite=$SUITE" "packages=$PKGS" | sha256sum | cut -c1-12)
ENTRY=$ROOTS/$NAME-$KEY
ROOT=$ENTRY/root

exec 8>"$ENTRY.lock"
flock 8

# Bind mounts made for chroot work; always undone (and mke2fs must never
# see them).
MOUNTS=()
unmount_all() {
	local i
	for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
		umount -l "${MOUNTS[$i]}" 2>/dev/null || true
	done
	MOUNTS=()
}
trap unmount_all EXIT
chroot_mounts() {
	mount -t proc proc "$ROOT/proc" && MOUNTS+=("$ROOT/proc")
	mount --bind /dev "$ROOT/dev" && MOUNTS+=("$ROOT/dev")
	mount -t tmpfs tmpfs "$ROOT/tmp" && MOUNTS+=("$ROOT/tmp")
}
in_root() { chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C.UTF-8 "$@"; }

# ---------------------------------------------------------------- the root ---
root_fresh() {
	[ -f "$ENTRY/.complete" ] || return 1
	[ "${TLSHD_VM_REFRESH:-0}" != 1 ] || return 1
	local days=${TLSHD_VM_ROOT_MAX_DAYS:-7}
	[ -z "$(find "$ENTRY/.complete" -mtime +"$days" 2>/dev/null)" ]
}

if root_fresh; then
	log "using the cached $SUITE root $ROOT"
else
	MIRROR=$(find_mirror) || die "no Debian mirror found in /etc/apt/sources.list{,.d/*} (set TLSHD_VM_MIRROR)"
	MIRROR=${MIRROR%/}
	log "making a $SUITE root from $MIRROR (mirror of the host's apt configuration) in $ROOT"
	rm -rf "$ENTRY"
	mkdir -p "$ENTRY"
	t0=$(date +%s.%N)
	# (A testing Release file on a mirror may be past its Valid-Until.)
	if ! mmdebstrap --mode=root --variant=apt --include="$PKGS" \
		--aptopt='Acquire::Check-Valid-Until "false"' \
		"$SUITE" "$ROOT" "deb $MIRROR $SUITE main" >"$ENTRY/mmdebstrap.log" 2>&1; then
		tail -n 30 "$ENTRY/mmdebstrap.log" >&2
		rm -rf "$ROOT"
		die "mmdebstrap $SUITE failed (log: $ENTRY/mmdebstrap.log)"
	fi
	touch "$ENTRY/.complete"
	log "$SUITE root made in $(elapsed "$t0") s ($(du -sh "$ROOT" | cut -f1))"
fi
touch "$ENTRY/.used"

# Drop other roots of this NAME that no run used for two days (NAME-KEY
# only: the roots of NAME-other are another name's).
for d in "$ROOTS/$NAME"-*; do
	[ -d "$d" ] && [ "$d" != "$ENTRY" ] || continue
	[[ ${d#"$ROOTS/$NAME"-} =~ ^[0-9a-f]{12}$ ]] || continue
	if [ -z "$(find "$d/.used" -mtime -2 2>/dev/null)" ]; then
		log "removing the unused root $d"
		rm -rf "$d" "$d.lock"
	fi
done

pkgver() { in_root dpkg-query -W -f='${db:Status-Abbrev} ${Version}\n' "$1" 2>/dev/null | awk '$1 == "ii" { print $2 }'; }

# -------------------------------------------------------------- the build ---
# The sources: the files git knows (tracked, or new and not ignored) as
# they are in the work tree, without the test harness (tests/vm, tools,
# .ci), which the build does not use; hashed with their modes.
BUILD_KEY=
if [ -n "$SRC" ]; then
	SRC=$(cd "$SRC" && pwd)
	list=$(mktemp)
	# (A tree another user owns is still read: safe.directory.)
	if git -c safe.directory='*' -C "$SRC" rev-parse --show-toplevel >/dev/null 2>&1; then
		(cd "$SRC" && git -c safe.directory='*' ls-files -z --cached --others --exclude-standard |
			grep -z -v -E '^(tests/vm/|tools/|\.ci/)' |
			while IFS= read -r -d '' f; do [ -f "$f" ] && printf '%s\0' "$f"; done |
			LC_ALL=C sort -z) >"$list"
	else
		(cd "$SRC" && find . -type f ! -path './.git/*' ! -path './build*' ! -path './tests/vm/*' \
			! -path './tools/*' ! -path './autom4te.cache/*' -printf '%P\0' | LC_ALL=C sort -z) >"$list"
	fi
	[ -s "$list" ] || die "no source files found in $SRC"
	BUILD_KEY=$( (cd "$SRC" && tar --null -T "$list" --sort=name --mtime=@0 --owner=0 --group=0 \
		--numeric-owner -cf - && echo "prefix=$PREFIX") | sha256sum | cut -c1-16)
	if [ "$DEB" = 1 ]; then
		built() { compgen -G "$ROOT/usr/src/tlshd_*.deb" >/dev/null; }
		what=packaged
		# (-Pnocheck: the package's own make check is the other roots'.)
		build='cd /usr/src/tlshd
			DEB_BUILD_OPTIONS=nocheck dpkg-buildpackage -b -us -uc -Pnocheck'
	else
		built() { [ -x "$ROOT$PREFIX/sbin/tlshd" ]; }
		what="built and installed"
		build='cd /usr/src/tlshd
			[ ! -f config.status ] || make distclean
			autoreconf -fi
			cd /usr/src/tlshd-build
			../tlshd/configure --prefix='"$PREFIX"' --sysconfdir=/etc --disable-vm-tests
			make -j"$(nproc)"
			make install'
	fi
	if [ "$(cat "$ENTRY/build.key" 2>/dev/null)" = "$BUILD_KEY" ] && built; then
		log "tlshd $BUILD_KEY already $what in the $SUITE root"
	else
		t0=$(date +%s.%N)
		rm -f "$ENTRY/build.key"
		rm -rf "$ROOT/usr/src/tlshd" "$ROOT/usr/src/tlshd-build" "$ROOT"/usr/src/tlshd_* "$ROOT"/usr/src/tlshd-dbgsym_*
		mkdir -p "$ROOT/usr/src/tlshd" "$ROOT/usr/src/tlshd-build"
		(cd "$SRC" && tar --null -T "$list" -cf -) | tar -xf - -C "$ROOT/usr/src/tlshd"
		chroot_mounts
		if ! in_root sh -c "set -e; $build" >"$ENTRY/build.log" 2>&1 || ! built; then
			unmount_all
			tail -n 40 "$ENTRY/build.log" >&2
			die "building tlshd in the $SUITE root failed (log: $ENTRY/build.log)"
		fi
		unmount_all
		echo "$BUILD_KEY" >"$ENTRY/build.key"
		log "tlshd $BUILD_KEY $what in the $SUITE root in $(elapsed "$t0") s"
	fi
	rm -f "$list"

	if [ -n "$CHECK_DIR" ]; then
		mkdir -p "$CHECK_DIR"
		t0=$(date +%s.%N)
		chroot_mounts
		rc=0
		in_root sh -c 'cd /usr/src/tlshd-build && make -j"$(nproc)" check' >"$CHECK_DIR/check.log" 2>&1 || rc=$?
		unmount_all
		echo "$rc" >"$CHECK_DIR/check.status"
		log "make check in the $SUITE root exited $rc after $(elapsed "$t0") s"
	fi
fi

# ------------------------------------------------------------- the image ---
IMAGE=
if [ "$WANT_IMAGE" = 1 ]; then
	KVER='' KPKG=''
	if [ -n "$MODULES_DEB" ]; then
		[ -f "$MODULES_DEB" ] || die "$MODULES_DEB missing"
		KPKG="$(dpkg-deb -f "$MODULES_DEB" Package) $(dpkg-deb -f "$MODULES_DEB" Version)"
		KVER=$(dpkg-deb -c "$MODULES_DEB" | sed -n 's|.*\./usr/lib/modules/\([^/]*\)/$|\1|p' | head -n 1)
		[ -n "$KVER" ] || die "$MODULES_DEB holds no usr/lib/modules/<version>/"
		if [ "$(cat "$ROOT/usr/lib/modules/$KVER/.tlshd-vm-package" 2>/dev/null)" != "$KPKG" ]; then
			rm -rf "$ROOT/usr/lib/modules/$KVER"
			dpkg-deb -x "$MODULES_DEB" "$ROOT" || die "cannot unpack $MODULES_DEB"
			# (The modules package has no modules.order/builtin.)
			for f in modules.order modules.builtin modules.builtin.modinfo; do
				[ -e "$ROOT/usr/lib/modules/$KVER/$f" ] || : >"$ROOT/usr/lib/modules/$KVER/$f"
			done
			in_root depmod "$KVER" || die "depmod $KVER in the $SUITE root failed"
			echo "$KPKG" >"$ROOT/usr/lib/modules/$KVER/.tlshd-vm-package"
			log "modules of $KPKG unpacked into the $SUITE root"
		fi
	fi
	ikey=$(printf '%s\n' "format=$IMAGE_FORMAT" "build=$BUILD_KEY" "kernel=$KPKG" | sha256sum | cut -c1-12)
	mkdir -p "$ENTRY/images"
	IMAGE=$ENTRY/images/${BUILD_KEY:-nobuild}-${KVER:-nokernel}-$ikey.img
	if [ -f "$IMAGE" ]; then
		log "using the cached image $IMAGE"
	else
		t0=$(date +%s.%N)
		[ -z "$(findmnt -rn -o TARGET | grep -F "$ROOT/")" ] || die "something is mounted under $ROOT"
		# /etc and /var are up to date with /usr: no ldconfig.service or
		# catalog rebuild at every boot (ConditionNeedsUpdate=).
		touch "$ROOT/etc/.updated" "$ROOT/var/.updated"
		mke2fs -q -t ext4 -L tlshd-root -d "$ROOT" -F "$IMAGE.tmp" "$IMAGE_SIZE" >"$ENTRY/mke2fs.log" 2>&1 ||
			{ cat "$ENTRY/mke2fs.log" >&2; rm -f "$IMAGE.tmp"; die "mke2fs -d $ROOT failed"; }
		mv "$IMAGE.tmp" "$IMAGE"
		log "image $IMAGE made in $(elapsed "$t0") s ($(du -h "$IMAGE" | cut -f1) used of $IMAGE_SIZE)"
	fi
	touch "$IMAGE"
	# Keep the newest few, and any used within the hour (a concurrent run
	# of other sources may be about to boot it; once QEMU has it open,
	# removing it is harmless).
	ls -t "$ENTRY/images"/*.img 2>/dev/null | tail -n +$((KEEP_IMAGES + 1)) |
		while read -r f; do
			if [ -n "$(find "$f" -mmin +60)" ]; then rm -f "$f"; fi
		done
fi

# --------------------------------------------------------------- results ---
if [ -n "$INFO" ]; then
	# "Debian 13 (trixie)", "Debian testing (forky)"
	os=$(. "$ROOT/etc/os-release" && echo "${NAME%% *} ${VERSION_ID:-$SUITE} (${VERSION_CODENAME:-?})")
	gnutls=$(pkgver libgnutls30t64)
	[ -n "$gnutls" ] || gnutls=$(pkgver libgnutls30)
	sha384=no
	grep -q '^#define HAVE_GNUTLS_PSK_ALLOCATE_CLIENT_CREDENTIALS2 1' \
		"$ROOT/usr/src/tlshd-build/build-config.h" 2>/dev/null && sha384=yes
	{
		printf 'ROOT=%q\n' "$ROOT"
		printf 'IMAGE=%q\n' "$IMAGE"
		printf 'OS=%q\n' "$os"
		printf 'GNUTLS=%q\n' "$gnutls"
		printf 'NVME_CLI=%q\n' "$(pkgver nvme-cli)"
		printf 'NFS_UTILS=%q\n' "$(pkgver nfs-common)"
		printf 'SYSTEMD=%q\n' "$(pkgver systemd)"
		printf 'SHA384_PSK=%q\n' "$sha384"
		printf 'BUILD_KEY=%q\n' "$BUILD_KEY"
		printf 'DEB=%q\n' "$(cd "$ROOT/usr/src" && ls tlshd_*.deb 2>/dev/null | head -n 1)"
		printf 'KTLS_UTILS=%q\n' "$(pkgver ktls-utils)"
	} >"$INFO"
fi
