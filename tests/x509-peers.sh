#!/bin/bash
# x509-peers.sh: the handshake engine (via tests/tlshd-probe) against
# independent TLS peers over loopback TCP, without kTLS: gnutls-serv and
# gnutls-cli, openssl s_server and s_client. Covers both roles, UNAUTH and
# X509 modes, and the verification failures; checks the keys the engine
# would give kTLS against the peer's key log; and checks start-up errors
# for bad certificate material. TAP on stdout. As in the daemon, the
# configured private keys are held by a key holder process (tlshd-probe
# -H) and the engine signs through it; RSA, ECDSA and Ed25519 keys.
#
# Certificates and keys are generated here, in a temporary directory.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)

# Keys for the keyring case go into a private session keyring.
if [ -z "${TLSHD_X509_SESSION:-}" ] && command -v keyctl >/dev/null; then
	TLSHD_X509_SESSION=1 exec keyctl session - bash "$0" "$@"
fi
probe=${TLSHD_PROBE:-$(pwd)/tests/tlshd-probe}
[ -x "$probe" ] || probe=$here/tlshd-probe

n=0
failed=0
pass() { n=$((n + 1)); echo "ok $n - $1"; }
fail() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; shift; for l in "$@"; do echo "#   $l"; done; }

for tool in certtool gnutls-serv gnutls-cli openssl keyctl; do
	if ! command -v "$tool" >/dev/null; then
		echo "1..0 # SKIP $tool missing (packages gnutls-bin, openssl, keyutils)"
		exit 0
	fi
done

dir=$(mktemp -d /tmp/tlshd-x509.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	rm -rf "$dir"
}
trap cleanup EXIT
cd "$dir" || exit 1

# --- test PKI -----------------------------------------------------------
key() { certtool --generate-privkey --key-type=ecdsa --outfile "$1.key" 2>/dev/null && chmod 600 "$1.key"; }
tmpl() { printf '%s\n' "$@" > tmpl; }
selfsign() { certtool --generate-self-signed --load-privkey "$1.key" --template tmpl --outfile "$1.pem" 2>/dev/null; }
sign() { certtool --generate-certificate --load-privkey "$1.key" --load-ca-certificate "$2.pem" \
		--load-ca-privkey "$2.key" --template tmpl --outfile "$1.pem" 2>/dev/null; }

key ca; tmpl 'cn = "tlshd test CA"' ca cert_signing_key crl_signing_key 'expiration_days = 365'; selfsign ca
key other; tmpl 'cn = "some other CA"' ca cert_signing_key 'expiration_days = 365'; selfsign other
srv_tmpl() { tmpl "cn = \"$1\"" 'dns_name = "server.test"' 'dns_name = "localhost"' \
	'ip_address = "127.0.0.1"' tls_www_server signing_key encryption_key "${@:2}"; }
key server; srv_tmpl server.test 'expiration_days = 365' 'serial = 1001'; sign server ca
key untrusted; srv_tmpl untrusted 'expiration_days = 365'; sign untrusted other
key expired; srv_tmpl expired 'activation_date = "2020-01-01 00:00:00"' \
	'expiration_date = "2020-02-01 00:00:00"'; sign expired ca
key revoked; srv_tmpl revoked 'expiration_days = 365' 'serial = 2002'; sign revoked ca
tmpl 'crl_next_update = 30' 'crl_number = 1'
certtool --generate-crl --load-ca-privkey ca.key --load-ca-certificate ca.pem \
	--load-certificate revoked.pem --template tmpl --outfile crl.pem 2>/dev/null
key client; tmpl 'cn = "client.test"' tls_www_client signing_key 'expiration_days = 365'; sign client ca
key rogue; tmpl 'cn = "rogue client"' tls_www_client signing_key 'expiration_days = 365'; sign rogue other
key oldclient; tmpl 'cn = "old client"' tls_www_client signing_key \
	'activation_date = "2020-01-01 00:00:00"' 'expiration_date = "2020-02-01 00:00:00"'
sign oldclient ca
key soon; srv_tmpl soon 'expiration_days = 10'; sign soon ca

conf() {	# conf NAME SECTION key=value...
	local name=$1 section=$2; shift 2
	{ echo "[$section]"; printf '%s\n' "$@"; } > "$name.conf"
}
conf client authenticate.client x509.truststore="$dir/ca.pem" \
	x509.certificate="$dir/client.pem" x509.private_key="$dir/client.key"
