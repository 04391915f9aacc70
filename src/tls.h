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

#include "creds.h"
#include "ktls.h"
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

/* REMOTE_AUTH for a verified client certificate. nfsd only tests it
 * against TLS_NO_PEERID (0) to mark the session peer-authenticated;
 * ktls-utils' tlshd sends the same value. */
#define TLSHD_PEERID_CERT_VERIFIED	((key_serial_t)0xffffffff)

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
	gnutls_pcert_st *own_chain;	/* the certificate we present, if any */
	unsigned int own_chain_len;
	gnutls_privkey_t own_key;
	gnutls_pcert_st req_pcert;	/* loaded from the kernel's keyring */
	gnutls_privkey_t req_key;
	bool req_cert_loaded;
	char verify_name[TLSHD_PEERNAME_MAX];	/* client: name the server must carry */
	unsigned int verify_status;	/* GnuTLS verification status of a rejection */
	bool peer_verified;		/* server: a client certificate verified */
	bool session_opened;		/* a GnuTLS session exists on the socket */
};

/* Sets hs->deadline from the request's timeout (or the default). */
void tlshd_handshake_set_deadline(struct tlshd_handshake *hs);

/*
 * Runs the handshake. Returns 0 on success or a negative errno; in both
 * cases hs->result.status is what DONE must carry, hs->reason says why
 * it failed, and the peer has been sent an alert where one applies.
 */
int tlshd_handshake_run(struct tlshd_handshake *hs);

/* GnuTLS's own debug output ([debug] tls), sent to our log at debug. */
void tlshd_tls_set_debug(int level);

/* Builds priorities and loads the configured credentials. */
int tlshd_tls_init(struct tlshd_context *ctx, const struct tlshd_config *cfg);
void tlshd_tls_done(struct tlshd_context *ctx);

/* Replaces the configuration and credentials; on failure (logged) the
 * context is unchanged. */
int tlshd_tls_reload(struct tlshd_context *ctx, const struct tlshd_config *cfg);

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

/* tls-x509.c */
void tlshd_tls_x509_attach(struct tlshd_creds *creds);
int tlshd_tls_x509_own_cert(struct tlshd_handshake *hs, const struct tlshd_creds_role *role,
			    bool required);
/* Chooses our certificate and opens a session with @role's credentials
 * and the x509 priority; on failure hs->result says why. The caller
 * frees with gnutls_deinit() and tlshd_tls_x509_release(). */
int tlshd_tls_x509_session(struct tlshd_handshake *hs, const struct tlshd_creds_role *role,
			   unsigned int flags, bool cert_required, gnutls_session_t *ret);
void tlshd_tls_x509_release(struct tlshd_handshake *hs);
gnutls_alert_description_t tlshd_tls_x509_alert(unsigned int status);
int tlshd_tls_peer_address(int fd, char *buf, size_t size);
