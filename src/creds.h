/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * X.509 credentials named in the configuration, loaded and checked once
 * (at start-up and on reload) in the parent. Workers use them read-only:
 * a handshake never re-reads a trust store, CRL, certificate or key.
 */
#pragma once

#include <stdbool.h>

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>

struct tlshd_config;
struct tlshd_config_x509;

#define TLSHD_MAX_CHAIN		16
#define TLSHD_EXPIRY_WARN_DAYS	30

/* One role's material: [authenticate.client] or [authenticate.server]. */
struct tlshd_creds_role {
	const char *file;		/* configuration file, for messages */
	const char *section;		/* "authenticate.client" ... */
	gnutls_certificate_credentials_t cred;	/* trust store and CRLs */
	bool system_trust;		/* no x509.truststore: use the system's */
	unsigned int n_cas;		/* 0: no peer certificate can verify */
	gnutls_pcert_st chain[TLSHD_MAX_CHAIN];	/* own chain, leaf first */
	unsigned int chain_len;		/* 0: none configured */
	gnutls_privkey_t key;
};

struct tlshd_creds {
	struct tlshd_creds_role client;
	struct tlshd_creds_role server;
};

/*
 * Loads both roles' material from @cfg. Every problem is logged with the
 * section, key and file (unreadable file, key readable by others, key
 * not matching the certificate, expired or not yet valid certificate,
 * trust store without a usable CA); a certificate expiring within
 * TLSHD_EXPIRY_WARN_DAYS draws a warning. Returns 0 or the first error
 * (negative errno); on error nothing is left allocated.
 */
int tlshd_creds_load(const struct tlshd_config *cfg, struct tlshd_creds *ret);
void tlshd_creds_done(struct tlshd_creds *creds);

/* Loads a DER certificate and DER private key (as the kernel's keyring
 * hands them over). On success the caller owns both and releases them
 * with gnutls_pcert_deinit() and gnutls_privkey_deinit(); on failure
 * nothing is left allocated. */
int tlshd_creds_import_der(const gnutls_datum_t *cert, const gnutls_datum_t *key,
			   gnutls_pcert_st *ret_pcert, gnutls_privkey_t *ret_key);

/* Whether @key is the private half of @pcert's public key. */
bool tlshd_creds_key_matches(const gnutls_pcert_st *pcert, gnutls_privkey_t key);
