// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Handshake engine, X.509 parts shared by both roles: which certificate
 * we present, how the peer's is verified, and which alert tells the peer
 * why its certificate was refused.
 *
 * The credentials (trust store, CRLs, configured chain and key) come
 * loaded from creds.c; the callbacks below read the per-handshake choices
 * from the session's struct tlshd_handshake.
 */
#include "build-config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <gnutls/x509.h>

#include "config.h"
#include "creds.h"
#include "keyring.h"
#include "log.h"
#include "tls-internal.h"
#include "util.h"

/* Certificate selection: whatever tlshd_x509_open() chose. */
static int x509_retrieve(gnutls_session_t s, const gnutls_datum_t *req_ca_rdn, int nreqs,
			 const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length,
			 gnutls_pcert_st **pcert, unsigned int *pcert_length,
			 gnutls_privkey_t *privkey)
{
	struct tlshd_handshake *hs = gnutls_session_get_ptr(s);

	*pcert = (gnutls_pcert_st *)hs->sess->chain;
	*pcert_length = hs->sess->chain_len;
	*privkey = hs->sess->key;
	return 0;
}

/* The alert that tells the peer why its certificate was refused. */
static gnutls_alert_description_t x509_alert(unsigned int status)
{
	if (status & GNUTLS_CERT_REVOKED)
		return GNUTLS_A_CERTIFICATE_REVOKED;
	if (status & (GNUTLS_CERT_EXPIRED | GNUTLS_CERT_NOT_ACTIVATED))
		return GNUTLS_A_CERTIFICATE_EXPIRED;
	if (status & (GNUTLS_CERT_SIGNER_NOT_FOUND | GNUTLS_CERT_SIGNER_NOT_CA))
		return GNUTLS_A_UNKNOWN_CA;
	if (status & GNUTLS_CERT_PURPOSE_MISMATCH)
		return GNUTLS_A_UNSUPPORTED_CERTIFICATE;
	return GNUTLS_A_BAD_CERTIFICATE;
}

static void x509_refuse(struct tlshd_handshake *hs, const char *whose, unsigned int status)
{
	gnutls_datum_t out = { 0 };
	char why[200] = "";
	size_t n;

	if (gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &out, 0) < 0)
		snprintf(why, sizeof(why), "status 0x%x", status);
	else
		snprintf(why, sizeof(why), "%s", (char *)out.data);
	gnutls_free(out.data);
	/* GnuTLS ends its description with a blank. */
	for (n = strlen(why); n && why[n - 1] == ' '; n--)
		why[n - 1] = '\0';
	tlshd_tls_refuse(hs, -EACCES, x509_alert(status), "%s certificate rejected: %s",
			 whose, why);
	tlshd_err("%s certificate rejected: %s", whose, why);
}

/* The subject and issuer of a verified peer certificate, as text the
 * caller frees with gnutls_free(); 0, or -1 with both empty. */
static int x509_peer_names(gnutls_session_t s, gnutls_datum_t *subject, gnutls_datum_t *issuer)
{
	const gnutls_datum_t *certs;
	gnutls_x509_crt_t crt;
	unsigned int n = 0;
	int r = -1;

	*subject = *issuer = (gnutls_datum_t){ 0 };
	certs = gnutls_certificate_get_peers(s, &n);
	if (!certs || !n || gnutls_x509_crt_init(&crt) < 0)
		return -1;
	if (gnutls_x509_crt_import(crt, &certs[0], GNUTLS_X509_FMT_DER) == 0 &&
	    gnutls_x509_crt_get_dn3(crt, subject, 0) == 0 &&
	    gnutls_x509_crt_get_issuer_dn3(crt, issuer, 0) == 0)
		r = 0;
	gnutls_x509_crt_deinit(crt);
	if (r < 0) {
		gnutls_free(subject->data);
		gnutls_free(issuer->data);
		*subject = *issuer = (gnutls_datum_t){ 0 };
	}
	return r;
}

