#!/bin/bash
# layers.sh: the module structure holds (TAP).
#  - no #include cycle among src/ headers;
#  - no cycle among the daemon's modules, by symbol: module A depends on
#    module B when A's object uses a function or variable B's defines
#    (nm on the built src/libtlshd.a);
#  - the handshake engine's calls only go down: tls.c -> tls-client.c,
#    tls-server.c, tls-x509.c -> tls-session.c; nothing outside the engine
#    uses its lower layers, and worker.c/main.c/tests include only tls.h.
set -u

src=${TLSHD_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
build=${TLSHD_BUILDDIR:-$src}
lib=$build/src/libtlshd.a
n=0 failed=0

check() {	# check DESCRIPTION COMMAND...
	local what=$1; shift
	n=$((n + 1))
	if out=$("$@" 2>&1); then
		echo "ok $n - $what"
	else
		echo "not ok $n - $what"
		printf '%s\n' "$out" | sed 's/^/#   /'
		failed=$((failed + 1))
	fi
}

# Edges "from to", one a line, on stdin; prints one cycle and fails if any.
acyclic() {
	awk '
	{ adj[$1] = adj[$1] " " $2; node[$1]; node[$2] }
	function visit(v,   i, k, m, w) {
		state[v] = 1; stack[++depth] = v
		m = split(adj[v], w, " ")
		for (i = 1; i <= m; i++) {
			if (state[w[i]] == 1) {
				cyc = ""
				for (k = depth; k >= 1 && stack[k] != w[i]; k--) cyc = stack[k] " -> " cyc
				print "cycle: " w[i] " -> " cyc w[i]; found = 1; return
			}
			if (!state[w[i]]) visit(w[i])
			if (found) return
		}
		state[v] = 2; depth--
	}
	END { for (v in node) if (!state[v] && !found) visit(v); exit found }'
}

include_edges() {
	local f
	for f in "$src"/src/*.[ch]; do
		sed -n 's/^#include "\([^"]*\)".*/\1/p' "$f" | grep -v '^build-config.h$' |
			sed "s|^|$(basename "$f") |"
	done
}

# "user.o definer.o" for every symbol user.o takes from another object.
symbol_edges() {
	nm -A "$lib" | awk '
	{ split($1, p, ":"); obj = p[2] }
	NF == 3 && $2 ~ /^[TDBR]$/ { def[$3] = obj }
	NF == 2 && $1 ~ /:$/ && $2 != "" { next }
	$(NF - 1) == "U" { use[obj, $NF] = 1 }
	END {
		for (k in use) {
			split(k, q, SUBSEP)
			if ((q[2] in def) && def[q[2]] != q[1]) print q[1], def[q[2]]
		}
	}' | sort -u
}

# The engine's layer of an object (1 top, 2 middle, 3 bottom), 0 outside.
layer_of() {
	case $1 in
	tls.o) echo 1 ;;
	tls-client.o|tls-server.o|tls-x509.o) echo 2 ;;
	tls-session.o) echo 3 ;;
	*) echo 0 ;;
	esac
}

calls_go_down() {
	local from to lf lt bad=0
	while read -r from to; do
		lf=$(layer_of "$from") lt=$(layer_of "$to")
		[ "$lt" = 0 ] && continue
		if [ "$lf" = 0 ] && [ "$lt" != 1 ]; then
			echo "$from uses $to, below the engine's top (tls.h)"; bad=1
		elif [ "$lf" != 0 ] && [ "$lt" -lt "$lf" ]; then
			echo "$from calls up into $to"; bad=1
		fi
	done < <(symbol_edges)
	return $bad
}

engine_header_only() {
	local bad=0 f
	for f in "$src"/src/*.c "$src"/tests/*.c; do
		case $(basename "$f") in tls*.c) continue ;; esac
		if grep -n '^#include "tls-\(internal\|session\)\.h"' "$f"; then
			echo "$f includes the engine's internals"; bad=1
		fi
	done
	return $bad
}

[ -f "$lib" ] || { echo "1..0 # SKIP $lib not built"; exit 0; }
check "no #include cycle among src/ headers" acyclic < <(include_edges)
check "no dependency cycle among the modules of libtlshd.a (by symbol)" \
	acyclic < <(symbol_edges)
check "the handshake engine only calls down (tls -> role parts -> tls-session)" calls_go_down
check "outside the engine only tls.h is included" engine_header_only
# The checks must see something: the engine's edges exist.
check "the symbol graph sees tls.o -> tls-client.o -> tls-session.o" \
	bash -c "grep -qx 'tls.o tls-client.o' <<<\"\$1\" && grep -qx 'tls-client.o tls-session.o' <<<\"\$1\"" _ "$(symbol_edges)"
echo "1..$n"
[ "$failed" = 0 ]
