/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The handshake engine, as the rest of the daemon sees it: a context
 * loaded once in the parent (priorities, X.509 credentials), and one
 * call that runs a parsed request on its socket: TLS 1.3 in the
 * requested role, then kTLS. No netlink here, so tests drive it over
 * loopback sockets.
 *
 * Inside, data flows one way (see tls.c):
 *   tls.c                          context, role x auth table
 *   tls-client.c tls-server.c
 *   tls-x509.c  (tls-internal.h)   what each role and auth mode needs
 *   tls-session.c                  transport, deadline, session, drive,
 *                                  failure mapping, kTLS install
 */
#pragma once

#include <stdbool.h>

#include "creds.h"
#include "ktls.h"
#include "log.h"
#include "priority.h"
#include "request.h"

struct tlshd_config;

/* Read-only state every worker inherits from the parent. */
struct tlshd_context {
	const struct tlshd_config *cfg;
	struct tlshd_priorities prio;
	struct tlshd_creds creds;	/* X.509 material from the config */
	const char *psk_key_type;	/* key type servers search: "psk" */
};

#define TLSHD_DEFAULT_TIMEOUT_MS	10000
#define TLSHD_MAX_TIMEOUT_MS		300000

/* What one handshake produced: the result DONE carries, and for the log
 * the suite or why it failed. */
struct tlshd_tls_outcome {
	struct tlshd_result result;
	char cipher[64];		/* e.g. TLS_AES_128_GCM_SHA256 */
	char reason[256];		/* why it failed */
	/* What authenticated the handshake, for its log entry: the PSK
	 * ("psk=SERIAL identity='...'", both roles; on a failure, the one
	 * the server chose) or the client's verified certificate ("subject='...'
	 * issuer='...'", server role); empty when neither. */
	char identity[TLSHD_LOG_IDENTITY_MAX + 1];
	/* With TLSHD_TLS_NO_KTLS: the keys kTLS would have been given
	 * (tests compare them); wipe with tlshd_ktls_wipe(). */
	struct tlshd_ktls_crypto tx, rx;
	/* The peer's record_size_limit asked for records of at most this
	 * much plaintext (TLS_TX_MAX_PAYLOAD_LEN); 0: no limit asked. */
	unsigned int tx_max_payload;
	/* Microseconds in each step the handshake reached: credentials and
	 * session set-up, the TLS exchange with its checks, kTLS. */
	unsigned int setup_us, handshake_us, ktls_us;
};

enum tlshd_tls_flags {
	TLSHD_TLS_NO_KTLS	= 1 << 0,	/* tests: keep the keys in the outcome */
};

/* Builds priorities and loads the configured credentials; @keys: the
 * private keys are the key holder's (else loaded here: tests, -t). */
int tlshd_tls_init(struct tlshd_context *ctx, const struct tlshd_config *cfg,
		   const struct tlshd_creds_remote *keys);
void tlshd_tls_done(struct tlshd_context *ctx);

/* Readies the TLS library in this process (the parent, before it forks
 * workers) with one PSK handshake in process: what every process does
 * at its first handshake is then inherited (tls-warm.c). Returns 0, or
 * a negative errno (logged) after which workers simply do it
 * themselves. */
int tlshd_tls_warm(const struct tlshd_context *ctx);

/* Replaces the configuration and credentials; on failure (logged) the
 * context is unchanged. */
int tlshd_tls_reload(struct tlshd_context *ctx, const struct tlshd_config *cfg,
		     const struct tlshd_creds_remote *keys);

/* GnuTLS's own debug output ([debug] tls), sent to our log at debug. */
void tlshd_tls_set_debug(int level);

/*
 * What a request needs done with root's rights, before the worker drops
 * them: links the keyrings it may read (the configured ones, and .nfs and
 * .nfsd when the kernel names a certificate) into the worker's thread
 * keyring, so that the worker possesses them afterwards.
 */
void tlshd_tls_prepare(const struct tlshd_context *ctx, const struct tlshd_request *req);
/* The first part alone (the configured keyrings): for a spare, before it
 * knows its request. */
void tlshd_tls_prepare_config(const struct tlshd_context *ctx);
/* The second: the keyrings named for @req besides the one the kernel
 * links (NULL-terminated), or NULL. */
const char *const *tlshd_tls_consumer_rings(const struct tlshd_request *req);

/*
 * Runs the handshake @req asks for on req->sockfd, within the request's
 * timeout, and fills *ret: result.status is 0 or the positive errno for
 * DONE, result.remote_auth the authenticated peer on success, reason
 * why it failed. The peer has been sent an alert where one applies.
 */
void tlshd_tls_run(const struct tlshd_context *ctx, const struct tlshd_request *req,
		   unsigned int flags, struct tlshd_tls_outcome *ret);