/* Verifies the peer's chain against the role's trust store and CRLs and
 * against @data; a rejection is logged and recorded with its alert. */
static int x509_check(struct tlshd_handshake *hs, gnutls_session_t s,
		      gnutls_typed_vdata_st *data, unsigned int n, const char *whose)
{
	unsigned int status = 0;
	int r;

	r = gnutls_certificate_verify_peers(s, data, n, &status);
	if (r < 0) {
		tlshd_tls_refuse(hs, -EACCES, GNUTLS_A_BAD_CERTIFICATE,
				 "cannot verify the %s certificate: %s", whose, gnutls_strerror(r));
		return GNUTLS_E_CERTIFICATE_ERROR;
	}
	if (status) {
		x509_refuse(hs, whose, status);
		return GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR;
	}
	return 0;
}

/* Server certificate: chain, CRL, validity, server purpose, and the name
 * the consumer asked for (an IP literal only matches IP SANs). */
static int x509_verify_server(struct tlshd_handshake *hs, gnutls_session_t s)
{
	gnutls_typed_vdata_st data[2] = {
		{ .type = GNUTLS_DT_KEY_PURPOSE_OID, .data = (void *)GNUTLS_KP_TLS_WWW_SERVER },
	};
	gnutls_datum_t subject = { 0 }, issuer = { 0 };
	unsigned char ip[16];
	int r;

	if (inet_pton(AF_INET, hs->verify_name, ip) == 1) {
		data[1] = (gnutls_typed_vdata_st){ GNUTLS_DT_IP_ADDRESS, ip, 4 };
	} else if (inet_pton(AF_INET6, hs->verify_name, ip) == 1) {
		data[1] = (gnutls_typed_vdata_st){ GNUTLS_DT_IP_ADDRESS, ip, 16 };
	} else {
		data[1] = (gnutls_typed_vdata_st){ GNUTLS_DT_DNS_HOSTNAME,
						   (void *)hs->verify_name, 0 };
	}
	r = x509_check(hs, s, data, 2, "server");
	if (r < 0)
		return r;
	if (tlshd_log_debug_enabled() && x509_peer_names(s, &subject, &issuer) == 0)
		tlshd_debug("server certificate verified: subject='%s' issuer='%s'",
			    subject.data, issuer.data);
	gnutls_free(subject.data);
	gnutls_free(issuer.data);
	return 0;
}

/* Client certificate: optional, but one that is presented must verify. */
static int x509_verify_client(struct tlshd_handshake *hs, gnutls_session_t s)
{
	gnutls_typed_vdata_st data[1] = {
		{ .type = GNUTLS_DT_KEY_PURPOSE_OID, .data = (void *)GNUTLS_KP_TLS_WWW_CLIENT },
	};
	gnutls_datum_t subject = { 0 }, issuer = { 0 };
	unsigned int n = 0;
	int r;

	if (!gnutls_certificate_get_peers(s, &n) || n == 0)
		return 0;
	r = x509_check(hs, s, data, 1, "client");
	if (r < 0)
		return r;
	hs->peerid = TLSHD_PEERID_CERT_VERIFIED;
	if (x509_peer_names(s, &subject, &issuer) == 0)
		tlshd_tls_set_identity(hs, "subject='%s' issuer='%s'", subject.data, issuer.data);
	gnutls_free(subject.data);
	gnutls_free(issuer.data);
	return 0;
}

static int x509_verify(gnutls_session_t s)
{
	struct tlshd_handshake *hs = gnutls_session_get_ptr(s);

	if (hs->req->role == TLSHD_ROLE_CLIENT)
		return x509_verify_server(hs, s);
	return x509_verify_client(hs, s);
}

void tlshd_x509_attach(struct tlshd_creds *creds)
{
	struct tlshd_creds_role *roles[] = { &creds->client, &creds->server };

	for (unsigned int i = 0; i < 2; i++) {
		gnutls_certificate_set_retrieve_function2(roles[i]->cred, x509_retrieve);
		gnutls_certificate_set_verify_function(roles[i]->cred, x509_verify);
	}
}