conf client-crl authenticate.client x509.truststore="$dir/ca.pem" x509.crl="$dir/crl.pem"
conf server authenticate.server x509.truststore="$dir/ca.pem" \
	x509.certificate="$dir/server.pem" x509.private_key="$dir/server.key"
conf server-noca authenticate.server \
	x509.certificate="$dir/server.pem" x509.private_key="$dir/server.key"

# --- helpers ------------------------------------------------------------
# Below the kernel's ephemeral range (32768 up), so that no client socket
# of a test running beside this one holds the port.
port=$((20000 + RANDOM % 12000))
next_port() { port=$((port + 1)); }
wait_port() {	# wait until something listens on $1 (up to 120 s)
	for _ in $(seq 2400); do
		(exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}
PRIO='NORMAL:-VERS-ALL:+VERS-TLS1.3'

# gnutls-serv on a fresh port with a fresh key log; args: cert, extra opts.
gserv() {
	local cert=$1; shift
	next_port
	rm -f kl
	SSLKEYLOGFILE=$dir/kl gnutls-serv -q --priority "$PRIO" -p "$port" \
		--x509certfile "$cert.pem" --x509keyfile "$cert.key" "$@" >/dev/null 2>&1 &
	pids+=($!)
	wait_port "$port"
}
stop_servers() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; pids=(); }

# Run the probe; sets $out (its key=value lines) and $rc.
probe_client() { out=$("$probe" client 127.0.0.1 "$port" -t 5000 -H "$@" 2>probe.err); rc=$?; }
field() { sed -n "s/^$1=//p" <<<"$out" | head -1; }

expect_ok() {	# name [extra checks via $out]
	if [ "$rc" = 0 ]; then pass "$1"; else
		fail "$1" "rc=$rc errno=$(field errno) reason=$(field reason)" "$(tail -3 probe.err)"; fi
}
expect_err() {	# name errno reason-substring
	if [ "$rc" != 0 ] && [ "$(field errno)" = "$2" ] && grep -qi -- "$3" <<<"$(field reason)"; then
		pass "$1 ($(field errno): $(field reason))"
	else
		fail "$1" "want $2 with '$3', got rc=$rc errno=$(field errno) reason=$(field reason)"
	fi
}

# --- client role against gnutls-serv -----------------------------------
gserv server
probe_client -c client.conf -n server.test -l "$dir/kl"
expect_ok "client unauth vs gnutls-serv, DNS name verified"
[ "$(field keylog)" = match ] && pass "client: keys for kTLS match gnutls-serv's key log" \
	|| fail "client: keys for kTLS match gnutls-serv's key log" "keylog=$(field keylog)"
[ -z "$(field remote_auth)" ] && pass "client unauth: no REMOTE_AUTH (NFS ignores it)" \
	|| fail "client unauth: no REMOTE_AUTH" "remote_auth=$(field remote_auth)"

probe_client -c client.conf -n 127.0.0.1
expect_ok "client: IP literal peername matches the IP SAN"
probe_client -c client.conf
expect_ok "client: no peername, the peer address matches the IP SAN"
probe_client -c client.conf -n 127.0.0.2
expect_err "client: IP literal not in the certificate" EACCES "name"
probe_client -c client.conf -n wrong.test
expect_err "client: DNS name mismatch" EACCES "name"
stop_servers

gserv untrusted
probe_client -c client.conf -n server.test
expect_err "client: server certificate from an untrusted CA" EACCES "signer\|trust"
stop_servers

gserv expired
probe_client -c client.conf -n server.test
expect_err "client: expired server certificate" EACCES "expired"
stop_servers

gserv revoked
probe_client -c client-crl.conf -n server.test
expect_err "client: server certificate revoked by the CRL" EACCES "revoked"
probe_client -c client.conf -n server.test
expect_ok "client: the same certificate passes without the CRL"
stop_servers

gserv server --require-client-cert --x509cafile ca.pem
# mtls requested but no certificate anywhere: refused before any byte is
# sent. (An unauth client facing a server that requires a certificate
# cannot tell in TLS 1.3: the server's alert comes after the client's
# Finished, on the kTLS socket, where the consumer sees it.)
probe_client -c client-crl.conf -n server.test -a x509
expect_err "client x509 (mtls) with no certificate to present" ENOKEY "no certificate"
probe_client -c client.conf -n server.test -a x509 -l "$dir/kl"
expect_ok "client x509 (mtls) with the configured certificate"
[ "$(field keylog)" = match ] && pass "client mtls: keys match the key log" \
	|| fail "client mtls: keys match the key log" "keylog=$(field keylog)"

