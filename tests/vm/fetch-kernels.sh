#!/bin/bash
# fetch-kernels.sh [CACHE_DIR]
#
# Download the Debian "cloud" kernels the VM tests boot, and prepare a
# trimmed module tree for each:
#   (a) the newest 6.12 LTS kernel from bookworm-backports
#       (package linux-image-6.12.*-cloud-amd64, one .deb);
#   (b) the newest kernel from trixie-backports, which is split into
#       linux-binary-<ver>-cloud-amd64 (vmlinuz) and
#       linux-modules-<ver>-cloud-amd64 (modules).
#
# Neither suite is in the host's apt sources, so apt runs with a private
# sources list and state directory under the cache; the mirror URI is read
# from the host's own apt configuration (never hard-coded here; lib.sh).
#
# Result, under CACHE_DIR (default ${TLSHD_VM_CACHE:-/var/cache/tlshd-vm}):
#   kernels/<kver>/vmlinuz
#   kernels/<kver>/lib/modules/<kver>/...   (only the modules we need, plus
#                                             their dependencies, uncompressed,
#                                             depmod'ed)
#   kernels/<kver>/package                  (the Debian package version)
#   kernels.list                            (one "<kver>" per line, 6.12 first)
#
# A second run reuses the cache and downloads nothing.  Set
# TLSHD_VM_REFRESH=1 to look for newer kernels again.  The mirror can be
# overridden with TLSHD_VM_MIRROR (a URI of a Debian archive).
set -euo pipefail

CACHE_DIR=${1:-${TLSHD_VM_CACHE:-/var/cache/tlshd-vm}}
ARCH=amd64
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

# Modules the guest loads (by file name, '-' and '_' are equivalent: NVMe
# host and target, NFS client and server), plus
# everything below the crypto directories so that the kernel can autoload
# whatever AEAD the daemon negotiates (gcm, ccm, chacha20poly1305, ...).
# Dependencies are added from modules.dep.  Modules built into a given
# kernel are simply not found, which is fine.
WANTED_MODULES="tls nvme-tcp nvmet-tcp nvmet nvme-fabrics nvme-core nvme-keyring
  null_blk configfs gcm ghash-generic ghash-clmulni-intel aesni-intel ccm
  chacha20poly1305 chacha_generic chacha-x86_64 poly1305-x86_64 crypto_simd
  cryptd
  nfsd nfsv4 nfs sunrpc lockd grace nfs_acl auth_rpcgss dns_resolver"
WANTED_DIRS="kernel/crypto kernel/arch/x86/crypto kernel/lib/crypto"
# Bump when the module selection changes, so cached trees get rebuilt.
TREE_FORMAT=2

PROG=fetch-kernels
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

for tool in apt-get apt-cache dpkg-deb depmod xz flock; do
	command -v "$tool" >/dev/null || die "'$tool' not found (install apt, dpkg, kmod, xz-utils, util-linux)"
done
[ -r "$KEYRING" ] || die "$KEYRING missing (install debian-archive-keyring)"

# Serialise concurrent runs (e.g. two "make check" in parallel).
lock_cache .fetch.lock
APT_DIR=$CACHE_DIR/apt
DEB_DIR=$CACHE_DIR/debs
KERNELS_DIR=$CACHE_DIR/kernels
LIST=$CACHE_DIR/kernels.list

# ---------------------------------------------------------------------------
# Cache check: everything listed is present and was built by this format.
cache_complete() {
	[ -s "$LIST" ] || return 1
	local kver
	while read -r kver; do
		[ -f "$KERNELS_DIR/$kver/vmlinuz" ] || return 1
		[ "$(cat "$KERNELS_DIR/$kver/.format" 2>/dev/null)" = "$TREE_FORMAT" ] || return 1
	done <"$LIST"
}

print_selection() {
	local kver
	while read -r kver; do
		echo "fetch-kernels: kernel $kver (package $(cat "$KERNELS_DIR/$kver/package"))" >&2
	done <"$LIST"
}

if [ "${TLSHD_VM_REFRESH:-0}" != 1 ] && cache_complete; then
	log "using cached kernels in $KERNELS_DIR"
	print_selection
	exit 0
fi

# ---------------------------------------------------------------------------
# Private apt: the backports suites of the host's mirror (see lib.sh).
apt_private bookworm-backports trixie-backports
mkdir -p "$KERNELS_DIR"

