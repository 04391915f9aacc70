#!/bin/bash
# check.sh: the whole tlshd test suite on a fresh Debian 12 machine, as root.
# Installs what it needs, then:
#   1. builds out of tree (with --enable-test-hooks, which the VM suite's
#      keyless-worker scenarios drive) and runs `make check`: unit tests on
#      the host, then the VM suite on two real kernels;
#   2. builds again with clang and --enable-sanitizers (ASan + UBSan) and
#      runs the host tests under them (which also proves that the tree
#      builds warning-free with a second compiler), with --enable-fuzzing:
#      the libFuzzer targets replay their seed corpora and fuzz for 20
#      seconds each (tests/fuzz/fuzz.sh), a crash being a failure;
# and ends with one "N passed, N failed" line counted from every TAP result
# of both. It works in any clone, whatever ran there before (tools/demo.sh
# shares the build directory).
#
# Environment: TLSHD_BUILD_DIR (default: build/ in the source tree; the
# sanitizer build goes to its sibling build-sanitizers/), TLSHD_VM_CACHE
# (downloaded kernels, default /var/cache/tlshd-vm), TLSHD_SKIP_DEPS=1 to
# skip the apt-get step on a prepared machine, TLSHD_NO_SANITIZERS=1 to
# skip step 2.
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
build=${TLSHD_BUILD_DIR:-$src/build}
san=${build%/}-sanitizers

if [ "${TLSHD_SKIP_DEPS:-0}" != 1 ]; then
	bash "$src/tools/install-deps.sh"
fi

# The VM suite is part of the test suite here: it must run, not skip.
export TLSHD_VM_REQUIRED=1

# build_and_check DIR CONFIGURE-ARGS...: returns make check's status.
build_and_check() {
	local dir=$1; shift
	mkdir -p "$dir"
	(cd "$dir" && "$src/configure" --prefix=/usr --sysconfdir=/etc "$@" &&
		make -j"$(nproc)" && make -j"$(nproc)" check)
}

# Every .trs below the build directories, counted by result.
count() { cat $(find "$build" "$san" -name '*.trs' 2>/dev/null) | grep -c "^:test-result: \\($1\\)" || true; }

cd "$src"
autoreconf -fi
status=0
build_and_check "$build" --enable-test-hooks || status=$?
if [ "${TLSHD_NO_SANITIZERS:-0}" != 1 ]; then
	echo "=== host tests and fuzz targets built by clang under AddressSanitizer and UndefinedBehaviorSanitizer ==="
	build_and_check "$san" CC=clang --enable-sanitizers --enable-fuzzing --disable-vm-tests ||
		status=$?
fi

# The logs of the tests that failed or erred.
failing_logs() {
	grep -l '^:test-result: \(FAIL\|ERROR\)' $(find "$build" "$san" -name '*.trs' 2>/dev/null) |
		sed 's/\.trs$/.log/'
}

if [ "$status" != 0 ]; then
	echo "=== make check failed; logs of failing tests follow ==="
	for log in $(failing_logs); do
		echo "--- $log"
		tail -n 200 "$log"
	done
	# The failing results themselves again, last, where a shortened copy
	# of this output still shows them: each "not ok" and its diagnostics.
	echo "=== failing results ==="
	for log in $(failing_logs); do
		echo "--- $log"
		awk '/^not ok/ { n = 12 } n > 0 { print; n-- }' "$log" | cut -c1-300
	done
fi
# Which user spaces the distro VM suite's results came from.
grep -h '^# user space: ' $(find "$build" -name 'distro-suite.log' 2>/dev/null) /dev/null || true
echo "$(count 'PASS\|XFAIL') passed, $(count 'FAIL\|XPASS\|ERROR') failed, $(count SKIP) skipped"
exit "$status"