# mtls with the certificate and key from the kernel keyring (DER payloads)
openssl x509 -in client.pem -outform DER -out client.der
openssl pkey -in client.key -outform DER -out client.key.der
ring=$(keyctl newring tlshd-x509-test @s 2>/dev/null)
if [ -n "$ring" ]; then
	cs=$(keyctl padd user tlshd-test-cert "$ring" < client.der)
	ks=$(keyctl padd user tlshd-test-key "$ring" < client.key.der)
	probe_client -c client-crl.conf -n server.test -a x509 -k "$cs,$ks"
	expect_ok "client x509 with certificate and key from the keyring"
	keyctl unlink "$ring" @s >/dev/null 2>&1
else
	fail "client x509 with certificate and key from the keyring" "cannot create a keyring"
fi
stop_servers

# --- client role against openssl s_server -------------------------------
next_port
rm -f okl
openssl s_server -quiet -tls1_3 -accept "$port" -cert server.pem -key server.key \
	-keylogfile "$dir/okl" >/dev/null 2>&1 </dev/null &
pids+=($!)
wait_port "$port"
probe_client -c client.conf -n server.test -l "$dir/okl"
expect_ok "client unauth vs openssl s_server"
[ "$(field keylog)" = match ] && pass "client: keys match openssl's key log" \
	|| fail "client: keys match openssl's key log" "keylog=$(field keylog)"
stop_servers

# --- server role ---------------------------------------------------------
# probe_server CONF CLIENT-COMMAND...: the engine accepts one connection
# from the client command, which runs with a 30 s limit.
probe_server() {
	local conf=$1 spid; shift
	rm -f ckl
	# Port 0: the probe listens on a port the kernel picks, so that tests
	# running beside this one cannot take it; the client gets it as @PORT@.
	"$probe" server 0 -t 5000 -H -c "$conf" -l "$dir/ckl" > srv.out 2>probe.err &
	spid=$!
	# Start-up loads trust stores; on a busy machine, under the sanitizers,
	# that can take many seconds.
	for _ in $(seq 2400); do grep -q '^listening=' srv.out && break; sleep 0.05; done
	port=$(sed -n 's/^listening=//p' srv.out)
	[ -n "$port" ] || echo "# probe server: not listening after 120 s: $(tr '\n' ' ' < probe.err)"
	# (127.0.0.1, not localhost, which may resolve to ::1 first.)
	timeout 30 "${@//@PORT@/$port}" </dev/null >client.out 2>&1
	wait "$spid"; rc=$?
	out=$(cat srv.out)
	[ "$rc" = 2 ] && echo "# probe server: $(tr '\n' ' ' < srv.out) $(tr '\n' ' ' < probe.err); client: $(tail -3 client.out | tr '\n' ' ')"
}
gcli=(env SSLKEYLOGFILE="$dir/ckl" gnutls-cli --priority "$PRIO" --x509cafile ca.pem)

probe_server server.conf "${gcli[@]}" -p @PORT@ 127.0.0.1
expect_ok "server x509 vs gnutls-cli without a client certificate"
[ -z "$(field remote_auth)" ] && pass "server: no client certificate, no REMOTE_AUTH" \
	|| fail "server: no client certificate, no REMOTE_AUTH" "remote_auth=$(field remote_auth)"
[ "$(field keylog)" = match ] && pass "server: keys match gnutls-cli's key log" \
	|| fail "server: keys match gnutls-cli's key log" "keylog=$(field keylog)"

probe_server server.conf "${gcli[@]}" --x509certfile client.pem --x509keyfile client.key -p @PORT@ 127.0.0.1
expect_ok "server x509 vs gnutls-cli with a trusted client certificate"
[ "$(field remote_auth)" = 4294967295 ] && pass "server: verified client certificate gives a non-zero REMOTE_AUTH" \
	|| fail "server: verified client certificate gives a non-zero REMOTE_AUTH" "remote_auth=$(field remote_auth)"
[ "$(field identity)" = "subject='CN=client.test' issuer='CN=tlshd test CA'" ] &&
	pass "server: the log entry names the client certificate's subject and issuer" ||
	fail "server: the log entry names the client certificate's subject and issuer" "identity=$(field identity)"

