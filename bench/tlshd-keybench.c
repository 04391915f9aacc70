// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * tlshd-keybench: what signing through the key holder costs one X.509
 * handshake. tools/bench.sh runs it in the benchmark VM (part
 * "keyholder"); it runs anywhere the tree builds.
 *
 * The daemon's engine runs COUNT server-role X.509 handshakes (nfsd's
 * kind) over TCP loopback against a bare GnuTLS client in a process of
 * its own (in the daemon the peer is never the worker's process),
 * alternating between the configured private key loaded in process (as
 * before the key holder) and the same key held by a key holder process
 * forked as the daemon forks it, each handshake with a fresh connection
 * to it as each worker has; for an ECDSA P-256 and an RSA-2048 key. The
 * time is the engine's, from tlshd_tls_run() to its return, without kTLS.
 *
 * Usage: tlshd-keybench [-n COUNT]    (default 40 per key type and mode)
 * Prints, as lines of text for people: first a request and a reply of
 * the holder's sizes between two processes with nothing done in between,
 * the part of the cost that is only two context switches (under TCG each
 * switch of address space also empties QEMU's software TLB); then per key
 * type a CertificateVerify signature alone, outside a handshake, in both
 * modes; both modes' handshake times; and the cost: the median of the
 * differences between each held handshake and the in-process one run
 * next to it (each pair in turn starts with the other mode).
 * Exit status 0, or 1 when a handshake failed (said on stderr).
 */
#include "build-config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gnutls/x509.h>

#include "config.h"
#include "keyholder.h"
#include "log.h"
#include "privs.h"
#include "tls.h"
#include "util.h"
#include "../tests/x509-pair.h"

static char dir[] = "/tmp/tlshd-keybench.XXXXXX";

/* Before each timed step, in both modes alike. */
#define KEYBENCH_SETTLE_US	2000

/* A key and a self-signed server certificate for it, into @cfg. */
static int make_pair(struct tlshd_config *cfg, const char *name, gnutls_pk_algorithm_t pk,
		     unsigned int bits)
{
	free(cfg->server.private_key);
	free(cfg->server.certificate);
	if (asprintf(&cfg->server.private_key, "%s/%s.key", dir, name) < 0 ||
	    asprintf(&cfg->server.certificate, "%s/%s.pem", dir, name) < 0)
		return -1;
	return x509_pair_make(cfg->server.private_key, cfg->server.certificate, name, pk, bits);
}

/* One server handshake of the engine; its time in µs, or -1. */
static long long one_handshake(const struct tlshd_context *ctx)
{
	struct tlshd_request req = { .role = TLSHD_ROLE_SERVER, .auth = TLSHD_AUTH_X509,
				     .timeout_ms = 10000 };
	struct tlshd_tls_outcome out;
	long long t0, us;
	int sv[2];
	pid_t pid;

	x509_pair_tcp(sv);
	if (sv[1] < 0)
		return -1;
	req.sockfd = sv[1];
	pid = fork();
	if (pid == 0) {
		close(sv[1]);
		x509_pair_client(sv[0]);
		_exit(0);
	}
	close(sv[0]);
	t0 = tlshd_util_now_us();
	tlshd_tls_run(ctx, &req, TLSHD_TLS_NO_KTLS, &out);
	us = tlshd_util_now_us() - t0;
	close(sv[1]);
	waitpid(pid, NULL, 0);
	tlshd_ktls_wipe(&out.tx);
	tlshd_ktls_wipe(&out.rx);
	if (out.result.status) {
		fprintf(stderr, "tlshd-keybench: handshake failed: %s\n", out.reason);
		return -1;
	}
	return us;
}

/* Forks a holder for @cfg as the daemon does, with the workers' ids. */
static int holder_start(const struct tlshd_config *cfg, struct x509_pair_holder *h)
{
	struct tlshd_privs_ids ids;

	tlshd_privs_worker_ids(&ids);
	return x509_pair_holder_start(cfg, &ids, h);
}

/* A worker's fresh connection to the holder. The daemon hands it over
 * when it forks a spare, long before a request: the pause lets the
 * holder take it in now (one vCPU), not in the middle of the timed
 * handshake. */
static void holder_connect(struct x509_pair_holder *h)
{
	if (h->signer.fd >= 0)
		close(h->signer.fd);
	h->signer.fd = -1;
	tlshd_keyholder_connect(&h->kh, getpid(), &h->signer.fd);
	usleep(KEYBENCH_SETTLE_US);
}

/* Before a timed step of mode @held: the same pause either way, and for
 * the held mode a fresh connection to the holder. */
static void mode_ready(struct x509_pair_holder *h, int held)
{
	if (held)
		holder_connect(h);
	else
		usleep(KEYBENCH_SETTLE_US);
}

static int cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;

	return x < y ? -1 : x > y;
}

static long long pct(long long *v, int n, int p)
{
	qsort(v, n, sizeof(*v), cmp_ll);
	return v[(n - 1) * p / 100];
}

/* Signs a server CertificateVerify's content with @key; its time in µs. */
static long long one_signature(gnutls_privkey_t key, gnutls_sign_algorithm_t algo)
{
	static const char ctx[] = "TLS 1.3, server CertificateVerify";
	unsigned char buf[64 + sizeof(ctx) + 32];
	gnutls_datum_t data = { buf, sizeof(buf) }, sig = { 0 };
	long long t0 = tlshd_util_now_us(), us;
	int r;

	memset(buf, 0x20, 64);
	memcpy(buf + 64, ctx, sizeof(ctx));
	memset(buf + 64 + sizeof(ctx), 0x5a, 32);
	r = gnutls_privkey_sign_data2(key, algo, 0, &data, &sig);
	us = tlshd_util_now_us() - t0;
	gnutls_free(sig.data);
	return r < 0 ? -1 : us;
}

/* COUNT handshakes per mode, alternating; prints the figures. */
static int bench_key(struct tlshd_config *cfg, const char *name, int count)
{
	struct tlshd_context local, held;
	long long *t[2], *d;
	struct x509_pair_holder h;
	int rc = 0;

	t[0] = calloc(count, sizeof(long long));
	t[1] = calloc(count, sizeof(long long));
	d = calloc(count, sizeof(long long));
	if (!t[0] || !t[1] || !d || holder_start(cfg, &h) < 0 || tlshd_tls_init(&local, cfg, NULL) < 0 ||
	    tlshd_tls_init(&held, cfg, &h.keys) < 0) {
		fprintf(stderr, "tlshd-keybench: %s: cannot set up\n", name);
		return 1;
	}
	/* Each pair in turn starts with the other mode: neither profits
	 * from going second. */
	for (int i = 0; i < count && !rc; i++) {
		for (int k = 0; k < 2; k++) {
			int m = k ^ (i & 1);

			mode_ready(&h, m);
			t[m][i] = one_handshake(m ? &held : &local);
		}
		rc = t[0][i] < 0 || t[1][i] < 0;
		d[i] = t[1][i] - t[0][i];
	}
	if (!rc) {
		printf("%s: server handshakes: in process median %lld us, p90 %lld us; "
		       "through the key holder median %lld us, p90 %lld us\n", name,
		       pct(t[0], count, 50), pct(t[0], count, 90),
		       pct(t[1], count, 50), pct(t[1], count, 90));
		printf("%s: signing through the key holder costs %lld us per handshake "
		       "(median of %d paired differences)\n", name, pct(d, count, 50), count);
	}
	if (!rc) {
		gnutls_sign_algorithm_t algo = !strncmp(name, "rsa", 3) ?
			GNUTLS_SIGN_RSA_PSS_RSAE_SHA256 : GNUTLS_SIGN_ECDSA_SECP256R1_SHA256;
		long long *sg[2] = { calloc(count, sizeof(long long)), calloc(count, sizeof(long long)) };

		for (int i = 0; i < count && sg[0] && sg[1] && !rc; i++) {
			for (int k = 0; k < 2; k++) {
				int m = k ^ (i & 1);

				mode_ready(&h, m);
				sg[m][i] = one_signature(m ? held.creds.server.key :
							 local.creds.server.key, algo);
			}
			rc = sg[0][i] < 0 || sg[1][i] < 0;
		}
		if (rc)
			fprintf(stderr, "tlshd-keybench: %s: a signature failed\n", name);
		else if (sg[0] && sg[1]) {
			for (int i = 0; i < count; i++)
				d[i] = sg[1][i] - sg[0][i];
			printf("%s: a CertificateVerify signature alone: in process %lld us, "
			       "through the key holder %lld us (medians of %d); the holder adds "
			       "%lld us (median of the paired differences)\n", name,
			       pct(sg[0], count, 50), pct(sg[1], count, 50), count,
			       pct(d, count, 50));
		}
		free(sg[0]);
		free(sg[1]);
	}
	if (h.signer.fd >= 0)
		close(h.signer.fd);
	tlshd_keyholder_release(&h.kh);
	waitpid(h.pid, NULL, 0);
	tlshd_tls_done(&held);
	tlshd_tls_done(&local);
	free(t[0]);
	free(t[1]);
	free(d);
	return rc;
}

/* COUNT bare round trips of the holder's message sizes to a child. */
static int bench_round_trip(int count)
{
	struct tlshd_signer_request rq = { 0 };
	struct tlshd_signer_reply rp = { 0 };
	long long *t = calloc(count, sizeof(long long));
	int sp[2];
	pid_t pid;

	if (!t || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0) {
		free(t);
		return 1;
	}
	pid = fork();
	if (pid == 0) {
		close(sp[0]);
		while (recv(sp[1], &rq, sizeof(rq), 0) == sizeof(rq))
			send(sp[1], &rp, sizeof(rp), 0);
		_exit(0);
	}
	close(sp[1]);
	for (int i = 0; i < count; i++) {
		long long t0 = tlshd_util_now_us();

		if (send(sp[0], &rq, sizeof(rq), 0) != sizeof(rq) ||
		    recv(sp[0], &rp, sizeof(rp), 0) != sizeof(rp)) {
			fprintf(stderr, "tlshd-keybench: the bare round trip failed\n");
			count = 0;
			break;
		}
		t[i] = tlshd_util_now_us() - t0;
	}
	close(sp[0]);
	waitpid(pid, NULL, 0);
	if (count)
		printf("a bare request and reply between two processes: median %lld us, "
		       "p90 %lld us (two context switches, nothing signed)\n",
		       pct(t, count, 50), pct(t, count, 90));
	free(t);
	return !count;
}

int main(int argc, char **argv)
{
	struct tlshd_config *cfg;
	int count = 40, c, rc = 0;

	while ((c = getopt(argc, argv, "n:")) != -1) {
		if (c != 'n' || (count = atoi(optarg)) <= 0) {
			fprintf(stderr, "usage: tlshd-keybench [-n COUNT]\n");
			return 2;
		}
	}
	tlshd_log_open(TLSHD_LOG_STDERR);
	cfg = tlshd_config_new_default();
	if (!cfg || !mkdtemp(dir))
		return 2;
	if (make_pair(cfg, "ecdsa-p256", GNUTLS_PK_ECDSA,
		      GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1)) < 0)
		return 2;
	rc |= bench_round_trip(count);
	rc |= bench_key(cfg, "ecdsa-p256", count);
	if (make_pair(cfg, "rsa-2048", GNUTLS_PK_RSA, 2048) < 0)
		return 2;
	rc |= bench_key(cfg, "rsa-2048", count);
	tlshd_config_free(cfg);
	if (fork() == 0)
		execlp("rm", "rm", "-rf", dir, (char *)NULL);
	wait(NULL);
	return rc;
}
