// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Readying the TLS library in the parent, once, before any worker is
 * forked: one TLS 1.3 PSK handshake between two sessions of this
 * process over a socketpair, with the priority workers use for a
 * SHA-256 PSK and a random key, then everything dropped.
 *
 * What a process does the first time it handshakes is then done in the
 * parent and inherited by every fork, instead of being redone in every
 * worker: the dynamic linker binding the symbols of libraries linked
 * without BIND_NOW (libgmp, reached from nettle's key exchange), and
 * GnuTLS's and nettle's first use of the key exchange, key schedule and
 * record protection. Nothing in it comes from outside this process.
 *
 * The code it ran stays mapped in the parent, which runs none of it
 * again, and no fork inherits mappings of code (fork copies page tables
 * only for memory with private pages): so the parent unmaps the pages
 * of its code afterwards (they stay in the page cache) and keeps its
 * idle footprint.
 */
#include "build-config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include "log.h"
#include "tls.h"
#include "util.h"

/* Each round lets both sides move as far as the socketpair allows; a
 * TLS 1.3 PSK handshake needs three. */
#define WARM_ROUNDS	16

struct warm {
	unsigned char key[32];
	gnutls_psk_client_credentials_t client_cred;
	gnutls_psk_server_credentials_t server_cred;
	gnutls_session_t sess[2];	/* client, server */
	int fd[2];
};

static int warm_server_key(gnutls_session_t s, const char *identity, gnutls_datum_t *key)
{
	const struct warm *w = gnutls_session_get_ptr(s);

	key->data = gnutls_malloc(sizeof(w->key));
	if (!key->data)
		return -1;
	memcpy(key->data, w->key, sizeof(w->key));
	key->size = sizeof(w->key);
	return 0;
}

static int warm_session(struct warm *w, int side, gnutls_priority_t prio)
{
	int r = gnutls_init(&w->sess[side], (side ? GNUTLS_SERVER : GNUTLS_CLIENT) |
			    GNUTLS_NONBLOCK);

	if (r < 0)
		return r;
	gnutls_session_set_ptr(w->sess[side], w);
	r = gnutls_credentials_set(w->sess[side], GNUTLS_CRD_PSK,
				   side ? (void *)w->server_cred : (void *)w->client_cred);
	if (r == 0)
		r = gnutls_priority_set(w->sess[side], prio);
	gnutls_transport_set_int(w->sess[side], w->fd[side]);
	return r;
}

static int warm_setup(struct warm *w, gnutls_priority_t prio)
{
	const gnutls_datum_t key = { w->key, sizeof(w->key) };
	int r;

	r = gnutls_rnd(GNUTLS_RND_KEY, w->key, sizeof(w->key));
	if (r == 0)
		r = gnutls_psk_allocate_client_credentials(&w->client_cred);
	if (r == 0)
		r = gnutls_psk_set_client_credentials(w->client_cred, "tlshd warm-up", &key,
						      GNUTLS_PSK_KEY_RAW);
	if (r == 0)
		r = gnutls_psk_allocate_server_credentials(&w->server_cred);
	if (r < 0)
		return r;
	gnutls_psk_set_server_credentials_function(w->server_cred, warm_server_key);
	r = warm_session(w, 0, prio);
	if (r == 0)
		r = warm_session(w, 1, prio);
	return r;
}

/* Both sides in turn until both are done; a GnuTLS code. */
static int warm_handshake(struct warm *w)
{
	bool done[2] = { false, false };

	for (int i = 0; i < WARM_ROUNDS && !(done[0] && done[1]); i++) {
		for (int side = 0; side < 2; side++) {
			int r;

			if (done[side])
				continue;
			r = gnutls_handshake(w->sess[side]);
			if (r == 0)
				done[side] = true;
			else if (gnutls_error_is_fatal(r))
				return r;
		}
	}
	return done[0] && done[1] ? 0 : GNUTLS_E_TIMEDOUT;
}

static void warm_free(struct warm *w)
{
	for (int side = 0; side < 2; side++) {
		if (w->sess[side])
			gnutls_deinit(w->sess[side]);
		if (w->fd[side] >= 0)
			close(w->fd[side]);
	}
	if (w->client_cred)
		gnutls_psk_free_client_credentials(w->client_cred);
	if (w->server_cred)
		gnutls_psk_free_server_credentials(w->server_cred);
	gnutls_memset(w->key, 0, sizeof(w->key));
}

/* Drops this process's page table entries for file-backed code
 * (r-xp mappings of a file); what it runs next faults back in. */
static void warm_unmap_code(void)
{
	FILE *f = fopen("/proc/self/maps", "re");
	char line[512];

	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		uintptr_t start, end;
		unsigned long inode;
		char perms[5];

		if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " %4s %*s %*s %lu", &start, &end,
			   perms, &inode) == 4 && inode && !strcmp(perms, "r-xp"))
			madvise((void *)start, end - start, MADV_DONTNEED);
	}
	fclose(f);
}

int tlshd_tls_warm(const struct tlshd_context *ctx)
{
	gnutls_priority_t prio = ctx->prio.prio[TLSHD_PRIO_PSK_SHA256];
	struct warm w = { .fd = { -1, -1 } };
	long long t = tlshd_util_now_us();
	int r;

	/* (A policy without SHA-256 PSK suites: workers will use others,
	 * readied by their first handshake.) */
	if (!prio)
		return 0;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, w.fd) < 0)
		return tlshd_log_errno(LOG_WARNING, -errno, "cannot ready the TLS library");
	r = warm_setup(&w, prio);
	if (r == 0)
		r = warm_handshake(&w);
	warm_free(&w);
	warm_unmap_code();
	if (r < 0) {
		tlshd_warn("cannot ready the TLS library (a PSK handshake in process failed: %s); "
			   "each worker will do it for itself", gnutls_strerror(r));
		return -EPROTO;
	}
	tlshd_debug("TLS library readied by a PSK handshake in process in %lld us",
		    tlshd_util_now_us() - t);
	return 0;
}
