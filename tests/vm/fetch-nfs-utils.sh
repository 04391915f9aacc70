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
# (lib.sh), never hard-coded.
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

PROG=fetch-nfs-utils
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

for tool in apt-get apt-cache dpkg-deb flock; do
	command -v "$tool" >/dev/null || die "'$tool' not found (install apt, dpkg, util-linux)"
done
[ -r "$KEYRING" ] || die "$KEYRING missing (install debian-archive-keyring)"

lock_cache .fetch-nfs.lock
APT_DIR=$CACHE_DIR/apt-$SUITE
DEB_DIR=$CACHE_DIR/debs-nfs
OUT=$CACHE_DIR/nfs-utils

if [ "${TLSHD_VM_REFRESH:-0}" != 1 ] && [ -x "$OUT/root/usr/sbin/rpc.nfsd" ] &&
	[ "$(cat "$OUT/.format" 2>/dev/null)" = "$TREE_FORMAT" ]; then
	log "using cached NFS user space in $OUT ($(awk '$1 == "nfs-kernel-server" { print $2 }' "$OUT/packages"))"
	exit 0
fi

# Private apt: $SUITE of the host's mirror (see lib.sh).
apt_private "$SUITE"

log "updating the private package list ($SUITE main)"
apt_update "apt-get update of $SUITE failed (no network or mirror?)" \
	"apt-get update could not fetch the $SUITE index"

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
		apt_download "$pkg" "$ver"
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
