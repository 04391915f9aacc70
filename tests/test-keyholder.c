// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit test of keyholder.c and signer.c: a key holder forked as the
 * daemon forks it loads the configured keys and reports their ids, runs
 * confined (no capability, no root, no_new_privs, a seccomp filter), and
 * signs through a worker's external key exactly once per connection: a
 * TLS 1.3 CertificateVerify (its hash, or for EdDSA its content) with
 * the role's key, in a scheme that key makes. Second signatures and
 * malformed requests are reported to the parent; other requests are
 * refused. Credentials check the holder's key ids against the
 * certificates. The engine's server handshake signs through the holder,
 * and fails with ENOKEY when there is none to sign.
 */
#include "build-config.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gnutls/crypto.h>
#include <gnutls/x509.h>

#include "config.h"
#include "creds.h"
#include "keyholder.h"
#include "log.h"
#include "privs.h"
#include "seccomp.h"
#include "tap.h"
#include "tls.h"
#include "x509-pair.h"

static char dir[] = "/tmp/test-keyholder.XXXXXX";
static const struct tlshd_privs_ids ids = { .uid = 65534, .gid = 65534 };

/* A key of @pk and a self-signed certificate for it: NAME.key, NAME.pem. */
static int make_pair(const char *name, gnutls_pk_algorithm_t pk, unsigned int bits,
		     char **key_path, char **cert_path)
{
	if (asprintf(key_path, "%s/%s.key", dir, name) < 0 ||
	    asprintf(cert_path, "%s/%s.pem", dir, name) < 0)
		return -1;
	return x509_pair_make(*key_path, *cert_path, name, pk, bits);
}

/* Forks a holder for @cfg as the daemon does, dropping to @ids. */
static int holder_start(const struct tlshd_config *cfg, struct x509_pair_holder *h)
{
	return x509_pair_holder_start(cfg, &ids, h);
}

/* A fresh worker connection, attached as worker @pid. */
static void holder_connect(struct x509_pair_holder *h, pid_t pid)
{
	if (h->signer.fd >= 0)
		close(h->signer.fd);
	h->signer.fd = -1;
	tlshd_keyholder_connect(&h->kh, pid, &h->signer.fd);
}

/* The pid the holder complains about within 2 s, or 0. */
static pid_t holder_complaint(struct x509_pair_holder *h)
{
	struct pollfd p = { .fd = h->kh.ctl_fd, .events = POLLIN };
	pid_t pid = 0;

	if (poll(&p, 1, 2000) == 1 && tlshd_keyholder_read(&h->kh, &pid) == 0)
		return pid;
	return 0;
}

/* A raw request on the current connection; the reply's err, or
 * -ECONNRESET when the holder closed the connection. */
static int holder_raw(struct x509_pair_holder *h, const void *msg, size_t len)
{
	struct tlshd_signer_reply rp;
	struct pollfd p = { .fd = h->signer.fd, .events = POLLIN };
	ssize_t n;

	if (send(h->signer.fd, msg, len, MSG_NOSIGNAL) != (ssize_t)len)
		return -EPIPE;
	if (poll(&p, 1, 2000) != 1)
		return -ETIMEDOUT;
	n = recv(h->signer.fd, &rp, sizeof(rp), 0);
	if (n == 0)
		return -ECONNRESET;
	return n == sizeof(rp) ? rp.err : -EPROTO;
}

static int holder_ask(struct x509_pair_holder *h, enum tlshd_signer_role role, gnutls_sign_algorithm_t algo,
		      bool hashed, const void *data, size_t len)
{
	struct tlshd_signer_request rq = { .role = role, .algo = algo, .hashed = hashed, .len = len };

	memcpy(rq.data, data, len);
	return holder_raw(h, &rq, sizeof(rq));
}

static void holder_stop(struct x509_pair_holder *h)
{
	if (h->signer.fd >= 0)
		close(h->signer.fd);
	h->signer.fd = -1;
	tlshd_keyholder_release(&h->kh);
}

/* A TLS 1.3 CertificateVerify content for @role over a 32-byte hash. */
static size_t cv_content(unsigned char *buf, bool server)
{
	const char *ctx = server ? "TLS 1.3, server CertificateVerify" :
				   "TLS 1.3, client CertificateVerify";
	size_t n = 64 + strlen(ctx) + 1;

	memset(buf, 0x20, 64);
	memcpy(buf + 64, ctx, strlen(ctx) + 1);
	for (size_t i = 0; i < 32; i++)
		buf[n + i] = (unsigned char)i;
	return n + 32;
}

