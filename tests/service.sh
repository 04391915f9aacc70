#!/bin/bash
# service.sh: host checks of the systemd unit and of --check-config.
#  - systemd-analyze verify accepts tlshd.service;
#  - systemd-analyze security --offline=true rates its exposure 2.2 or
#    lower (0.1 of it is CAP_KILL, which the daemon needs to kill the
#    workers it demoted, and 0.1 setpriority, with which its children
#    leave its Nice=-10);
#  - tlshd --check-config exits 0 on good files and 1 on bad ones, naming
#    the file, section and key of every problem.
# TAP on stdout.
set -uo pipefail

n=0
failed=0
pass() { n=$((n + 1)); echo "ok $n - $1"; }
fail() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; shift; for l in "$@"; do echo "#   $l"; done; }
skip() { n=$((n + 1)); echo "ok $n - $1 # SKIP $2"; }

tlshd=${TLSHD_BIN:-$(pwd)/src/tlshd}
unit_in=${TLSHD_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}/systemd/tlshd.service.in
dir=$(mktemp -d /tmp/tlshd-service.XXXXXX)
trap 'rm -rf "$dir"' EXIT

# --- the unit -------------------------------------------------------------
# The unit as installed, but starting the binary under test.
sed "s|@sbindir@/tlshd|$tlshd|g" "$unit_in" > "$dir/tlshd.service"
if command -v systemd-analyze >/dev/null; then
	if out=$(systemd-analyze verify --man=no "$dir/tlshd.service" 2>&1); then
		pass "systemd-analyze verify accepts tlshd.service"
	else
		fail "systemd-analyze verify accepts tlshd.service" "$out"
	fi
	sec=$(systemd-analyze security --offline=true --no-pager "$dir/tlshd.service" 2>&1)
	level=$(sed -n 's/.*Overall exposure level for tlshd.service: \([0-9.]*\).*/\1/p' <<<"$sec")
	if [ -n "$level" ] && awk -v l="$level" 'BEGIN { exit !(l <= 2.2) }'; then
		pass "systemd-analyze security: exposure $level (target 2.2 or lower)"
	else
		fail "systemd-analyze security: exposure ${level:-?} (target 2.2 or lower)" \
			"$(grep '✗' <<<"$sec" | head -20)"
	fi
else
	skip "systemd-analyze verify accepts tlshd.service" "no systemd-analyze"
	skip "systemd-analyze security exposure" "no systemd-analyze"
fi

# --- --check-config --------------------------------------------------------
check() {	# name want-exit want-regex config-text
	local name=$1 want=$2 re=$3
	printf '%b' "$4" > "$dir/t.conf"
	out=$("$tlshd" --check-config -c "$dir/t.conf" 2>&1); rc=$?
	if [ "$rc" = "$want" ] && grep -Eq -- "$re" <<<"$out"; then
		pass "--check-config: $name (exit $rc)"
	else
		fail "--check-config: $name" "want exit $want matching '$re', got $rc:" "$out"
	fi
}

check "empty file" 0 "configuration OK" ""
check "ktls-utils style debug and keyrings" 0 "configuration OK" \
	"[debug]\nloglevel=1\ntls=0\nnl=0\n[authenticate]\nkeyrings=.nvme;.mine\n"
check "malformed group line" 1 "t.conf: malformed configuration" "[debug\nloglevel=1\n"
check "bad value names section and key" 1 "t.conf: \[debug\] loglevel" "[debug]\nloglevel=lots\n"
check "missing certificate names section, key and file" 1 \
	"t.conf: \[authenticate.server\] x509.certificate: cannot read $dir/none.pem" \
	"[authenticate.server]\nx509.certificate=$dir/none.pem\nx509.private_key=$dir/none.key\n"
check "every problem is reported: the first" 1 "client\] x509.crl: cannot read" \
	"[authenticate.client]\nx509.crl=$dir/no.crl\n[authenticate.server]\nx509.truststore=$dir/no-ca.pem\n"
grep -q "server\] x509.truststore: cannot read" <<<"$out" \
	&& pass "--check-config: every problem is reported: the second too" \
	|| fail "--check-config: every problem is reported: the second too" "$out"

if command -v certtool >/dev/null; then
	certtool --generate-privkey --key-type=ecdsa --outfile "$dir/k.key" 2>/dev/null
	chmod 600 "$dir/k.key"
	printf 'cn = "svc.test"\ndns_name = "svc.test"\ntls_www_server\nsigning_key\nexpiration_days = 365\nca\ncert_signing_key\n' > "$dir/tmpl"
	certtool --generate-self-signed --load-privkey "$dir/k.key" --template "$dir/tmpl" \
		--outfile "$dir/c.pem" 2>/dev/null
	good="[authenticate.server]\nx509.truststore=$dir/c.pem\nx509.certificate=$dir/c.pem\nx509.private_key=$dir/k.key\n"
	check "x509 server material that loads" 0 "configuration OK" "$good"
	chmod 644 "$dir/k.key"
	check "a private key readable by others" 1 "accessible to other users" "$good"
else
	skip "--check-config: x509 material" "no certtool (gnutls-bin)"
fi
out=$("$tlshd" --check-config -c "$dir/absent.conf" 2>&1); rc=$?
[ "$rc" = 1 ] && grep -q "absent.conf" <<<"$out" && pass "--check-config: a missing -c file (exit 1)" \
	|| fail "--check-config: a missing -c file" "rc=$rc $out"

# --- make install ----------------------------------------------------------
if [ -n "${TLSHD_BUILDDIR:-}" ] && [ -f "$TLSHD_BUILDDIR/Makefile" ]; then
	stage=$dir/stage
	if make -s -C "$TLSHD_BUILDDIR" install DESTDIR="$stage" >"$dir/install.log" 2>&1; then
		missing=""
		for f in sbin/tlshd lib/systemd/system/tlshd.service share/man/man8/tlshd.8 \
			 share/man/man5/tlshd.conf.5; do
			[ -n "$(find "$stage" -path "*/$f" -print -quit)" ] || missing="$missing $f"
		done
		conf=$(find "$stage" -name tlshd.conf -path '*etc*' -print -quit)
		[ -n "$conf" ] || missing="$missing etc/tlshd.conf"
		[ -z "$missing" ] && pass "make install: binary, unit, man pages and example config" \
			|| fail "make install: binary, unit, man pages and example config" "missing:$missing"
		unit=$(find "$stage" -name tlshd.service -print -quit)
		bin=$(sed -n 's/^ExecStart=//p' "$unit")
		[ -x "$stage$bin" ] && pass "installed unit starts the installed binary ($bin)" \
			|| fail "installed unit starts the installed binary" "ExecStart=$bin"
		if [ -n "$conf" ]; then
			echo "# edited by the administrator" >> "$conf"
			make -s -C "$TLSHD_BUILDDIR" install DESTDIR="$stage" >>"$dir/install.log" 2>&1
			grep -q "edited by the administrator" "$conf" \
				&& pass "make install keeps an existing tlshd.conf" \
				|| fail "make install keeps an existing tlshd.conf" "it was overwritten"
		fi
	else
		fail "make install" "$(tail -5 "$dir/install.log")"
	fi
else
	skip "make install" "TLSHD_BUILDDIR not set"
fi

echo "1..$n"
[ "$failed" = 0 ]