/* Imports the DER pair into the session, which owns it from then on. */
static int x509_import_pair(struct tlshd_handshake *hs, void *cert, size_t cert_len,
			    void *key, size_t key_len)
{
	const struct tlshd_request *req = hs->req;
	struct tlshd_session *sess = hs->sess;
	gnutls_datum_t dc = { cert, cert_len }, dk = { key, key_len };

	if (tlshd_creds_import_der(&dc, &dk, &sess->kr_cert, &sess->kr_key) < 0)
		return tlshd_tls_fail(hs, -EKEYREJECTED, "keys %d/%d do not hold a DER "
				      "certificate and private key", req->cert, req->privkey);
	if (!tlshd_creds_key_matches(&sess->kr_cert, sess->kr_key))
		return tlshd_tls_fail(hs, -EKEYREJECTED, "private key %d does not belong to "
				      "certificate %d", req->privkey, req->cert);
	sess->chain = &sess->kr_cert;
	sess->chain_len = 1;
	sess->key = sess->kr_key;
	tlshd_debug("presenting certificate %d from the keyring", req->cert);
	return 0;
}

/* The kernel named a certificate and key (DER payloads) in the
 * CERTIFICATE nest: load them for this handshake only (their keyrings
 * were linked by tlshd_tls_prepare()). */
static int x509_load_from_keyring(struct tlshd_handshake *hs)
{
	const struct tlshd_request *req = hs->req;
	void *cert = NULL, *key = NULL;
	size_t cert_len = 0, key_len = 0;
	int r;

	r = tlshd_keyring_read(req->cert, &cert, &cert_len);
	if (!r)
		r = tlshd_keyring_read(req->privkey, &key, &key_len);
	if (r < 0)
		r = tlshd_tls_fail(hs, -ENOKEY, "certificate key %d or private key %d named "
				   "by the kernel cannot be read", req->cert, req->privkey);
	else
		r = x509_import_pair(hs, cert, cert_len, key, key_len);
	tlshd_util_wipe_free(cert, cert_len);
	tlshd_util_wipe_free(key, key_len);
	return r;
}

static int x509_choose_cert(struct tlshd_handshake *hs, const struct tlshd_creds_role *role,
			    bool required)
{
	const struct tlshd_request *req = hs->req;
	struct tlshd_session *sess = hs->sess;

	if (req->auth == TLSHD_AUTH_X509 && req->cert && req->privkey)
		return x509_load_from_keyring(hs);
	if (req->auth != TLSHD_AUTH_X509 && req->role == TLSHD_ROLE_CLIENT)
		return 0;		/* xprtsec=tls: no client certificate */
	if (role->chain_len) {
		sess->chain = role->chain;
		sess->chain_len = role->chain_len;
		sess->key = role->key;
		return 0;
	}
	if (!required)
		return 0;
	return tlshd_tls_fail(hs, -ENOKEY, "no certificate: the kernel named none and "
			      "[%s] sets no x509.certificate and x509.private_key", role->section);
}

int tlshd_x509_open(struct tlshd_handshake *hs, const struct tlshd_creds_role *role,
		    unsigned int flags, bool cert_required)
{
	gnutls_priority_t prio = hs->ctx->prio.prio[TLSHD_PRIO_X509];
	int r;

	if (!prio)
		return tlshd_tls_fail(hs, -EOPNOTSUPP, "the TLS policy allows no x509 suite");
	r = x509_choose_cert(hs, role, cert_required);
	if (r < 0)
		return r;
	r = tlshd_session_start(hs, flags, prio);
	if (r < 0)
		return r;
	gnutls_credentials_set(hs->sess->gs, GNUTLS_CRD_CERTIFICATE, role->cred);
	return 0;
}
