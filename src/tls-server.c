// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Handshake engine, server role (the kernel sent SERVERHELLO).
 */
#include "build-config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "keyring.h"
#include "log.h"
#include "tls.h"

/* The identity comes from the network: bounded, no NUL, and printable
 * ASCII, since it is written to the log and used as a key description. */
static bool server_identity_ok(const gnutls_datum_t *id)
{
	if (id->size == 0 || id->size > TLSHD_PSK_IDENTITY_MAX)
		return false;
	for (unsigned int i = 0; i < id->size; i++)
		if (id->data[i] < 0x20 || id->data[i] > 0x7e)
			return false;
	return true;
}

/* GnuTLS calls this with the identity from the ClientHello. */
static int server_psk_lookup(gnutls_session_t s, const gnutls_datum_t *id,
			     gnutls_datum_t *key)
{
	struct tlshd_handshake *hs = gnutls_session_get_ptr(s);
	struct tlshd_psk psk = { 0 };
	char identity[TLSHD_PSK_IDENTITY_MAX + 1];
	key_serial_t serial;
	int r;

	if (!server_identity_ok(id)) {
		tlshd_warn("client offered a malformed PSK identity (%u bytes)", id->size);
		hs->psk_unknown = true;
		return -1;
	}
	memcpy(identity, id->data, id->size);
	identity[id->size] = '\0';
	serial = tlshd_keyring_search(hs->ctx->psk_key_type, identity, hs->req->keyring,
				      hs->ctx->cfg->keyrings);
	if (serial < 0) {
		tlshd_warn("no PSK for identity '%s' in the request's keyrings", identity);
		hs->psk_unknown = true;
		return -1;
	}
	r = tlshd_keyring_read_psk(serial, &psk);
	if (r < 0) {
		tlshd_warn("PSK %d for identity '%s' cannot be read", serial, identity);
		hs->psk_unknown = true;
		return -1;
	}
	key->data = gnutls_malloc(psk.key_len);
	if (!key->data) {
		tlshd_psk_done(&psk);
		return -1;
	}
	memcpy(key->data, psk.key, psk.key_len);
	key->size = psk.key_len;
	hs->psk_len = psk.key_len;
#ifndef HAVE_GNUTLS_PSK_ALLOCATE_SERVER_CREDENTIALS2
	if (tlshd_priority_psk_hash(psk.key_len) == GNUTLS_DIG_SHA384)
		tlshd_warn("PSK %d is a SHA-384 key; this GnuTLS binds PSKs with SHA-256 only "
			   "(3.8.1 or later is needed)", serial);
#endif
	hs->result.remote_auth[0] = serial;
	hs->result.num_remote_auth = 1;
	tlshd_debug("client identity '%s' is PSK %d (%zu bytes)", identity, serial, psk.key_len);
	tlshd_psk_done(&psk);
	return 0;
}

/* The binder already proved the client holds the key; this checks that
 * the suite's hash is the one the key's length calls for. */
static int server_psk_check_suite(struct tlshd_handshake *hs, gnutls_session_t s)
{
	gnutls_digest_algorithm_t want = tlshd_priority_psk_hash(hs->psk_len);

	if (want == GNUTLS_DIG_UNKNOWN || gnutls_prf_hash_get(s) == want)
		return 0;
	return tlshd_tls_fail(hs, NULL, -EACCES, "suite %s does not match the %zu-byte PSK",
			      hs->cipher, hs->psk_len);
}

/* With GnuTLS 3.8.1+ the binder hash follows the negotiated suite, so
 * 32- and 48-byte keys both work; older GnuTLS binds with SHA-256 only. */
static int server_psk_credentials(gnutls_psk_server_credentials_t *ret)
{
#ifdef HAVE_GNUTLS_PSK_ALLOCATE_SERVER_CREDENTIALS2
	return gnutls_psk_allocate_server_credentials2(ret, GNUTLS_MAC_UNKNOWN) < 0 ? -ENOMEM : 0;
#else
	return gnutls_psk_allocate_server_credentials(ret) < 0 ? -ENOMEM : 0;
#endif
}

static int server_psk(struct tlshd_handshake *hs)
{
	gnutls_psk_server_credentials_t cred = NULL;
	gnutls_session_t s = NULL;
	int r;

	if (!hs->ctx->prio.prio[TLSHD_PRIO_PSK])
		return tlshd_tls_fail(hs, NULL, -EOPNOTSUPP, "the TLS policy allows no PSK suite");
	if (server_psk_credentials(&cred) < 0)
		return tlshd_tls_fail(hs, NULL, -ENOMEM, "out of memory");
	gnutls_psk_set_server_credentials_function2(cred, server_psk_lookup);
	r = tlshd_tls_session_new(hs, GNUTLS_SERVER, &s);
	if (r < 0) {
		r = tlshd_tls_fail(hs, NULL, r, "out of memory");
		goto out;
	}
	gnutls_priority_set(s, hs->ctx->prio.prio[TLSHD_PRIO_PSK]);
	gnutls_credentials_set(s, GNUTLS_CRD_PSK, cred);
	r = tlshd_tls_drive(hs, s, server_psk_check_suite);
out:
	if (s)
		gnutls_deinit(s);
	gnutls_psk_free_server_credentials(cred);
	return r;
}

/* nfsd: present the configured chain, ask for a client certificate
 * without requiring one; a verified one is reported in REMOTE_AUTH. */
static int server_x509(struct tlshd_handshake *hs)
{
	gnutls_session_t s = NULL;
	int r;

	r = tlshd_tls_x509_session(hs, &hs->ctx->creds.server, GNUTLS_SERVER, true, &s);
	if (!r) {
		gnutls_certificate_server_set_request(s, GNUTLS_CERT_REQUEST);
		r = tlshd_tls_drive(hs, s, NULL);
	}
	if (r == 0 && hs->peer_verified) {
		hs->result.remote_auth[0] = TLSHD_PEERID_CERT_VERIFIED;
		hs->result.num_remote_auth = 1;
	}
	if (s)
		gnutls_deinit(s);
	tlshd_tls_x509_release(hs);
	return r;
}

int tlshd_tls_server(struct tlshd_handshake *hs)
{
	switch (hs->req->auth) {
	case TLSHD_AUTH_PSK:
		return server_psk(hs);
	case TLSHD_AUTH_X509:
		return server_x509(hs);
	case TLSHD_AUTH_UNAUTH:
		break;
	}
	return tlshd_tls_fail(hs, NULL, -EINVAL,
			      "a server handshake needs PSK or x509 authentication");
}
