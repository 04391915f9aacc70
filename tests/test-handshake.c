// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Tests of the handshake engine (tls*.c, keyring.c, ktls.c) without the
 * kernel's handshake family: a client and a server engine talk over a
 * TCP loopback connection (the engine serves TCP sockets only), with PSKs
 * in a private session keyring, and kTLS left out (the keys each side
 * would install are compared instead).
 */
#include "build-config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <keyutils.h>

#include "config.h"
#include "log.h"
#include "tap.h"
#include "tls.h"
#include "util.h"

static struct tlshd_context ctx;
static key_serial_t server_ring, client_ring;

struct side {
	struct tlshd_request req;
	struct tlshd_tls_outcome out;
};

/* A connected TCP pair over 127.0.0.1, as the kernel's consumers hold. */
static void tcp_pair(int sv[2])
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sin);
	int l = socket(AF_INET, SOCK_STREAM, 0);

	sv[0] = sv[1] = -1;
	if (l < 0 || bind(l, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(l, 1) < 0 ||
	    getsockname(l, (struct sockaddr *)&sin, &len) < 0) {
		printf("Bail out! no TCP loopback: %s\n", strerror(errno));
		exit(1);
	}
	sv[0] = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(sv[0], (struct sockaddr *)&sin, sizeof(sin)) < 0) {
		printf("Bail out! connect to 127.0.0.1: %s\n", strerror(errno));
		exit(1);
	}
	sv[1] = accept(l, NULL, NULL);
	close(l);
}

static void *side_run(void *arg)
{
	struct side *s = arg;

	tlshd_tls_run(&ctx, &s->req, TLSHD_TLS_NO_KTLS, &s->out);
	close(s->req.sockfd);
	return NULL;
}

static void side_init(struct side *s, enum tlshd_role role, int fd)
{
	memset(s, 0, sizeof(*s));
	s->req.role = role;
	s->req.auth = TLSHD_AUTH_PSK;
	s->req.sockfd = fd;
	s->req.timeout_ms = 5000;
}

/* Runs a client offering @client_key against a server searching
 * server_ring. */
static void run_pair(struct side *c, struct side *s, key_serial_t client_key)
{
	pthread_t tc, ts;
	int sv[2];

	tcp_pair(sv);
	side_init(c, TLSHD_ROLE_CLIENT, sv[0]);
	c->req.num_peerids = 1;
	c->req.peerids[0] = client_key;
	side_init(s, TLSHD_ROLE_SERVER, sv[1]);
	s->req.num_peerids = 1;			/* as nvmet sends it: one 0 */
	s->req.keyring = server_ring;
	pthread_create(&tc, NULL, side_run, c);
	pthread_create(&ts, NULL, side_run, s);
	pthread_join(tc, NULL);
	pthread_join(ts, NULL);
}

static key_serial_t add_psk(const char *identity, size_t len, unsigned char fillc,
			    key_serial_t ring)
{
	unsigned char key[64];

	memset(key, fillc, sizeof(key));
	return add_key("user", identity, key, len, ring);
}

static bool same_keys(const struct tlshd_ktls_crypto *a, const struct tlshd_ktls_crypto *b)
{
	return a->len && a->len == b->len && !memcmp(&a->u, &b->u, a->len);
}

static void test_psk_ok(size_t len, const char *want_suite)
{
	struct side c, s;
	char id[64], want[128];
	key_serial_t k;

	snprintf(id, sizeof(id), "NVMe0R0%d host-%zu sub", len == 48 ? 2 : 1, len);
	k = add_psk(id, len, 0x5a, server_ring);
	run_pair(&c, &s, k);
	is_int(c.out.result.status, 0, "%zu-byte PSK: client handshake (%s)", len, c.out.reason);
	is_int(s.out.result.status, 0, "%zu-byte PSK: server handshake (%s)", len, s.out.reason);
	ok(strlen(c.out.cipher) > 7 &&
	   !strcmp(c.out.cipher + strlen(c.out.cipher) - 7, want_suite),
	   "%zu-byte PSK negotiates a *%s suite (got %s)", len, want_suite, c.out.cipher);
	ok(same_keys(&c.out.tx, &s.out.rx) && same_keys(&c.out.rx, &s.out.tx),
	   "%zu-byte PSK: client TX = server RX and client RX = server TX", len);
	ok(!same_keys(&c.out.tx, &c.out.rx), "directions use different keys");
	ok(c.out.result.num_remote_auth == 1 && c.out.result.remote_auth[0] == k,
	   "client reports the PSK it used as REMOTE_AUTH");
	ok(s.out.result.num_remote_auth == 1 && s.out.result.remote_auth[0] == k,
	   "server reports the PSK it found as REMOTE_AUTH");
	snprintf(want, sizeof(want), "psk=%d identity='%s'", k, id);
	is_str(c.out.identity, want, "the client's log entry names the PSK it used");
	is_str(s.out.identity, want, "the server's log entry names the PSK it found");
}