static unsigned long long proc_field(pid_t pid, const char *field, int base)
{
	unsigned long long v = ~0ULL;
	char path[64], line[256];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, field, strlen(field)))
			v = strtoull(line + strlen(field), NULL, base);
	if (f)
		fclose(f);
	return v;
}

/* Signs through @key (an external one) and verifies with @pub. */
static bool sign_verifies(gnutls_privkey_t key, gnutls_pubkey_t pub, gnutls_sign_algorithm_t algo,
			  bool server)
{
	unsigned char buf[256];
	gnutls_datum_t data = { buf, cv_content(buf, server) }, sig = { 0 };
	bool ok;

	if (gnutls_privkey_sign_data2(key, algo, 0, &data, &sig) < 0)
		return false;
	ok = gnutls_pubkey_verify_data2(pub, algo, 0, &data, &sig) >= 0;
	gnutls_free(sig.data);
	return ok;
}

static void test_ids_and_confinement(struct x509_pair_holder *h, const struct tlshd_config *cfg)
{
	unsigned char id[TLSHD_CREDS_KEY_ID_LEN];
	gnutls_privkey_t k = NULL;
	bool root = geteuid() == 0;

	for (unsigned int i = 0; i < TLSHD_SIGNER_ROLES; i++) {
		ok(tlshd_creds_load_key(cfg, i, &k) == 0 && k && tlshd_creds_key_id(k, id) == 0,
		   "role %u: the key loads here too", i);
		ok(h->keys.role[i].present && !memcmp(id, h->keys.role[i].id, sizeof(id)),
		   "role %u: the holder reports that key's id", i);
		if (k)
			gnutls_privkey_deinit(k);
		k = NULL;
	}
	if (root)
		is_int(proc_field(h->pid, "Uid:", 10), ids.uid, "the holder left root for uid %u",
		       (unsigned int)ids.uid);
	is_int(proc_field(h->pid, "CapEff:", 16), 0, "the holder has no effective capability");
	is_int(proc_field(h->pid, "CapPrm:", 16), 0, "nor a permitted one");
	if (root)
		is_int(proc_field(h->pid, "CapBnd:", 16), 0, "nor one in its bounding set");
	is_int(proc_field(h->pid, "NoNewPrivs:", 10), 1, "no_new_privs");
	if (!tlshd_seccomp_disabled())
		is_int(proc_field(h->pid, "Seccomp:", 10), 2, "a seccomp filter");
}

static void test_signing(struct x509_pair_holder *h, const struct tlshd_config *cfg)
{
	struct tlshd_creds creds;
	unsigned char buf[256];
	size_t len;

	ok(tlshd_creds_load(cfg, &h->keys, &creds) == 0, "credentials load with the holder's keys");
	is_int(gnutls_privkey_get_type(creds.server.key), GNUTLS_PRIVKEY_EXT,
	       "the server key here is an external one");

	holder_connect(h, 4242);
	ok(sign_verifies(creds.server.key, creds.server.chain[0].pubkey,
			 GNUTLS_SIGN_ECDSA_SECP256R1_SHA256, true),
	   "ECDSA P-256: the holder's signature verifies with the server certificate");
	ok(!sign_verifies(creds.server.key, creds.server.chain[0].pubkey,
			  GNUTLS_SIGN_ECDSA_SECP256R1_SHA256, true),
	   "a second signature on the same connection is refused");
	is_int(holder_complaint(h), 4242, "and the holder names that worker to the parent");

	holder_connect(h, 4243);
	ok(sign_verifies(creds.client.key, creds.client.chain[0].pubkey,
			 GNUTLS_SIGN_RSA_PSS_RSAE_SHA256, false),
	   "RSA: an RSA-PSS signature by the client key verifies with the client certificate");

	holder_connect(h, 4244);
	ok(!sign_verifies(creds.client.key, creds.client.chain[0].pubkey,
			  GNUTLS_SIGN_RSA_SHA256, false),
	   "RSA PKCS#1 v1.5 (no TLS 1.3 scheme) is not asked for");
	len = cv_content(buf, false);
	holder_connect(h, 4244);
	is_int(holder_ask(h, TLSHD_SIGNER_CLIENT, GNUTLS_SIGN_RSA_SHA256, true, buf, 32), -EINVAL,
	       "and refused when asked for anyway");

	holder_connect(h, 4245);
	is_int(holder_ask(h, TLSHD_SIGNER_SERVER, GNUTLS_SIGN_ECDSA_SECP256R1_SHA256, true, buf, 20),
	       -EINVAL, "a 'hash' of the wrong length is refused");
	holder_connect(h, 4246);
	is_int(holder_ask(h, TLSHD_SIGNER_SERVER, GNUTLS_SIGN_ECDSA_SECP384R1_SHA384, true, buf, 48),
	       -EINVAL, "a scheme of another curve is refused");
	holder_connect(h, 4247);
	is_int(holder_ask(h, TLSHD_SIGNER_SERVER, GNUTLS_SIGN_ECDSA_SECP256R1_SHA256, false, buf, len),
	       -EINVAL, "content instead of a hash for ECDSA is refused");
	holder_connect(h, 4248);
	is_int(holder_ask(h, 7, GNUTLS_SIGN_ECDSA_SECP256R1_SHA256, true, buf, 32), -ENOKEY,
	       "a role that does not exist is refused");
	ok(holder_complaint(h) == 0, "refusals are not complaints");

	holder_connect(h, 4249);
	is_int(holder_raw(h, "garbage", 7), -ECONNRESET, "a malformed request ends the connection");
	is_int(holder_complaint(h), 4249, "and the holder names that worker");

	tlshd_creds_done(&creds);
}

