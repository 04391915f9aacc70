#!/bin/bash
# check.sh: the whole tlshd test suite on a fresh Debian 12 machine, as root.
# Installs what it needs, builds out of tree, runs `make check` (unit tests
# on the host, then the VM suite on two real kernels), and ends with one
# "N passed, N failed" line counted from every TAP result.
#
# Environment: TLSHD_BUILD_DIR (default: build/ in the source tree),
# TLSHD_VM_CACHE (downloaded kernels, default /var/cache/tlshd-vm),
# TLSHD_SKIP_DEPS=1 to skip the apt-get step on a prepared machine.
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
build=${TLSHD_BUILD_DIR:-$src/build}

if [ "${TLSHD_SKIP_DEPS:-0}" != 1 ]; then
	bash "$src/tools/install-deps.sh"
fi

# The VM suite is part of the test suite here: it must run, not skip.
export TLSHD_VM_REQUIRED=1

cd "$src"
autoreconf -fi
mkdir -p "$build"
cd "$build"
"$src/configure" --prefix=/usr --sysconfdir=/etc
make -j"$(nproc)"

status=0
make -j"$(nproc)" check || status=$?

# One summary line over every TAP result of every test program.
pass=$(cat $(find . -name '*.trs') | grep -c '^:test-result: \(PASS\|XFAIL\)' || true)
fail=$(cat $(find . -name '*.trs') | grep -c '^:test-result: \(FAIL\|XPASS\|ERROR\)' || true)
skip=$(cat $(find . -name '*.trs') | grep -c '^:test-result: SKIP' || true)
if [ "$status" != 0 ]; then
	echo "=== make check failed; logs of failing tests follow ==="
	for log in $(grep -l '^:test-result: \(FAIL\|ERROR\)' $(find . -name '*.trs') | sed 's/\.trs$/.log/'); do
		echo "--- $log"
		tail -n 200 "$log"
	done
fi
echo "$pass passed, $fail failed, $skip skipped"
exit "$status"
