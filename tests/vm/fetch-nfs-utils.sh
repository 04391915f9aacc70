#!/bin/bash
# fetch-nfs-utils.sh [CACHE_DIR]
#
# Download Debian 12 (bookworm)'s NFS user space for the VM tests and unpack
# it, without installing anything on the host (the packages' maintainer
# scripts would start services):
#   nfs-common (mount.nfs), nfs-kernel-server (rpc.nfsd, rpc.mountd,
#   exportfs), rpcbind, the libraries they need that a build host may lack,
#   libtirpc-common (/etc/netconfig) and netbase (/etc/services, protocols).
#
# apt runs with a private sources list (bookworm main) and state directory
# under the cache; the mirror URI is read from the host's apt configuration
# (apt-mirror.sh), never hard-coded.
#
# Result, under CACHE_DIR (default ${TLSHD_VM_CACHE:-/var/cache/tlshd-vm}):
#   nfs-utils/root/...      the unpacked packages (dpkg-deb -x)
#   nfs-utils/packages      "<package> <version>" per line
# mkinitramfs.sh copies the binaries (and their libraries) from there.
#
# A second run reuses the cache and downloads nothing; TLSHD_VM_REFRESH=1
# looks for newer packages again.
set -euo pipefail

CACHE_DIR=${1:-${TLSHD_VM_CACHE:-/var/cache/tlshd-vm}}
ARCH=amd64
SUITE=bookworm
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
PACKAGES="nfs-common nfs-kernel-server rpcbind libtirpc3 libtirpc-common
  libnfsidmap1 libwrap0 libevent-core-2.1-7 libnsl2 libgssapi-krb5-2 libkrb5-3
  libk5crypto3 libkrb5support0 netbase"
# Bump when the package selection or layout changes.
TREE_FORMAT=1

die() { echo "fetch-nfs-utils: error: $*" >&2; exit 1; }
log() { echo "fetch-nfs-utils: $*" >&2; }

for tool in apt-get apt-cache dpkg-deb flock; do
	command -v "$tool" >/dev/null || die "'$tool' not found (install apt, dpkg, util-linux)"
done
[ -r "$KEYRING" ] || die "$KEYRING missing (install debian-archive-keyring)"

mkdir -p "$CACHE_DIR" || die "cannot create cache directory $CACHE_DIR"
CACHE_DIR=$(cd "$CACHE_DIR" && pwd)
APT_DIR=$CACHE_DIR/apt-$SUITE
DEB_DIR=$CACHE_DIR/debs-nfs
OUT=$CACHE_DIR/nfs-utils

exec 9>"$CACHE_DIR/.fetch-nfs.lock"
flock 9

if [ "${TLSHD_VM_REFRESH:-0}" != 1 ] && [ -x "$OUT/root/usr/sbin/rpc.nfsd" ] &&
	[ "$(cat "$OUT/.format" 2>/dev/null)" = "$TREE_FORMAT" ]; then
	log "using cached NFS user space in $OUT ($(awk '$1 == "nfs-kernel-server" { print $2 }' "$OUT/packages"))"
	exit 0
fi

# shellcheck source=apt-mirror.sh
. "$(dirname "${BASH_SOURCE[0]}")/apt-mirror.sh"
MIRROR=$(find_mirror) || die "no Debian mirror found in /etc/apt/sources.list{,.d/*} (set TLSHD_VM_MIRROR)"
MIRROR=${MIRROR%/}
log "mirror from the host's apt configuration: $MIRROR"

mkdir -p "$APT_DIR/lists/partial" "$APT_DIR/archives/partial" "$APT_DIR/cache" "$DEB_DIR"
cat >"$APT_DIR/sources.list" <<EOF
deb [arch=$ARCH signed-by=$KEYRING] $MIRROR $SUITE main
EOF
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

log "updating the private package list ($SUITE main)"
apt-get "${APT_OPTS[@]}" -q update >"$APT_DIR/update.log" 2>&1 || {
	cat "$APT_DIR/update.log" >&2
	die "apt-get update of $SUITE failed (no network or mirror?)"
}
if grep -qE '^(W|E): (Failed|Some index)' "$APT_DIR/update.log"; then
	cat "$APT_DIR/update.log" >&2
	die "apt-get update could not fetch the $SUITE index"
fi

pkg_version() {
	apt-cache "${APT_OPTS[@]}" show "$1" 2>/dev/null | awk '$1 == "Version:" { print $2; exit }'
}

WORK=$(mktemp -d "$CACHE_DIR/nfs-unpack.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/root"
: >"$WORK/packages"
keep=()
for pkg in $PACKAGES; do
	ver=$(pkg_version "$pkg")
	[ -n "$ver" ] || die "package $pkg not found in $SUITE"
	deb=$(ls "$DEB_DIR/${pkg}_${ver//:/%3a}_"*.deb 2>/dev/null | head -n 1 || true)
	if [ -z "$deb" ]; then
		log "downloading $pkg $ver"
		(cd "$DEB_DIR" && apt-get "${APT_OPTS[@]}" -q download "$pkg=$ver") >&2 ||
			die "apt-get download $pkg=$ver failed"
		deb=$(ls "$DEB_DIR/${pkg}_${ver//:/%3a}_"*.deb 2>/dev/null | head -n 1 || true)
		[ -n "$deb" ] || die "apt-get download made no .deb for $pkg $ver"
	fi
	dpkg-deb -x "$deb" "$WORK/root" || die "cannot unpack $deb"
	echo "$pkg $ver" >>"$WORK/packages"
	keep+=("$deb")
done
[ -x "$WORK/root/usr/sbin/rpc.nfsd" ] || die "no usr/sbin/rpc.nfsd in nfs-kernel-server"

# Drop .debs of versions no longer selected.
for f in "$DEB_DIR"/*.deb; do
	[ -e "$f" ] || continue
	case " ${keep[*]} " in *" $f "*) ;; *) rm -f "$f" ;; esac
done

echo "$TREE_FORMAT" >"$WORK/.format"
rm -rf "$OUT.tmp"
mkdir -p "$OUT.tmp"
mv "$WORK/root" "$WORK/packages" "$WORK/.format" "$OUT.tmp/"
rm -rf "$OUT"
mv "$OUT.tmp" "$OUT"
log "unpacked into $OUT: $(tr '\n' ' ' <"$OUT/packages")"