/* A holder with a server key of @pk alone signs in @algo (and, through
 * the worker's key, says it can); for Ed25519 the content rules too. */
static void test_key_type(const char *name, gnutls_pk_algorithm_t pk, unsigned int bits,
			  gnutls_sign_algorithm_t algo)
{
	struct tlshd_config *cfg = tlshd_config_new_default();
	struct tlshd_creds creds;
	struct x509_pair_holder h;
	unsigned char buf[256];
	size_t len = cv_content(buf, true);

	if (make_pair(name, pk, bits, &cfg->server.private_key, &cfg->server.certificate) < 0) {
		ok(0, "%s: a pair could be made", name);
		tlshd_config_free(cfg);
		return;
	}
	if (!ok(holder_start(cfg, &h) == 0, "%s: a holder with that server key starts", name)) {
		tlshd_config_free(cfg);
		return;
	}
	ok(h.keys.role[TLSHD_SIGNER_SERVER].present && !h.keys.role[TLSHD_SIGNER_CLIENT].present,
	   "%s: it holds the server key alone", name);
	ok(tlshd_creds_load(cfg, &h.keys, &creds) == 0, "%s: credentials load", name);
	holder_connect(&h, 5001);
	ok(sign_verifies(creds.server.key, creds.server.chain[0].pubkey, algo, true),
	   "%s: the server CertificateVerify is signed in %s and verifies", name,
	   gnutls_sign_get_name(algo));
	if (pk != GNUTLS_PK_EDDSA_ED25519)
		goto out;
	holder_connect(&h, 5002);
	is_int(holder_ask(&h, TLSHD_SIGNER_SERVER, GNUTLS_SIGN_EDDSA_ED25519, false, buf + 1, len - 1),
	       -EINVAL, "Ed25519: content that is no CertificateVerify is refused");
	holder_connect(&h, 5003);
	len = cv_content(buf, false);
	is_int(holder_ask(&h, TLSHD_SIGNER_SERVER, GNUTLS_SIGN_EDDSA_ED25519, false, buf, len),
	       -EINVAL, "Ed25519: the server key will not sign a client CertificateVerify");
	holder_connect(&h, 5004);
	is_int(holder_ask(&h, TLSHD_SIGNER_CLIENT, GNUTLS_SIGN_EDDSA_ED25519, false, buf, len),
	       -ENOKEY, "a role with no key configured is refused");
out:
	tlshd_creds_done(&creds);
	holder_stop(&h);
	waitpid(h.pid, NULL, 0);
	tlshd_config_free(cfg);
}

static void test_mismatch_and_exit(struct x509_pair_holder *h, const struct tlshd_config *cfg)
{
	struct tlshd_creds_remote swapped = h->keys;
	struct tlshd_creds creds;
	int status = 0;

	memcpy(swapped.role[TLSHD_SIGNER_SERVER].id, h->keys.role[TLSHD_SIGNER_CLIENT].id,
	       TLSHD_CREDS_KEY_ID_LEN);
	is_int(tlshd_creds_load(cfg, &swapped, &creds), -EKEYREJECTED,
	       "a holder's key that is not the certificate's is rejected");

	holder_connect(h, 4250);
	tlshd_keyholder_release(&h->kh);
	usleep(100000);
	is_int(waitpid(h->pid, &status, WNOHANG), 0,
	       "let go of, the holder still serves a worker's open connection");
	close(h->signer.fd);
	h->signer.fd = -1;
	for (int i = 0; i < 40 && waitpid(h->pid, &status, WNOHANG) == 0; i++)
		usleep(50000);
	ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	   "and exits (status 0) once the last one closes (0x%x)", status);
}