probe_server server.conf "${gcli[@]}" --x509certfile rogue.pem --x509keyfile rogue.key -p @PORT@ 127.0.0.1
expect_err "server: client certificate from an untrusted CA" EACCES "signer\|trust"
grep -qi "alert\|fatal" client.out && pass "server: the rejected client got a fatal alert" \
	|| fail "server: the rejected client got a fatal alert" "$(tail -3 client.out)"

probe_server server.conf "${gcli[@]}" --x509certfile oldclient.pem --x509keyfile oldclient.key -p @PORT@ 127.0.0.1
expect_err "server: expired client certificate" EACCES "expired"

probe_server server.conf openssl s_client -quiet -tls1_3 -connect 127.0.0.1:@PORT@ \
	-CAfile ca.pem -cert client.pem -key client.key -keylogfile "$dir/ckl"
expect_ok "server x509 vs openssl s_client with a client certificate"
[ "$(field remote_auth)" = 4294967295 ] && pass "server: REMOTE_AUTH set for openssl's verified certificate" \
	|| fail "server: REMOTE_AUTH set for openssl's verified certificate" "remote_auth=$(field remote_auth)"
[ "$(field keylog)" = match ] && pass "server: keys match openssl's key log" \
	|| fail "server: keys match openssl's key log" "keylog=$(field keylog)"

# Trust defaults closed: with no CA named for clients, a client
# certificate authenticates nobody (before, the system's CAs were used,
# so any public CA's client certificate passed xprtsec=mtls). The client's
# certificate is from the test CA, which the system store lacks: the old
# daemon refused the handshake; now it is not asked for at all.
probe_server server-noca.conf "${gcli[@]}" --x509certfile client.pem --x509keyfile client.key -p @PORT@ 127.0.0.1
expect_ok "server without a client trust store vs a client with a certificate"
[ -z "$(field remote_auth)" ] && pass "server: no client trust store, no REMOTE_AUTH" \
	|| fail "server: no client trust store, no REMOTE_AUTH" "remote_auth=$(field remote_auth)"
grep -q 'client certificates are not requested' probe.err \
	&& pass "server: start-up says client certificates are not requested" \
	|| fail "server: start-up says client certificates are not requested" "$(head -3 probe.err)"

# --- the key holder signs with every kind of key ------------------------
# (The CertificateVerify of an RSA key is RSA-PSS, of Ed25519 EdDSA over
# the whole content: the holder gets a hash for one, the content for the
# other.)
for kt in rsa ed25519; do
	certtool --generate-privkey --key-type=$kt --outfile srv-$kt.key 2>/dev/null
	chmod 600 srv-$kt.key
	srv_tmpl server.test 'expiration_days = 365'; sign srv-$kt ca
	conf srv-$kt authenticate.server x509.truststore="$dir/ca.pem" \
		x509.certificate="$dir/srv-$kt.pem" x509.private_key="$dir/srv-$kt.key"
	probe_server srv-$kt.conf "${gcli[@]}" --x509certfile client.pem --x509keyfile client.key \
		-p @PORT@ 127.0.0.1
	expect_ok "server x509 with an $kt key in the key holder vs gnutls-cli (mutual)"
done
certtool --generate-privkey --key-type=rsa --outfile cli-rsa.key 2>/dev/null; chmod 600 cli-rsa.key
tmpl 'cn = "rsa client"' tls_www_client signing_key 'expiration_days = 365'; sign cli-rsa ca
conf client-rsa authenticate.client x509.truststore="$dir/ca.pem" \
	x509.certificate="$dir/cli-rsa.pem" x509.private_key="$dir/cli-rsa.key"
gserv server --require-client-cert --x509cafile ca.pem
probe_client -c client-rsa.conf -n server.test -a x509 -l "$dir/kl"
expect_ok "client x509 with an RSA key in the key holder vs gnutls-serv requiring a client certificate"
stop_servers

