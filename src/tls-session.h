/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The bottom of the handshake engine: one handshake's state, the GnuTLS
 * session that carries it (transport on the consumer's socket, the
 * deadline), driving it, turning its failures into an errno, an alert
 * and a reason, and handing the keys to kTLS. Nothing here knows about
 * roles' credentials; callbacks above record their verdicts in the
 * handshake state and this code applies them.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>

#include "tls.h"

/*
 * Every piece of GnuTLS state one handshake creates, with one owner:
 * tlshd_session_free() releases all of it (session first, then what
 * the session used).
 */
struct tlshd_session {
	gnutls_session_t gs;		/* NULL until tlshd_session_start() */
	gnutls_psk_client_credentials_t psk_client;
	gnutls_psk_server_credentials_t psk_server;
	/* The certificate we present: borrowed from the context's
	 * credentials, or kr_cert/kr_key below. chain_len 0: none. */
	const gnutls_pcert_st *chain;
	unsigned int chain_len;
	gnutls_privkey_t key;
	/* A certificate and key the kernel named in its keyring; kr_key
	 * is set exactly when kr_cert holds an imported certificate. */
	gnutls_pcert_st kr_cert;
	gnutls_privkey_t kr_key;
};

/* One handshake, from the request to its outcome. */
struct tlshd_handshake {
	const struct tlshd_context *ctx;
	const struct tlshd_request *req;
	unsigned int flags;		/* enum tlshd_tls_flags */
	long long deadline_ms;		/* CLOCK_MONOTONIC */
	struct tlshd_session *sess;
	struct tlshd_tls_outcome *out;	/* cipher, reason, kTLS keys */

	int err;			/* the first failure (negative errno), 0 so far */
	/* A callback's refusal, applied when GnuTLS then fails. */
	bool pending;
	gnutls_alert_description_t pending_alert;

	unsigned int peer_record_limit;	/* the peer's record_size_limit, 0: none */
	key_serial_t peerid;		/* authenticated peer, reported on success */
	size_t psk_len;			/* the PSK in use, 0 for none */
	char verify_name[TLSHD_PEERNAME_MAX];	/* client: name the server must carry */
};

struct tlshd_session *tlshd_session_new(void);
/* Frees everything the session holds; accepts NULL, returns NULL. */
struct tlshd_session *tlshd_session_free(struct tlshd_session *sess);

/* Sets hs->deadline_ms from the request's timeout (or the default). */
void tlshd_session_set_deadline(struct tlshd_handshake *hs);

/*
 * Creates hs->sess->gs (GNUTLS_CLIENT or GNUTLS_SERVER in @flags) on the
 * request's socket with priority @prio. The caller then attaches its
 * credentials. Returns 0 or a recorded failure.
 */
int tlshd_session_start(struct tlshd_handshake *hs, unsigned int flags,
			gnutls_priority_t prio);

/*
 * Runs the TLS 1.3 handshake until it completes, fails or the deadline
 * passes, and names the suite in hs->out->cipher. Returns 0 or a
 * recorded failure; the peer has been sent the alert that goes with it.
 */
int tlshd_session_drive(struct tlshd_handshake *hs);

/* Hands the finished session's keys to kTLS on the socket (or to
 * hs->out with TLSHD_TLS_NO_KTLS). Returns 0 or a recorded failure. */
int tlshd_session_install_ktls(struct tlshd_handshake *hs);

/*
 * Whether the request's socket is one tlshd can serve: TCP over IPv4 or
 * IPv6 (kTLS is a TCP ULP). Anything else (ktls-utils also serves QUIC
 * for an out-of-tree module) is a recorded -EOPNOTSUPP, and nothing may
 * be written to it.
 */
int tlshd_session_check_socket(struct tlshd_handshake *hs);

/*
 * A server that failed before it had a session still owes the client
 * an answer to its ClientHello: a fatal alert in the clear.
 */
void tlshd_session_reject_early(struct tlshd_handshake *hs);

/*
 * Names what authenticated the handshake in hs->out->identity, for its
 * log entry (see tls.h): "psk=SERIAL identity='...'" or "subject='...'
 * issuer='...'". A name too long for it is cut and ends in "...'".
 */
void tlshd_tls_set_identity(struct tlshd_handshake *hs, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * Records a failure: @err (a negative errno) and why. The first failure
 * of a handshake is kept; later ones are ignored. Returns @err.
 */
int tlshd_tls_fail(struct tlshd_handshake *hs, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * For callbacks run inside the handshake: refuse the peer with @err and
 * why, and send it @alert once GnuTLS gives up. Returns @err.
 */
int tlshd_tls_refuse(struct tlshd_handshake *hs, int err, gnutls_alert_description_t alert,
		     const char *fmt, ...) __attribute__((format(printf, 4, 5)));
