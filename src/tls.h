/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The handshake engine: given a parsed request and a connected socket,
 * run the TLS 1.3 handshake in the requested role and install kTLS.
 * No netlink here, so tests drive it over loopback sockets.
 */
#pragma once

#include <stdbool.h>
#include <time.h>

#include <gnutls/gnutls.h>

#include "ktls.h"
#include "priority.h"
#include "request.h"

struct tlshd_config;

/* Read-only state every worker inherits from the parent. */
struct tlshd_context {
	const struct tlshd_config *cfg;
	struct tlshd_priorities prio;
	const char *psk_key_type;	/* key type servers search: "psk" */
};

#define TLSHD_DEFAULT_TIMEOUT_MS	10000
#define TLSHD_MAX_TIMEOUT_MS		300000

struct tlshd_handshake {
	/* inputs */
	const struct tlshd_context *ctx;
	const struct tlshd_request *req;
	int fd;
	struct timespec deadline;	/* CLOCK_MONOTONIC */
	bool no_ktls;			/* tests: keep the keys in tx/rx instead */

	/* outputs */
	struct tlshd_result result;
	char cipher[64];		/* e.g. TLS_AES_128_GCM_SHA256 */
	char reason[256];		/* why it failed, for the log */
	struct tlshd_ktls_crypto tx, rx;

	/* role-private state, valid during the handshake */
	bool psk_unknown;		/* server: the client's identity matched no key */
	size_t psk_len;
};

/* Sets hs->deadline from the request's timeout (or the default). */
void tlshd_handshake_set_deadline(struct tlshd_handshake *hs);

/*
 * Runs the handshake. Returns 0 on success or a negative errno; in both
 * cases hs->result.status is what DONE must carry, hs->reason says why
 * it failed, and the peer has been sent an alert where one applies.
 */
int tlshd_handshake_run(struct tlshd_handshake *hs);

int tlshd_tls_init(struct tlshd_context *ctx, const struct tlshd_config *cfg);
void tlshd_tls_done(struct tlshd_context *ctx);

/* For tls-client.c and tls-server.c. */
int tlshd_tls_client(struct tlshd_handshake *hs);
int tlshd_tls_server(struct tlshd_handshake *hs);
int tlshd_tls_session_new(struct tlshd_handshake *hs, unsigned int flags,
			  gnutls_session_t *ret);
/* Runs the handshake; @check (optional) vets the finished session before
 * kTLS is installed and fails it with tlshd_tls_fail(). */
int tlshd_tls_drive(struct tlshd_handshake *hs, gnutls_session_t session,
		    int (*check)(struct tlshd_handshake *hs, gnutls_session_t s));
int tlshd_tls_fail(struct tlshd_handshake *hs, gnutls_session_t session, int err,
		   const char *fmt, ...) __attribute__((format(printf, 4, 5)));
