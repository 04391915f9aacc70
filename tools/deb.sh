#!/bin/bash
# deb.sh [OUTDIR]: build the Debian package of this tree (debian/) in a copy
# of it, so that the source tree stays clean for out-of-tree builds, and
# check it with lintian. The .deb, .buildinfo, .changes and lintian's report
# (lintian.txt) land in OUTDIR (default: build-deb/ in the source tree).
# DEB_BUILD_OPTIONS=nocheck skips the package's own make check.
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
out=$(mkdir -p "${1:-$src/build-deb}" && cd "${1:-$src/build-deb}" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/tlshd-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT

# In a clone the files git knows or would add (no build output), else all.
mkdir "$work/tlshd"
if git -C "$src" rev-parse --git-dir >/dev/null 2>&1; then
	git -C "$src" ls-files -z --cached --others --exclude-standard | (cd "$src" && xargs -0 cp --parents -t "$work/tlshd")
else
	cp -a "$src/." "$work/tlshd"
fi
(cd "$work/tlshd" && dpkg-buildpackage -b -us -uc)
rm -f "$out"/tlshd_* "$out"/tlshd-dbgsym_*
cp "$work"/tlshd_* "$work"/tlshd-dbgsym_* "$out/" 2>/dev/null || cp "$work"/tlshd_* "$out/"
# The report is what the tests read (lintian's exit status says whether it
# found errors; its note on running as root is no finding).
lintian --info --display-info --pedantic "$out"/tlshd_*.deb 2>&1 |
	grep -v 'running with root privileges' >"$out/lintian.txt" || true
echo "deb.sh: $(ls "$out"/tlshd_*.deb) ($(wc -l <"$out/lintian.txt") lintian line(s) in $out/lintian.txt)"
