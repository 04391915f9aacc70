#!/bin/bash
# fuzz.sh: the libFuzzer targets of an --enable-fuzzing build, as TAP.
# For each target in TLSHD_FUZZ_TARGETS (paths of the built binaries):
#   1. replays every seed of tests/fuzz/corpus/<name> once;
#   2. fuzzes it for TLSHD_FUZZ_SECONDS (default 20) from those seeds.
# A crash, leak, sanitizer report or broken invariant is "not ok", with the
# report and the input (path and base64) in "#" lines; the input is kept in
# fuzz-artifacts/ of the build directory.
#
# The corpus grows in a temporary directory, removed at exit, unless
# TLSHD_FUZZ_WORKDIR names one to keep, with the logs of the last run
# (make fuzz: fuzz-corpus/ of the build directory); the seeds in the
# source tree are only read.
set -uo pipefail

targets=${TLSHD_FUZZ_TARGETS:-}
if [ -z "${targets// /}" ]; then
	echo "1..0 # SKIP not configured with --enable-fuzzing"
	exit 0
fi
srcdir=${TLSHD_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
builddir=${TLSHD_BUILDDIR:-$(pwd)}
seconds=${TLSHD_FUZZ_SECONDS:-20}
artifacts=$builddir/fuzz-artifacts
if [ -n "${TLSHD_FUZZ_WORKDIR:-}" ]; then
	work=$TLSHD_FUZZ_WORKDIR
else
	work=$(mktemp -d /tmp/tlshd-fuzz.XXXXXX) || exit 1
	trap 'rm -rf "$work"' EXIT
fi
mkdir -p "$work" "$artifacts" || exit 1
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}

n=0
failed=0
pass() { n=$((n + 1)); echo "ok $n - $1"; }
fail() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; }

# report LOG: the sanitizer or libFuzzer report and the failing input.
report() {
	local log=$1 input

	awk '/^Running: / { run = $0 }
	     !on && /^==[0-9]+==|runtime error|invariant broken|deadly signal/ {
		on = 1; if (run != "") print run }
	     on && /^Shadow bytes/ { exit }
	     on && n++ < 60' "$log" | sed 's/^/#   /'
	input=$(sed -n 's/.*Test unit written to \(.*\)/\1/p; s/^Running: \(.*\)/\1/p' "$log" | tail -1)
	if [ -n "$input" ] && [ -f "$input" ]; then
		echo "#   input: $input"
		echo "#   base64: $(base64 -w0 < "$input" | head -c 4096)"
	fi
}

# replay TARGET NAME CORPUS: every seed once (files given, not a directory,
# so that libFuzzer runs each as is and mutates nothing).
replay() {
	local t=$1 name=$2 corpus=$3 log=$work/$2-replay.log seeds count

	seeds=("$corpus"/*)
	if [ ! -f "${seeds[0]}" ]; then
		fail "$name: replays its corpus"
		echo "#   no seeds in $corpus"
		return
	fi
	if "$t" -artifact_prefix="$artifacts/$name-" "${seeds[@]}" > "$log" 2>&1; then
		count=$(grep -c '^Executed ' "$log")
		if [ "$count" = "${#seeds[@]}" ]; then
			pass "$name: replays its corpus (${#seeds[@]} inputs)"
			return
		fi
		fail "$name: replays its corpus (ran $count of ${#seeds[@]} inputs)"
		return
	fi
	fail "$name: replays its corpus (${#seeds[@]} inputs)"
	report "$log"
}

# fuzz TARGET NAME CORPUS: mutations for $seconds, new inputs into $work.
fuzz() {
	local t=$1 name=$2 corpus=$3 log=$work/$2-fuzz.log dict execs added
	local args=(-max_total_time="$seconds" -timeout=10 -print_final_stats=1
		    -artifact_prefix="$artifacts/$name-")

	dict=$srcdir/tests/fuzz/$name.dict
	[ -f "$dict" ] && args+=(-dict="$dict")
	mkdir -p "$work/$name"
	if "$t" "${args[@]}" "$work/$name" "$corpus" > "$log" 2>&1; then
		execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
		added=$(sed -n 's/^stat::new_units_added: *//p' "$log")
		pass "$name: fuzzed for ${seconds}s (${execs:-?} executions, ${added:-?} new inputs)"
		return
	fi
	fail "$name: fuzzed for ${seconds}s"
	report "$log"
}

for t in $targets; do
	case $t in
	/*) ;;
	*) t=$builddir/$t ;;
	esac
	name=$(basename "$t")
	name=${name#fuzz-}
	replay "$t" "$name" "$srcdir/tests/fuzz/corpus/$name"
	fuzz "$t" "$name" "$srcdir/tests/fuzz/corpus/$name"
done
echo "1..$n"
[ "$failed" = 0 ]
