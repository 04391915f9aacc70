#!/bin/bash
# deb.sh: the Debian package built from the tree (tools/deb.sh) is a
# drop-in for ktls-utils' (TAP): it Provides, Conflicts with and Replaces
# ktls-utils, installs the same paths (/usr/sbin/tlshd, tlshd.service, the
# man pages), ships no configuration file of its own in /etc (postinst
# makes /etc/tlshd.conf only when neither it nor /etc/tlshd/config
# exists), enables and starts the unit through debhelper, and is lintian
# clean (each override says why in debian/tlshd.lintian-overrides).
set -u

src=${TLSHD_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
out=${TLSHD_BUILDDIR:-$PWD}/deb
n=0 failed=0
pass() { n=$((n + 1)); echo "ok $n - $1"; }
fail() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; shift; for l in "$@"; do echo "#   $l"; done; }
check() { local what=$1; shift; if "$@" >/dev/null 2>&1; then pass "$what"; else fail "$what"; fi; }

for tool in dpkg-buildpackage dh lintian fakeroot; do
	command -v "$tool" >/dev/null || { echo "1..0 # SKIP $tool missing (packages dpkg-dev, debhelper, lintian, fakeroot)"; exit 0; }
done

t0=$(date +%s)
if ! DEB_BUILD_OPTIONS=nocheck bash "$src/tools/deb.sh" "$out" >"$out.log" 2>&1; then
	fail "the package builds (dpkg-buildpackage -b)" "$(tail -n 15 "$out.log" | tr '\n' '|')"
	echo "1..$n"
	exit 1
fi
deb=$(ls "$out"/tlshd_*.deb)
pass "the package builds in $(($(date +%s) - t0)) s: $(basename "$deb")"
echo "# $(dpkg-deb -f "$deb" Version) for $(dpkg-deb -f "$deb" Architecture), $(stat -c %s "$deb") bytes"

# lintian: nothing left but what debian/tlshd.lintian-overrides explains.
if grep -q '^[EW]:' "$out/lintian.txt"; then
	fail "lintian: no error or warning" "$(grep '^[EW]:' "$out/lintian.txt" | tr '\n' '|')"
else
	pass "lintian --pedantic: no error or warning ($(grep -c '^[IPX]:' "$out/lintian.txt") other line(s))"
fi

for field in Provides Conflicts Replaces; do
	check "$field: ktls-utils" grep -qx ktls-utils <(dpkg-deb -f "$deb" "$field")
done
dpkg-deb -c "$deb" | awk '{ print $6 }' | sed 's|^\./|/|' >"$out/files"
for f in /usr/sbin/tlshd /usr/share/man/man8/tlshd.8.gz /usr/share/man/man5/tlshd.conf.5.gz; do
	check "installs $f" grep -qx "$f" "$out/files"
done
check "installs tlshd.service under the release's unit directory" \
	grep -qE '^(/usr)?/lib/systemd/system/tlshd.service$' "$out/files"
if grep -q '^/etc/' "$out/files"; then
	fail "ships nothing in /etc (an /etc/tlshd.conf would hide /etc/tlshd/config)" "$(grep '^/etc/' "$out/files")"
else
	pass "ships nothing in /etc (an /etc/tlshd.conf would hide /etc/tlshd/config)"
fi
rm -rf "$out/control" && mkdir -p "$out/control" && dpkg-deb -e "$deb" "$out/control"
check "postinst enables the unit" grep -q 'deb-systemd-helper.*enable.*tlshd.service' "$out/control/postinst"
check "postinst starts the unit" grep -q -E "_dh_action=start|deb-systemd-invoke start.*tlshd.service" "$out/control/postinst"
check "postinst keeps an existing /etc/tlshd.conf or /etc/tlshd/config" \
	grep -q '! -e /etc/tlshd.conf \] && \[ ! -e /etc/tlshd/config' "$out/control/postinst"
echo "1..$n"
[ "$failed" = 0 ]