/* GnuTLS < 3.8.11 (no gnutls_psk_allocate_client_credentials2; Debian 13
 * has 3.8.9) cannot bind a SHA-384 PSK: the client says so plainly
 * instead of failing the handshake with an opaque error. */
static void __attribute__((unused)) test_psk_sha384_refused(void)
{
	struct side c, s;
	key_serial_t k;

	k = add_psk("NVMe0R02 host-48 sub", 48, 0x5a, server_ring);
	run_pair(&c, &s, k);
	is_int(c.out.result.status, EOPNOTSUPP, "48-byte PSK with GnuTLS < 3.8.11: EOPNOTSUPP");
	ok(strstr(c.out.reason, "GnuTLS 3.8.11 or later") != NULL, "the reason names the fix: %s",
	   c.out.reason);
	ok(s.out.result.status != 0, "the server sees the connection end (%s)", s.out.reason);
}

/* An identity longer than a log entry names is cut, and says so. */
static void test_psk_long_identity(void)
{
	char id[800];
	struct side c, s;
	key_serial_t k;
	size_t n;

	memset(id, 'x', sizeof(id) - 1);
	memcpy(id, "NVMe0R01 ", 9);
	id[sizeof(id) - 1] = '\0';
	k = add_psk(id, 32, 0x5a, server_ring);
	run_pair(&c, &s, k);
	is_int(s.out.result.status, 0, "a %zu-byte identity: server handshake (%s)", strlen(id),
	       s.out.reason);
	n = strlen(s.out.identity);
	is_int(n, TLSHD_LOG_IDENTITY_MAX, "its log entry's identity is cut to %d bytes",
	       TLSHD_LOG_IDENTITY_MAX);
	ok(n > 4 && !strcmp(s.out.identity + n - 4, "...'") &&
	   !strncmp(s.out.identity, "psk=", 4), "and ends in ...' (%.12s...%s)", s.out.identity,
	   n > 4 ? s.out.identity + n - 4 : "");
}

static void test_psk_mismatch(void)
{
	struct side c, s;
	key_serial_t k, theirs;
	char want[128];

	theirs = add_psk("NVMe0R01 mismatch sub", 32, 0x11, server_ring);
	k = add_psk("NVMe0R01 mismatch sub", 32, 0x22, client_ring);
	run_pair(&c, &s, k);
	is_int(s.out.result.status, EACCES, "different keys: server reports EACCES (%s)",
	       s.out.reason);
	is_int(c.out.result.status, EACCES, "different keys: client reports EACCES (%s)",
	       c.out.reason);
	is_int(c.out.result.num_remote_auth, 0, "no REMOTE_AUTH on failure");
	snprintf(want, sizeof(want), "psk=%d identity='NVMe0R01 mismatch sub'", theirs);
	is_str(s.out.identity, want, "the server's failure entry names the key it chose");
}

static void test_psk_unknown(void)
{
	struct side c, s;
	key_serial_t k;

	k = add_psk("NVMe0R01 nobody-knows-me sub", 32, 0x33, client_ring);
	run_pair(&c, &s, k);
	is_int(s.out.result.status, EKEYREJECTED, "unknown identity: server EKEYREJECTED (%s)",
	       s.out.reason);
	is_int(c.out.result.status, EKEYREJECTED,
	       "unknown identity: client sees unknown_psk_identity, EKEYREJECTED (%s)",
	       c.out.reason);
}