log "updating private package lists (bookworm-backports, trixie-backports)"
apt_update "apt-get update of the backports suites failed (no network or mirror?)" \
	"apt-get update could not fetch the backports indexes"

# Newest package whose name matches an extended regex; the version is part of
# the name, so a version sort of the names picks the newest.
newest_pkg() {
	apt-cache "${APT_OPTS[@]}" pkgnames "$1" 2>/dev/null | grep -E "$2" | sort -V | tail -n 1
}

# The .deb file apt-get download makes for a package (epoch ':' -> %3a).
deb_of() {
	local ver
	ver=$(pkg_version "$1")
	echo "$DEB_DIR/${1}_${ver//:/%3a}_$ARCH.deb"
}

# Download packages into $DEB_DIR unless the .deb is already there.
download() {
	local pkg ver
	for pkg in "$@"; do
		ver=$(pkg_version "$pkg")
		[ -n "$ver" ] || die "package $pkg not found in the backports suites"
		if [ -s "$(deb_of "$pkg")" ]; then
			log "already downloaded: $pkg $ver"
			continue
		fi
		apt_download "$pkg" "$ver"
		[ -s "$(deb_of "$pkg")" ] || die "apt-get download made no $(deb_of "$pkg")"
	done
}

# ---------------------------------------------------------------------------
# Build kernels/<kver> from an unpacked package tree.
#   $1 kver  $2 unpack dir  $3 vmlinuz path inside it  $4 modules dir inside it
#   $5 package description
prepare_tree() {
	local kver=$1 unpack=$2 vmlinuz=$3 moddir=$4 pkgdesc=$5
	local out=$KERNELS_DIR/$kver.tmp dest f name want rel dep
	local -A keep=()

	[ -f "$unpack/$vmlinuz" ] || die "$pkgdesc: no $vmlinuz in the package"
	[ -d "$unpack/$moddir/kernel" ] || die "$pkgdesc: no $moddir/kernel in the package"

	# modules.dep of the full tree, to resolve dependencies.  Some packages
	# ship no modules.order/modules.builtin; empty ones keep depmod quiet.
	for f in modules.order modules.builtin modules.builtin.modinfo; do
		[ -e "$unpack/$moddir/$f" ] || : >"$unpack/$moddir/$f"
	done
	mkdir -p "$unpack/full/lib/modules"
	ln -sfn "$unpack/$moddir" "$unpack/full/lib/modules/$kver"
	depmod -b "$unpack/full" "$kver" || die "$pkgdesc: depmod of the full module tree failed"

	# Pick the wanted modules (and the whole crypto directories) ...
	while read -r f; do
		name=$(basename "$f"); name=${name%%.ko*}; name=${name//-/_}
		for want in $WANTED_MODULES; do
			[ "$name" = "${want//-/_}" ] && keep[$f]=1
		done
		for want in $WANTED_DIRS; do
			case $f in "$want"/*) keep[$f]=1 ;; esac
		done
	done < <(cd "$unpack/$moddir" && find kernel -name '*.ko*')

	# ... and everything they depend on (modules.dep lists the full closure).
	for f in "${!keep[@]}"; do
		for dep in $(awk -v m="$f:" '$1 == m { $1 = ""; print }' "$unpack/$moddir/modules.dep"); do
			keep[$dep]=1
		done
	done

	rm -rf "$out"
	dest=$out/lib/modules/$kver
	mkdir -p "$dest"
	cp "$unpack/$vmlinuz" "$out/vmlinuz"
	for f in modules.builtin modules.builtin.modinfo modules.order; do
		[ -f "$unpack/$moddir/$f" ] && cp "$unpack/$moddir/$f" "$dest/"
	done
	# busybox modprobe cannot load compressed modules: store them plain.
	for rel in "${!keep[@]}"; do
		mkdir -p "$dest/$(dirname "$rel")"
		case $rel in
		*.ko.xz) xz -dc "$unpack/$moddir/$rel" >"$dest/${rel%.xz}" ;;
		*.ko.zst) zstd -qdc "$unpack/$moddir/$rel" >"$dest/${rel%.zst}" ;;
		*.ko.gz) gzip -dc "$unpack/$moddir/$rel" >"$dest/${rel%.gz}" ;;
		*) cp "$unpack/$moddir/$rel" "$dest/$rel" ;;
		esac
	done
	# modules.order names compressed files; rewrite it for the plain ones.
	[ -f "$dest/modules.order" ] && sed -i -E 's/\.ko\.(xz|zst|gz)$/.ko/' "$dest/modules.order"
	depmod -b "$out" "$kver" || die "$pkgdesc: depmod of the trimmed tree failed"

	echo "$pkgdesc" >"$out/package"
	echo "$TREE_FORMAT" >"$out/.format"
	rm -rf "${KERNELS_DIR:?}/$kver"
	mv "$out" "$KERNELS_DIR/$kver"
	log "prepared $KERNELS_DIR/$kver (${#keep[@]} modules, $(du -sh "$KERNELS_DIR/$kver" | cut -f1))"
}

WORK=$(mktemp -d "$CACHE_DIR/unpack.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# (a) newest 6.12 cloud kernel in bookworm-backports.
IMG612=$(newest_pkg linux-image-6.12. '^linux-image-6\.12\.[0-9]+[^-]*-cloud-amd64$')
[ -n "$IMG612" ] || die "no linux-image-6.12.*-cloud-amd64 in bookworm-backports"
KVER612=${IMG612#linux-image-}

# (b) newest cloud kernel in trixie-backports (split binary/modules packages).
BIN_NEW=$(newest_pkg linux-binary- '^linux-binary-[0-9]+\.[0-9]+\.[0-9]+[^-]*-cloud-amd64$')
[ -n "$BIN_NEW" ] || die "no linux-binary-*-cloud-amd64 in trixie-backports"
KVER_NEW=${BIN_NEW#linux-binary-}
MOD_NEW=linux-modules-$KVER_NEW

log "selected: $IMG612 $(pkg_version "$IMG612")"
log "selected: $BIN_NEW + $MOD_NEW $(pkg_version "$BIN_NEW")"

download "$IMG612" "$BIN_NEW" "$MOD_NEW"

# Unpack and trim, unless an identical tree is already cached.
tree_current() {
	[ -f "$KERNELS_DIR/$1/vmlinuz" ] &&
		[ "$(cat "$KERNELS_DIR/$1/.format" 2>/dev/null)" = "$TREE_FORMAT" ] &&
		[ "$(cat "$KERNELS_DIR/$1/package" 2>/dev/null)" = "$2" ]
}

desc612="$IMG612 $(pkg_version "$IMG612")"
if ! tree_current "$KVER612" "$desc612"; then
	mkdir -p "$WORK/a"
	dpkg-deb -x "$(deb_of "$IMG612")" "$WORK/a" || die "cannot unpack $IMG612"
	prepare_tree "$KVER612" "$WORK/a" "boot/vmlinuz-$KVER612" "lib/modules/$KVER612" "$desc612"
fi

descnew="$BIN_NEW $(pkg_version "$BIN_NEW")"
if ! tree_current "$KVER_NEW" "$descnew"; then
	mkdir -p "$WORK/b"
	dpkg-deb -x "$(deb_of "$BIN_NEW")" "$WORK/b" || die "cannot unpack $BIN_NEW"
	dpkg-deb -x "$(deb_of "$MOD_NEW")" "$WORK/b" || die "cannot unpack $MOD_NEW"
	prepare_tree "$KVER_NEW" "$WORK/b" "usr/lib/modules/$KVER_NEW/vmlinuz" "usr/lib/modules/$KVER_NEW" "$descnew"
fi

printf '%s\n' "$KVER612" "$KVER_NEW" >"$LIST.tmp"
mv "$LIST.tmp" "$LIST"

# Drop trees and .debs of versions no longer selected.
for d in "$KERNELS_DIR"/*; do
	[ -d "$d" ] || continue
	case ${d##*/} in
	"$KVER612"|"$KVER_NEW") ;;
	*) rm -rf "$d" ;;
	esac
done
for f in "$DEB_DIR"/*.deb; do
	[ -e "$f" ] || continue
	case $f in
	"$(deb_of "$IMG612")"|"$(deb_of "$BIN_NEW")"|"$(deb_of "$MOD_NEW")") ;;
	*) rm -f "$f" ;;
	esac
done
print_selection
