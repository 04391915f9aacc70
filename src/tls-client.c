// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Handshake engine, client role (the kernel sent CLIENTHELLO): which PSK
 * we offer, and whom the server's certificate must name.
 */
#include "build-config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "keyring.h"
#include "log.h"
#include "tls-internal.h"
#include "util.h"

/*
 * The kernel names up to five PSKs, in its order of preference. GnuTLS
 * offers one external PSK per ClientHello, so the first one that can be
 * read is offered; the others are logged and skipped.
 */
static int client_pick_psk(const struct tlshd_request *req, struct tlshd_psk *ret)
{
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
 * TLS 1.3 binds an external PSK to one hash. GnuTLS before 3.8.11 always
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

/* Credentials for @psk, owned by the session. */
static int client_psk_attach(struct tlshd_handshake *hs, const struct tlshd_psk *psk)
{
	struct tlshd_session *sess = hs->sess;
	gnutls_datum_t key = { psk->key, psk->key_len };
	int r;

	r = client_psk_credentials(psk, &sess->psk_client);
	if (r == -EOPNOTSUPP)
		return tlshd_tls_fail(hs, r, "PSK %d is a %zu-byte SHA-384 key; binding it needs "
				      "GnuTLS 3.8.11 or later", psk->serial, psk->key_len);
	if (r < 0)
		return tlshd_tls_fail(hs, -ENOMEM, "out of memory");
	r = gnutls_psk_set_client_credentials(sess->psk_client, psk->identity, &key,
					      GNUTLS_PSK_KEY_RAW);
	if (r < 0)
		return tlshd_tls_fail(hs, -EKEYREJECTED, "PSK %d rejected by GnuTLS: %s",
				      psk->serial, gnutls_strerror(r));
	return 0;
}

static int client_psk_with(struct tlshd_handshake *hs, const struct tlshd_psk *psk)
{
	gnutls_priority_t prio = hs->ctx->prio.prio[tlshd_priority_for_psk(psk->key_len)];
	int r;

	if (!prio)
		return tlshd_tls_fail(hs, -EOPNOTSUPP, "the TLS policy allows no suite for a "
				      "%zu-byte PSK", psk->key_len);
	r = client_psk_attach(hs, psk);
	if (r < 0)
		return r;
	r = tlshd_session_start(hs, GNUTLS_CLIENT, prio);
	if (r < 0)
		return r;
	gnutls_credentials_set(hs->sess->gs, GNUTLS_CRD_PSK, hs->sess->psk_client);
	hs->psk_len = psk->key_len;
	hs->peerid = psk->serial;
	tlshd_tls_set_identity(hs, "psk=%d identity='%s'", psk->serial, psk->identity);
	tlshd_debug("offering PSK %d '%s' (%zu bytes)", psk->serial, psk->identity, psk->key_len);
	return 0;
}

int tlshd_client_psk_open(struct tlshd_handshake *hs)
{
	struct tlshd_psk psk = { 0 };
	int r;

	r = client_pick_psk(hs->req, &psk);
	if (r < 0)
		return tlshd_tls_fail(hs, r == -ENOMEM ? r : -ENOKEY,
				      "none of the %u PSK(s) the kernel named can be used",
				      hs->req->num_peerids);
	/* GnuTLS copies the key into the credentials. */
	r = client_psk_with(hs, &psk);
	tlshd_psk_done(&psk);
	return r;
}

/* Whom the server certificate must name: the consumer's PEERNAME, or
 * else the address we are connected to. Only a DNS name goes into SNI. */
static int client_set_server_name(struct tlshd_handshake *hs)
{
	const struct tlshd_request *req = hs->req;
	unsigned char ip[16];

	if (!req->has_peername) {
		if (tlshd_util_peer_address(req->sockfd, hs->verify_name,
					    sizeof(hs->verify_name), NULL) < 0)
			return tlshd_tls_fail(hs, -EINVAL, "no peer name and no peer address "
					      "to verify the server against");
		return 0;
	}
	snprintf(hs->verify_name, sizeof(hs->verify_name), "%s", req->peername);
	if (inet_pton(AF_INET, req->peername, ip) == 1 ||
	    inet_pton(AF_INET6, req->peername, ip) == 1)
		return 0;
	if (gnutls_server_name_set(hs->sess->gs, GNUTLS_NAME_DNS, req->peername,
				   strlen(req->peername)) < 0)
		return tlshd_tls_fail(hs, -EINVAL, "invalid server name '%s'", req->peername);
	return 0;
}

/* UNAUTH (xprtsec=tls) and X509 (xprtsec=mtls): the server's certificate
 * is verified either way; with X509 we present ours. */
int tlshd_client_x509_open(struct tlshd_handshake *hs)
{
	int r;

	r = tlshd_x509_open(hs, &hs->ctx->creds.client, GNUTLS_CLIENT,
			    hs->req->auth == TLSHD_AUTH_X509);
	if (r < 0)
		return r;
	r = client_set_server_name(hs);
	if (r < 0)
		return r;
	tlshd_debug("verifying the server as '%s'", hs->verify_name);
	return 0;
}