/* The engine's server handshake with the key in the holder: through a
 * connection, and without one (as when the holder is gone): then DONE's
 * status is ENOKEY and the peer gets an alert. */
static void test_engine(struct x509_pair_holder *h, const struct tlshd_config *cfg)
{
	struct tlshd_request req = { .role = TLSHD_ROLE_SERVER, .auth = TLSHD_AUTH_X509,
				     .timeout_ms = 5000 };
	struct tlshd_tls_outcome out;
	struct tlshd_context ctx;
	int sv[2], status = 0;
	pid_t pid;

	if (!ok(tlshd_tls_init(&ctx, cfg, &h->keys) == 0, "the engine loads the holder's keys"))
		return;
	for (int connected = 1; connected >= 0; connected--) {
		if (connected) {
			holder_connect(h, getpid());
		} else if (h->signer.fd >= 0) {
			close(h->signer.fd);
			h->signer.fd = -1;
		}
		x509_pair_tcp(sv);
		pid = fork();
		if (pid == 0) {
			close(sv[1]);
			_exit(x509_pair_client(sv[0]) == 0 ? 0 : 1);
		}
		close(sv[0]);
		req.sockfd = sv[1];
		tlshd_tls_run(&ctx, &req, TLSHD_TLS_NO_KTLS, &out);
		close(sv[1]);
		waitpid(pid, &status, 0);
		tlshd_ktls_wipe(&out.tx);
		tlshd_ktls_wipe(&out.rx);
		if (connected) {
			ok(out.result.status == 0 && WIFEXITED(status) && !WEXITSTATUS(status),
			   "a server handshake signs through the holder (status %d: %s)",
			   out.result.status, out.reason);
			continue;
		}
		ok(out.result.status == ENOKEY && strstr(out.reason, "made no signature"),
		   "with no holder to sign, the handshake fails with ENOKEY (status %d: %s)",
		   out.result.status, out.reason);
		ok(WIFEXITED(status) && WEXITSTATUS(status) == 1, "and the client sees it fail");
	}
	tlshd_tls_done(&ctx);
}

static void test_bad_key(void)
{
	struct tlshd_config *cfg = tlshd_config_new_default();
	struct x509_pair_holder h;

	cfg->server.certificate = strdup("/nonexistent.pem");
	cfg->server.private_key = strdup("/nonexistent.key");
	is_int(holder_start(cfg, &h), -ENOENT, "a holder whose key cannot be read says so and exits");
	tlshd_config_free(cfg);
}

int main(void)
{
	struct tlshd_config *cfg;
	struct x509_pair_holder h;

	tlshd_log_open(TLSHD_LOG_STDERR);
	signal(SIGPIPE, SIG_IGN);
	if (!mkdtemp(dir))
		return tap_skip_all("no temporary directory");
	cfg = tlshd_config_new_default();
	if (make_pair("server", GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1),
		      &cfg->server.private_key, &cfg->server.certificate) < 0 ||
	    make_pair("client", GNUTLS_PK_RSA, 2048, &cfg->client.private_key,
		      &cfg->client.certificate) < 0)
		return tap_skip_all("cannot make test keys");

	ok(tlshd_keyholder_needed(cfg), "a configuration with private keys needs a holder");
	if (holder_start(cfg, &h) == 0) {
		test_ids_and_confinement(&h, cfg);
		test_signing(&h, cfg);
		test_engine(&h, cfg);
		test_mismatch_and_exit(&h, cfg);
	} else {
		ok(0, "the holder starts");
	}
	test_key_type("ed25519", GNUTLS_PK_EDDSA_ED25519, 256, GNUTLS_SIGN_EDDSA_ED25519);
	test_key_type("p384", GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP384R1),
		      GNUTLS_SIGN_ECDSA_SECP384R1_SHA384);
	test_key_type("p521", GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP521R1),
		      GNUTLS_SIGN_ECDSA_SECP521R1_SHA512);
	test_bad_key();

	tlshd_config_free(cfg);
	if (fork() == 0)
		execlp("rm", "rm", "-rf", dir, (char *)NULL);
	wait(NULL);
	return tap_done();
}
