// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Handshake engine, server role (the kernel sent SERVERHELLO): finding
 * the PSK a client's identity names, and asking for a client certificate.
 */
#include "build-config.h"

#include <errno.h>
#include <string.h>

#include "config.h"
#include "keyring.h"
#include "log.h"
#include "tls-internal.h"

static int server_unknown_identity(struct tlshd_handshake *hs)
{
	tlshd_tls_refuse(hs, -EKEYREJECTED, GNUTLS_A_UNKNOWN_PSK_IDENTITY,
			 "the client's PSK identity matches no key");
	return -1;
}

/* Hands GnuTLS a copy of the key (it frees it). */
static int server_give_key(struct tlshd_handshake *hs, const struct tlshd_psk *psk,
			   gnutls_datum_t *key)
{
	key->data = gnutls_malloc(psk->key_len);
	if (!key->data) {
		tlshd_tls_refuse(hs, -ENOMEM, GNUTLS_A_INTERNAL_ERROR, "out of memory");
		return -1;
	}
	memcpy(key->data, psk->key, psk->key_len);
	key->size = psk->key_len;
	return 0;
}

/* GnuTLS calls this with the identity from the ClientHello. */
static int server_psk_lookup(gnutls_session_t s, const gnutls_datum_t *id,
			     gnutls_datum_t *key)
{
	struct tlshd_handshake *hs = gnutls_session_get_ptr(s);
	struct tlshd_psk psk = { 0 };
	char identity[TLSHD_PSK_IDENTITY_MAX + 1], where[128];
	key_serial_t serial;
	int r;

	/* The identity comes from the network. */
	if (!tlshd_keyring_identity_ok(id->data, id->size)) {
		tlshd_warn("client offered a malformed PSK identity (%u bytes)", id->size);
		return server_unknown_identity(hs);
	}
	memcpy(identity, id->data, id->size);
	identity[id->size] = '\0';
	serial = tlshd_keyring_search(hs->ctx->psk_key_type, identity, hs->req->keyring,
				      where, sizeof(where));
	if (serial < 0) {
		tlshd_warn("no PSK for identity '%s' in the kernel's or the configured keyrings",
			   identity);
		return server_unknown_identity(hs);
	}
	if (tlshd_keyring_read_psk(serial, &psk) < 0) {
		tlshd_warn("PSK %d for identity '%s' cannot be read", serial, identity);
		return server_unknown_identity(hs);
	}
	r = server_give_key(hs, &psk, key);
	if (r == 0) {
		hs->psk_len = psk.key_len;
		hs->peerid = serial;
		tlshd_tls_set_identity(hs, "psk=%d identity='%s'", serial, identity);
		tlshd_debug("client identity '%s' is PSK %d (%zu bytes) from %s", identity, serial,
			    psk.key_len, where);
	}
#ifndef HAVE_GNUTLS_PSK_ALLOCATE_SERVER_CREDENTIALS2
	if (tlshd_priority_psk_hash(psk.key_len) == GNUTLS_DIG_SHA384)
		tlshd_warn("PSK %d is a SHA-384 key; this GnuTLS binds PSKs with SHA-256 only "
			   "(3.8.11 or later is needed)", serial);
#endif
	tlshd_psk_done(&psk);
	return r;
}

/* With GnuTLS 3.8.11+ the binder hash follows the negotiated suite, so
 * 32- and 48-byte keys both work; older GnuTLS binds with SHA-256 only. */
static int server_psk_credentials(gnutls_psk_server_credentials_t *ret)
{
#ifdef HAVE_GNUTLS_PSK_ALLOCATE_SERVER_CREDENTIALS2
	return gnutls_psk_allocate_server_credentials2(ret, GNUTLS_MAC_UNKNOWN) < 0 ? -ENOMEM : 0;
#else
	return gnutls_psk_allocate_server_credentials(ret) < 0 ? -ENOMEM : 0;
#endif
}

int tlshd_server_psk_open(struct tlshd_handshake *hs)
{
	gnutls_priority_t prio = hs->ctx->prio.prio[TLSHD_PRIO_PSK];
	struct tlshd_session *sess = hs->sess;
	int r;

	if (!prio)
		return tlshd_tls_fail(hs, -EOPNOTSUPP, "the TLS policy allows no PSK suite");
	if (server_psk_credentials(&sess->psk_server) < 0)
		return tlshd_tls_fail(hs, -ENOMEM, "out of memory");
	gnutls_psk_set_server_credentials_function2(sess->psk_server, server_psk_lookup);
	r = tlshd_session_start(hs, GNUTLS_SERVER, prio);
	if (r < 0)
		return r;
	gnutls_credentials_set(sess->gs, GNUTLS_CRD_PSK, sess->psk_server);
	return 0;
}

/* The binder already proved the client holds the key; this checks that
 * the suite's hash is the one the key's length calls for. */
int tlshd_server_psk_check(struct tlshd_handshake *hs)
{
	gnutls_digest_algorithm_t want = tlshd_priority_psk_hash(hs->psk_len);

	if (want == GNUTLS_DIG_UNKNOWN || gnutls_prf_hash_get(hs->sess->gs) == want)
		return 0;
	return tlshd_tls_fail(hs, -EACCES, "suite %s does not match the %zu-byte PSK",
			      hs->out->cipher, hs->psk_len);
}

/* nfsd: present the configured chain, ask for a client certificate
 * without requiring one; a verified one is reported in REMOTE_AUTH.
 * With no CA named for clients, none is asked for. */
int tlshd_server_x509_open(struct tlshd_handshake *hs)
{
	const struct tlshd_creds_role *role = &hs->ctx->creds.server;
	int r;

	r = tlshd_x509_open(hs, role, GNUTLS_SERVER, true);
	if (r < 0)
		return r;
	gnutls_certificate_server_set_request(hs->sess->gs, role->n_cas ? GNUTLS_CERT_REQUEST :
					      GNUTLS_CERT_IGNORE);
	return 0;
}