static void test_no_key(void)
{
	struct side c;
	int sv[2];

	tcp_pair(sv);
	side_init(&c, TLSHD_ROLE_CLIENT, sv[0]);
	c.req.num_peerids = 2;
	c.req.peerids[0] = 0;
	c.req.peerids[1] = 0x7ffffff0;		/* no such key */
	side_run(&c);
	is_int(c.out.result.status, ENOKEY, "no readable PSK: ENOKEY (%s)", c.out.reason);
	close(sv[1]);
}

/* nfsd's request with no server certificate configured: the client must
 * get a fatal alert at once, not a closed connection it would retry. */
static void test_server_x509_without_certificate(void)
{
	pthread_t tc, ts;
	struct side c, s;
	int sv[2];

	tcp_pair(sv);
	side_init(&c, TLSHD_ROLE_CLIENT, sv[0]);
	c.req.auth = TLSHD_AUTH_UNAUTH;
	c.req.has_peername = true;
	strcpy(c.req.peername, "server.test");
	side_init(&s, TLSHD_ROLE_SERVER, sv[1]);
	s.req.auth = TLSHD_AUTH_X509;
	pthread_create(&tc, NULL, side_run, &c);
	pthread_create(&ts, NULL, side_run, &s);
	pthread_join(tc, NULL);
	pthread_join(ts, NULL);
	is_int(s.out.result.status, ENOKEY, "server without a certificate: ENOKEY (%s)",
	       s.out.reason);
	is_int(c.out.result.status, EACCES, "the client got a fatal alert, EACCES (%s)",
	       c.out.reason);
	ok(strstr(c.out.reason, "alert") != NULL, "the client's reason names the alert");
}

static long elapsed_ms(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (t1.tv_sec - t0->tv_sec) * 1000 + (t1.tv_nsec - t0->tv_nsec) / 1000000;
}

static void test_server_vs(const char *what, const char *bytes, bool close_now,
			   int want, unsigned int timeout_ms)
{
	struct timespec t0;
	struct side s;
	int sv[2];

	tcp_pair(sv);
	side_init(&s, TLSHD_ROLE_SERVER, sv[1]);
	s.req.keyring = server_ring;
	s.req.timeout_ms = timeout_ms;
	if (bytes)
		write(sv[0], bytes, strlen(bytes));
	if (close_now)
		close(sv[0]);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	side_run(&s);
	is_int(s.out.result.status, want, "%s: server reports %s (%s, %ld ms)", what,
	       tlshd_errno_name(want), s.out.reason, elapsed_ms(&t0));
	if (want == ETIMEDOUT && !close_now)
		ok(elapsed_ms(&t0) >= timeout_ms && elapsed_ms(&t0) < timeout_ms + 2000,
		   "%s: gave up at the deadline, not before and not much later", what);
	if (!close_now)
		close(sv[0]);
}

static void *cut_peer_run(void *arg)
{
	int fd = *(int *)arg;

	/* A record header promising 512 bytes, then nothing until the
	 * close, which comes while the server waits for the rest. */
	write(fd, "\x16\x03\x01\x02\x00", 5);
	usleep(200000);
	close(fd);
	return NULL;
}

/* A peer that goes away in the middle of a record went away (the consumer
 * may retry: ETIMEDOUT); it did not speak garbage (EPROTO). */
static void test_server_cut(void)
{
	pthread_t tp;
	struct side s;
	int sv[2];

	tcp_pair(sv);
	side_init(&s, TLSHD_ROLE_SERVER, sv[1]);
	s.req.keyring = server_ring;
	pthread_create(&tp, NULL, cut_peer_run, &sv[0]);
	side_run(&s);
	pthread_join(tp, NULL);
	is_int(s.out.result.status, ETIMEDOUT, "peer closes mid-record: server reports ETIMEDOUT (%s)",
	       s.out.reason);
}

/* A peer that keeps writing @rec (one TLS record) for @secs seconds. */
struct flood {
	int fd;
	const unsigned char *rec;
	size_t len;
	int secs;
};