# --- a key in a PKCS#11 token (SoftHSM), behind the key holder ---------
# SoftHSM keeps an EC private key without its public half: the holder
# checks it against the certificate with a test signature.
if command -v softhsm2-util >/dev/null && command -v p11tool >/dev/null; then
	mkdir -p "$dir/hsm"
	printf 'directories.tokendir = %s/hsm\nobjectstore.backend = file\nlog.level = ERROR\n' \
		"$dir" >"$dir/softhsm2.conf"
	export SOFTHSM2_CONF=$dir/softhsm2.conf
	softhsm2-util --init-token --free --label tlshd-x509 --pin 1234 --so-pin 5678 >/dev/null 2>&1
	url=$(p11tool --list-token-urls 2>/dev/null | grep 'token=tlshd-x509' | head -n 1)
	for obj in server:srv client:other; do
		GNUTLS_PIN=1234 p11tool --login --write --load-privkey "${obj%%:*}.key" \
			--label "${obj#*:}" "$url" >/dev/null 2>&1
	done
	p11key() { echo "x509.private_key=pkcs11:token=tlshd-x509;object=$1;type=private;pin-value=1234"; }
	conf hsm authenticate.server x509.truststore="$dir/ca.pem" \
		x509.certificate="$dir/server.pem" "$(p11key srv)"
	probe_server hsm.conf "${gcli[@]}" --x509certfile client.pem --x509keyfile client.key \
		-p @PORT@ 127.0.0.1
	expect_ok "server x509 with its key in a PKCS#11 token (SoftHSM, key URL) in the key holder vs gnutls-cli"
	grep -q 'a private key is a key URL' probe.err \
		&& pass "the key holder says a URL key keeps its uid and the unit's filter" \
		|| fail "the key holder says a URL key keeps its uid and the unit's filter" "$(head -3 probe.err)"
	conf bad authenticate.server x509.certificate="$dir/server.pem" "$(p11key other)"
	"$probe" client 127.0.0.1 1 -H -c bad.conf >/dev/null 2>startup.err
	grep -q 'does not belong' startup.err \
		&& pass "start-up refuses a PKCS#11 key that does not belong to the certificate" \
		|| fail "start-up refuses a PKCS#11 key that does not belong to the certificate" "$(cat startup.err)"
	unset SOFTHSM2_CONF
else
	n=$((n + 1)); echo "ok $n - PKCS#11 key # SKIP softhsm2-util or p11tool missing (packages softhsm2, gnutls-bin)"
fi

# --- start-up checks of the configured material ------------------------
startup() {	# name want-substring section key=value...
	local name=$1 want=$2; shift 2
	conf bad "$@"
	"$probe" client 127.0.0.1 1 -H -c bad.conf >/dev/null 2>startup.err
	if grep -qi -- "$want" startup.err; then pass "start-up refuses $name"
	else fail "start-up refuses $name" "$(cat startup.err)"; fi
}
cp server.key open.key; chmod 644 open.key
startup "a key readable by others" "accessible to other users" authenticate.server \
	x509.certificate="$dir/server.pem" x509.private_key="$dir/open.key"
startup "a key that does not match the certificate" "does not belong" authenticate.server \
	x509.certificate="$dir/server.pem" x509.private_key="$dir/client.key"
startup "an expired certificate" "expired on" authenticate.server \
	x509.certificate="$dir/expired.pem" x509.private_key="$dir/expired.key"
startup "an unreadable certificate" "cannot read" authenticate.server \
	x509.certificate="$dir/missing.pem" x509.private_key="$dir/server.key"
echo "not a certificate" > empty.pem
startup "a trust store without a CA" "no usable CA" authenticate.client \
	x509.truststore="$dir/empty.pem"
conf soon authenticate.server x509.certificate="$dir/soon.pem" x509.private_key="$dir/soon.key"
"$probe" client 127.0.0.1 1 -c soon.conf >/dev/null 2>startup.err
grep -q "expires on" startup.err && ! grep -q "init=failed" startup.err \
	&& pass "a certificate expiring within 30 days is a warning, not an error" \
	|| fail "a certificate expiring within 30 days is a warning" "$(cat startup.err)"

# ktls-utils' post-quantum dual certificate: accepted, one clear warning,
# and the classic certificate still loads (no GnuTLS Debian ships has ML-DSA).
conf pq authenticate.server x509.certificate="$dir/server.pem" x509.private_key="$dir/server.key" \
	x509.pq.certificate="$dir/server.pem" x509.pq.private_key="$dir/server.key"
"$probe" client 127.0.0.1 1 -c pq.conf >/dev/null 2>startup.err
grep -q "ML-DSA" startup.err && ! grep -q "init=failed\|unknown" startup.err \
	&& pass "x509.pq.* are accepted with one warning that names what is missing" \
	|| fail "x509.pq.* are accepted with one warning" "$(cat startup.err)"

echo "1..$n"
[ "$failed" = 0 ]
