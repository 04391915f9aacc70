// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Handshake engine, client role (the kernel sent CLIENTHELLO).
 */
#include "build-config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "keyring.h"
#include "log.h"
#include "tls.h"

/*
 * The kernel names up to five PSKs, in its order of preference. GnuTLS
 * offers one external PSK per ClientHello, so the first one that can be
 * read is offered; the others are logged and skipped.
 */
static int client_pick_psk(struct tlshd_handshake *hs, struct tlshd_psk *ret)
{
	const struct tlshd_request *req = hs->req;
	int last = -ENOKEY;

	for (unsigned int i = 0; i < req->num_peerids; i++) {
		int r;

		if (!req->peerids[i])
			continue;
		r = tlshd_keyring_read_psk(req->peerids[i], ret);
		if (!r)
			return 0;
		if (r == -ENOMEM)
			return r;
		tlshd_warn("PSK key %d is unusable (%s), skipping", req->peerids[i],
			   r == -EKEYREJECTED ? "not a PSK" : "missing, revoked or unreadable");
		last = r;
	}
	return last == -EKEYREJECTED ? -EKEYREJECTED : -ENOKEY;
}

/*
 * TLS 1.3 binds an external PSK to one hash. GnuTLS before 3.8.1 always
 * uses SHA-256, so SHA-384 keys (48 bytes) need the newer API.
 */
static int client_psk_credentials(const struct tlshd_psk *psk,
				  gnutls_psk_client_credentials_t *ret)
{
	gnutls_digest_algorithm_t hash = tlshd_priority_psk_hash(psk->key_len);

#ifdef HAVE_GNUTLS_PSK_ALLOCATE_CLIENT_CREDENTIALS2
	if (hash != GNUTLS_DIG_UNKNOWN)
		return gnutls_psk_allocate_client_credentials2(ret, (gnutls_mac_algorithm_t)hash) < 0 ?
			-ENOMEM : 0;
#else
	if (hash == GNUTLS_DIG_SHA384)
		return -EOPNOTSUPP;
#endif
	return gnutls_psk_allocate_client_credentials(ret) < 0 ? -ENOMEM : 0;
}

static int client_psk(struct tlshd_handshake *hs)
{
	gnutls_psk_client_credentials_t cred = NULL;
	gnutls_session_t s = NULL;
	struct tlshd_psk psk = { 0 };
	gnutls_datum_t key;
	enum tlshd_prio kind;
	int r;

	r = client_pick_psk(hs, &psk);
	if (r < 0)
		return tlshd_tls_fail(hs, NULL, r == -ENOMEM ? r : -ENOKEY,
				      "none of the %u PSK(s) the kernel named can be used",
				      hs->req->num_peerids);
	kind = tlshd_priority_for_psk(psk.key_len);
	if (!hs->ctx->prio.prio[kind]) {
		r = tlshd_tls_fail(hs, NULL, -EOPNOTSUPP,
				   "the TLS policy allows no suite for a %zu-byte PSK", psk.key_len);
		goto out;
	}
	r = client_psk_credentials(&psk, &cred);
	if (r == -EOPNOTSUPP) {
		r = tlshd_tls_fail(hs, NULL, r, "PSK %d is a %zu-byte SHA-384 key; binding it needs "
				   "GnuTLS 3.8.1 or later", psk.serial, psk.key_len);
		goto out;
	}
	if (r < 0) {
		r = tlshd_tls_fail(hs, NULL, -ENOMEM, "out of memory");
		goto out;
	}
	key.data = psk.key;
	key.size = psk.key_len;
	r = gnutls_psk_set_client_credentials(cred, psk.identity, &key, GNUTLS_PSK_KEY_RAW);
	if (r < 0) {
		r = tlshd_tls_fail(hs, NULL, -EKEYREJECTED, "PSK %d rejected by GnuTLS: %s",
				   psk.serial, gnutls_strerror(r));
		goto out;
	}
	r = tlshd_tls_session_new(hs, GNUTLS_CLIENT, &s);
	if (r < 0) {
		r = tlshd_tls_fail(hs, NULL, r, "out of memory");
		goto out;
	}
	gnutls_priority_set(s, hs->ctx->prio.prio[kind]);
	gnutls_credentials_set(s, GNUTLS_CRD_PSK, cred);
	tlshd_debug("offering PSK %d '%s' (%zu bytes)", psk.serial, psk.identity, psk.key_len);
	r = tlshd_tls_drive(hs, s, NULL);
	if (r == 0) {
		hs->result.remote_auth[0] = psk.serial;
		hs->result.num_remote_auth = 1;
	}
out:
	if (s)
		gnutls_deinit(s);
	if (cred)
		gnutls_psk_free_client_credentials(cred);
	tlshd_psk_done(&psk);
	return r;
}

/* Whom the server certificate must name: the consumer's PEERNAME, or
 * else the address we are connected to. Only a DNS name goes into SNI. */
static int client_set_server_name(struct tlshd_handshake *hs, gnutls_session_t s)
{
	const struct tlshd_request *req = hs->req;
	unsigned char ip[16];
	int r;

	if (!req->has_peername) {
		r = tlshd_tls_peer_address(hs->fd, hs->verify_name, sizeof(hs->verify_name));
		if (r < 0)
			return tlshd_tls_fail(hs, NULL, -EINVAL, "no peer name and no peer address "
					      "to verify the server against");
		return 0;
	}
	snprintf(hs->verify_name, sizeof(hs->verify_name), "%s", req->peername);
	if (inet_pton(AF_INET, req->peername, ip) == 1 ||
	    inet_pton(AF_INET6, req->peername, ip) == 1)
		return 0;
	if (gnutls_server_name_set(s, GNUTLS_NAME_DNS, req->peername,
				   strlen(req->peername)) < 0)
		return tlshd_tls_fail(hs, NULL, -EINVAL, "invalid server name '%s'", req->peername);
	return 0;
}

/* UNAUTH (xprtsec=tls) and X509 (xprtsec=mtls): the server's certificate
 * is verified either way; with X509 we present ours. */
static int client_x509(struct tlshd_handshake *hs)
{
	gnutls_session_t s = NULL;
	int r;

	r = tlshd_tls_x509_session(hs, &hs->ctx->creds.client, GNUTLS_CLIENT,
				   hs->req->auth == TLSHD_AUTH_X509, &s);
	if (!r)
		r = client_set_server_name(hs, s);
	if (!r) {
		tlshd_debug("verifying the server as '%s'", hs->verify_name);
		r = tlshd_tls_drive(hs, s, NULL);
	}
	if (s)
		gnutls_deinit(s);
	tlshd_tls_x509_release(hs);
	return r;
}

int tlshd_tls_client(struct tlshd_handshake *hs)
{
	switch (hs->req->auth) {
	case TLSHD_AUTH_PSK:
		return client_psk(hs);
	case TLSHD_AUTH_UNAUTH:
	case TLSHD_AUTH_X509:
		return client_x509(hs);
	}
	return tlshd_tls_fail(hs, NULL, -EINVAL, "unknown auth mode");
}