static void *flood_run(void *arg)
{
	struct flood *f = arg;
	struct timespec t0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (elapsed_ms(&t0) < f->secs * 1000)
		if (send(f->fd, f->rec, f->len, MSG_NOSIGNAL) < 0 && errno != EAGAIN &&
		    errno != EINTR)
			break;
	return NULL;
}

/*
 * Deadlines hold against a peer that never stops sending: the early
 * rejection of a server without a certificate (bytes that are no
 * ClientHello) and the handshake loop (records GnuTLS accepts without
 * failing). The flood lasts 4 s; the request's timeout is 500 ms, so a
 * daemon that only looks at the clock when the socket runs dry would
 * take the whole 4 s.
 */
/* Stops the client just before it would send its Finished. */
static int hold_finished(gnutls_session_t s, unsigned int htype, unsigned int when,
			 unsigned int incoming, const gnutls_datum_t *msg)
{
	return GNUTLS_E_USER_ERROR;
}

/*
 * A client that knows the PSK, gets the server's flight, and then sends
 * warning alerts (user_canceled, encrypted under the handshake keys)
 * for 4 s instead of its Finished. GnuTLS 3.7 ends a TLS 1.3 handshake
 * at the first of them; the engine's loop also checks the deadline on
 * every pass, for records a GnuTLS lets through without failing.
 */
static void *warning_client_run(void *arg)
{
	struct flood *f = arg;
	gnutls_psk_client_credentials_t cred;
	gnutls_datum_t key = { (unsigned char *)f->rec, f->len };
	struct timespec t0;
	gnutls_session_t c;
	int r;

	gnutls_psk_allocate_client_credentials(&cred);
	gnutls_psk_set_client_credentials(cred, "NVMe0R01 flood sub", &key, GNUTLS_PSK_KEY_RAW);
	gnutls_init(&c, GNUTLS_CLIENT);
	gnutls_priority_set_direct(c, "NORMAL:-VERS-ALL:+VERS-TLS1.3:+PSK:+ECDHE-PSK:%ALLOW_SMALL_RECORDS", NULL);
	gnutls_credentials_set(c, GNUTLS_CRD_PSK, cred);
	gnutls_transport_set_int(c, f->fd);
	gnutls_handshake_set_hook_function(c, GNUTLS_HANDSHAKE_FINISHED, GNUTLS_HOOK_PRE,
					   hold_finished);
	do {
		r = gnutls_handshake(c);
	} while (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (r == GNUTLS_E_USER_ERROR && elapsed_ms(&t0) < f->secs * 1000)
		if (gnutls_alert_send(c, GNUTLS_AL_WARNING, GNUTLS_A_USER_CANCELED) < 0)
			break;
	gnutls_deinit(c);
	gnutls_psk_free_client_credentials(cred);
	return NULL;
}

/* The server side of test_flood() with @peer as the other end. */
static void run_flooded(const char *what, enum tlshd_auth auth, void *(*peer)(void *),
			struct flood *f)
{
	struct timespec t0;
	pthread_t tf;
	struct side s;
	int sv[2];
	long ms;

	tcp_pair(sv);
	f->fd = sv[0];
	side_init(&s, TLSHD_ROLE_SERVER, sv[1]);
	s.req.auth = auth;
	s.req.keyring = server_ring;
	s.req.timeout_ms = 500;
	pthread_create(&tf, NULL, peer, f);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	side_run(&s);
	ms = elapsed_ms(&t0);
	ok(s.out.result.status != 0, "%s: the server gives up (%s: %s)", what,
	   tlshd_errno_name(s.out.result.status), s.out.reason);
	ok(ms < 2500, "%s: within its deadline, not when the peer stops (%ld ms)", what, ms);
	pthread_join(tf, NULL);
	close(sv[0]);
}

static void test_floods(void)
{
	static unsigned char junk[4096], psk[32];
	struct flood f = { .rec = junk, .len = sizeof(junk), .secs = 4 };

	memset(junk, 'A', sizeof(junk));
	run_flooded("endless bytes to a server without a certificate", TLSHD_AUTH_X509,
		    flood_run, &f);
	memset(psk, 0x77, sizeof(psk));
	add_psk("NVMe0R01 flood sub", sizeof(psk), 0x77, server_ring);
	f = (struct flood){ .rec = psk, .len = sizeof(psk), .secs = 4 };
	run_flooded("endless warning alerts instead of Finished", TLSHD_AUTH_PSK,
		    warning_client_run, &f);
}

/* Where the key sits in the crypto info of each cipher kTLS takes. */
static const unsigned char *ktls_key(const struct tlshd_ktls_crypto *c)
{
	switch (c->u.info.cipher_type) {
	case TLS_CIPHER_AES_GCM_128:
		return c->u.aes_gcm_128.key;
	case TLS_CIPHER_AES_GCM_256:
		return c->u.aes_gcm_256.key;
	case TLS_CIPHER_AES_CCM_128:
		return c->u.aes_ccm_128.key;
	case TLS_CIPHER_CHACHA20_POLY1305:
		return c->u.chacha20_poly1305.key;
	}
	return c->u.aes_gcm_128.key;
}

static void hex(const unsigned char *p, size_t n, char *buf)
{
	for (size_t i = 0; i < n; i++)
		sprintf(buf + 2 * i, "%02x", p[i]);
}

/*
 * With GnuTLS's debug output at any level a configuration may ask for,
 * the traffic keys handed to kTLS never reach the log. The log of one
 * PSK handshake (both sides) goes to a file, which must hold GnuTLS's
 * lines (or the test would prove nothing) and neither direction's key.
 */
static void test_no_keys_in_log(void)
{
	char path[] = "/tmp/tlshd-test-log.XXXXXX", khex[2][65];
	int fd = mkstemp(path), saved = dup(2);
	struct side c, s;
	char *log = NULL;
	size_t len = 0;
	key_serial_t k;

	k = add_psk("NVMe0R01 logged sub", 32, 0x3c, server_ring);
	tlshd_log_set_debug(true);
	tlshd_tls_set_debug(99);
	fflush(stderr);
	dup2(fd, 2);
	run_pair(&c, &s, k);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	tlshd_tls_set_debug(0);
	tlshd_log_set_debug(false);
	is_int(c.out.result.status, 0, "a handshake at GnuTLS debug level 99 (%s)", c.out.cipher);
	tlshd_util_read_file(path, 16 << 20, &log, &len, NULL);
	ok(log && strstr(log, "gnutls(") != NULL, "GnuTLS's debug lines are logged (%zu bytes)",
	   len);
	/* The first 16 bytes of each key: every kTLS cipher's key is that long. */
	hex(ktls_key(&c.out.tx), 16, khex[0]);
	hex(ktls_key(&c.out.rx), 16, khex[1]);
	ok(log && !strcasestr(log, khex[0]) && !strcasestr(log, khex[1]),
	   "neither traffic key is in the log");
	free(log);
	close(fd);
	unlink(path);
}

/* A GnuTLS peer (not our engine) that takes records of at most @max_recv
 * bytes and so sends record_size_limit: in its ClientHello as a client,
 * in its EncryptedExtensions as a server. */
struct small_peer {
	int fd;
	bool server;
	size_t max_recv;
	const char *identity;
	unsigned char key[32];
	int ret;
};

static int small_peer_key(gnutls_session_t s, const char *username, gnutls_datum_t *key)
{
	struct small_peer *p = gnutls_session_get_ptr(s);

	key->data = gnutls_malloc(sizeof(p->key));
	memcpy(key->data, p->key, sizeof(p->key));
	key->size = sizeof(p->key);
	return 0;
}

static void *small_peer_run(void *arg)
{
	struct small_peer *p = arg;
	gnutls_psk_client_credentials_t cc = NULL;
	gnutls_psk_server_credentials_t sc = NULL;
	gnutls_datum_t key = { p->key, sizeof(p->key) };
	gnutls_session_t s;

	gnutls_init(&s, p->server ? GNUTLS_SERVER : GNUTLS_CLIENT);
	gnutls_session_set_ptr(s, p);
	gnutls_priority_set_direct(s, "NORMAL:-VERS-ALL:+VERS-TLS1.3:+PSK:+ECDHE-PSK:%ALLOW_SMALL_RECORDS", NULL);
	if (p->server) {
		gnutls_psk_allocate_server_credentials(&sc);
		gnutls_psk_set_server_credentials_function(sc, small_peer_key);
		gnutls_credentials_set(s, GNUTLS_CRD_PSK, sc);
	} else {
		gnutls_psk_allocate_client_credentials(&cc);
		gnutls_psk_set_client_credentials(cc, p->identity, &key, GNUTLS_PSK_KEY_RAW);
		gnutls_credentials_set(s, GNUTLS_CRD_PSK, cc);
	}
	gnutls_record_set_max_recv_size(s, p->max_recv);
	gnutls_transport_set_int(s, p->fd);
	do {
		p->ret = gnutls_handshake(s);
	} while (p->ret == GNUTLS_E_AGAIN || p->ret == GNUTLS_E_INTERRUPTED);
	gnutls_deinit(s);
	if (cc)
		gnutls_psk_free_client_credentials(cc);
	if (sc)
		gnutls_psk_free_server_credentials(sc);
	return NULL;
}

/* RFC 8449: the peer's record_size_limit reaches kTLS as the largest
 * plaintext per record (the limit less the TLS 1.3 content type byte). */
static void test_record_size_limit(bool engine_server, size_t max_recv)
{
	struct small_peer p = { .server = !engine_server, .max_recv = max_recv,
				.identity = "NVMe0R01 small-records sub" };
	const char *role = engine_server ? "server" : "client";
	pthread_t tp;
	struct side s;
	key_serial_t k;
	int sv[2];

	memset(p.key, 0x6b, sizeof(p.key));
	k = add_psk(p.identity, sizeof(p.key), 0x6b, engine_server ? server_ring : client_ring);
	tcp_pair(sv);
	p.fd = sv[0];
	side_init(&s, engine_server ? TLSHD_ROLE_SERVER : TLSHD_ROLE_CLIENT, sv[1]);
	if (engine_server) {
		s.req.keyring = server_ring;
	} else {
		s.req.num_peerids = 1;
		s.req.peerids[0] = k;
	}
	pthread_create(&tp, NULL, small_peer_run, &p);
	side_run(&s);
	pthread_join(tp, NULL);
	close(sv[0]);
	is_int(s.out.result.status, 0, "%s engine vs a peer taking %zu-byte records (%s)", role,
	       max_recv, s.out.reason);
	is_int(s.out.tx_max_payload, max_recv, "%s: kTLS would write at most %zu bytes per record",
	       role, max_recv);
}

/* A request on a socket that is not TCP (ktls-utils also serves QUIC):
 * EOPNOTSUPP, and not a byte goes out, not even an alert. */
static void test_not_tcp(const char *what, int fd, int peer)
{
	struct side s;
	char c;

	side_init(&s, TLSHD_ROLE_SERVER, fd);
	s.req.keyring = server_ring;
	side_run(&s);
	is_int(s.out.result.status, EOPNOTSUPP, "%s: EOPNOTSUPP (%s)", what, s.out.reason);
	/* (The engine's side is closed by now: EOF or, for UDP, nothing.) */
	ok(recv(peer, &c, 1, MSG_DONTWAIT) <= 0, "%s: nothing was written to it", what);
	close(peer);
}

static void test_not_tcp_sockets(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sin);
	int sv[2], u[2];

	socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	test_not_tcp("a local stream socket", sv[1], sv[0]);
	u[0] = socket(AF_INET, SOCK_DGRAM, 0);
	u[1] = socket(AF_INET, SOCK_DGRAM, 0);
	bind(u[0], (struct sockaddr *)&sin, sizeof(sin));
	getsockname(u[0], (struct sockaddr *)&sin, &len);
	connect(u[1], (struct sockaddr *)&sin, sizeof(sin));
	getsockname(u[1], (struct sockaddr *)&sin, &len);
	connect(u[0], (struct sockaddr *)&sin, sizeof(sin));
	test_not_tcp("a UDP socket", u[1], u[0]);
}

/* Descriptors open in this process. */
static int open_fds(void)
{
	int n = 0;

	for (int fd = 0; fd < 1024; fd++)
		if (fcntl(fd, F_GETFD) >= 0)
			n++;
	return n;
}

/* kB of this process's memory resident in code mappings (r-xp) of files
 * whose name contains @lib, or -1 when there is none. */
static long code_rss_kb(const char *lib)
{
	FILE *f = fopen("/proc/self/smaps", "re");
	char line[512];
	long kb = -1, v;
	bool in = false;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		char perms[5];

		if (sscanf(line, "%*x-%*x %4s", perms) == 1 && strchr(line, '/')) {
			in = !strcmp(perms, "r-xp") && strstr(line, lib);
			if (in && kb < 0)
				kb = 0;
		} else if (in && sscanf(line, "Rss: %ld kB", &v) == 1) {
			kb += v;
		}
	}
	fclose(f);
	return kb;
}

/* The parent's warm-up: a PSK handshake in process that completes and
 * leaves nothing open; and it says when it cannot (no SHA-256 PSK
 * priority is no failure: nothing to ready). */
static void test_warm(void)
{
	struct tlshd_context c = ctx;
	int fds = open_fds();

	is_int(tlshd_tls_warm(&ctx), 0, "warm-up: a PSK handshake in process completes");
	is_int(open_fds(), fds, "warm-up: no descriptor left open");
	/* (Nettle's public-key half, which the key exchange ran and nothing
	 * here runs after it.) */
	is_int(code_rss_kb("libhogweed"), 0, "warm-up: the code it ran is no longer mapped");
	c.prio.prio[TLSHD_PRIO_PSK_SHA256] = NULL;
	is_int(tlshd_tls_warm(&c), 0, "warm-up: nothing to do without a SHA-256 PSK priority");
	c.prio.prio[TLSHD_PRIO_PSK_SHA256] = ctx.prio.prio[TLSHD_PRIO_X509];
	is_int(tlshd_tls_warm(&c), -EPROTO,
	       "warm-up: a priority without PSK suites fails, and says so");
}

int main(void)
{
	struct tlshd_config *cfg = tlshd_config_new_default();

	tlshd_log_open(TLSHD_LOG_STDERR);
	/* Peers here write into sockets the engine closed, as the daemon's
	 * workers may (it ignores SIGPIPE too). */
	signal(SIGPIPE, SIG_IGN);
	if (keyctl_join_session_keyring(NULL) < 0)
		return tap_skip_all("kernel keyrings unavailable here");
	server_ring = add_key("keyring", "tlshd-test-server", NULL, 0, KEY_SPEC_SESSION_KEYRING);
	client_ring = add_key("keyring", "tlshd-test-client", NULL, 0, KEY_SPEC_SESSION_KEYRING);
	if (tlshd_tls_init(&ctx, cfg, NULL) < 0) {
		printf("Bail out! cannot initialise the engine\n");
		return 1;
	}
	ctx.psk_key_type = "user";

	test_warm();
	test_psk_ok(32, "_SHA256");
#ifdef HAVE_GNUTLS_PSK_ALLOCATE_CLIENT_CREDENTIALS2
	test_psk_ok(48, "_SHA384");
#else
	test_psk_sha384_refused();
#endif
	test_psk_long_identity();
	test_psk_mismatch();
	test_psk_unknown();
	test_no_key();
	test_server_x509_without_certificate();
	test_server_vs("garbage peer", "GET / HTTP/1.0\r\n\r\n", false, EPROTO, 5000);
	test_server_vs("peer closes at once", NULL, true, ETIMEDOUT, 5000);
	test_server_cut();
	test_server_vs("silent peer", NULL, false, ETIMEDOUT, 300);
	test_floods();
	test_not_tcp_sockets();
	test_record_size_limit(true, 512);
	test_record_size_limit(false, 1000);
	/* RFC 8449's smallest: GnuTLS takes it only with %ALLOW_SMALL_RECORDS. */
	test_record_size_limit(true, 64);
	test_record_size_limit(false, 64);
	test_no_keys_in_log();

	tlshd_tls_done(&ctx);
	tlshd_config_free(cfg);
	return tap_done();
}
