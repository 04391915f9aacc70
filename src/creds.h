/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * X.509 credentials named in the configuration, loaded and checked once
 * (at start-up and on reload) in the parent. Workers use them read-only:
 * a handshake never re-reads a trust store, CRL, certificate or key.
 * In the daemon the private keys are not among them: the key holder
 * loads those (keyholder.h), and the credentials carry keys that sign
 * through it (signer.h).
 */
#pragma once

#include <stdbool.h>

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>

#include "signer.h"

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
	gnutls_privkey_t key;		/* loaded here, or signing through the holder */
};

struct tlshd_creds {
	struct tlshd_creds_role client;
	struct tlshd_creds_role server;
};

/* The key holder's account of the keys it loaded (keyholder.h). */
#define TLSHD_CREDS_KEY_ID_LEN	32	/* SHA-256 of the public key */
struct tlshd_creds_remote {
	struct tlshd_signer *signer;	/* the worker's connection to the holder */
	struct {
		bool present;
		unsigned char id[TLSHD_CREDS_KEY_ID_LEN];
	} role[TLSHD_SIGNER_ROLES];
};

/*
 * Loads both roles' material from @cfg; with @remote the private keys
 * are the holder's (each checked against its certificate by key id),
 * else they are loaded here. Every problem is logged with the
 * section, key and file (unreadable file, key readable by others, key
 * not matching the certificate, expired or not yet valid certificate,
 * trust store without a usable CA); a certificate expiring within
 * TLSHD_EXPIRY_WARN_DAYS draws a warning. Returns 0 or the first error
 * (negative errno); on error nothing is left allocated.
 */
int tlshd_creds_load(const struct tlshd_config *cfg, const struct tlshd_creds_remote *remote,
		     struct tlshd_creds *ret);
void tlshd_creds_done(struct tlshd_creds *creds);

/* Loads a DER certificate and DER private key (as the kernel's keyring
 * hands them over). On success the caller owns both and releases them
 * with gnutls_pcert_deinit() and gnutls_privkey_deinit(); on failure
 * nothing is left allocated. */
int tlshd_creds_import_der(const gnutls_datum_t *cert, const gnutls_datum_t *key,
			   gnutls_pcert_st *ret_pcert, gnutls_privkey_t *ret_key);

/* The key holder: loads @role's configured private key (file or URL)
 * into *ret, with the checks and messages of tlshd_creds_load(); 0 and
 * *ret NULL when the role names none. */
int tlshd_creds_load_key(const struct tlshd_config *cfg, enum tlshd_signer_role role,
			 gnutls_privkey_t *ret);

/* Whether @role's private key is a GnuTLS key URL (PKCS#11, TPM). */
bool tlshd_creds_key_is_url(const struct tlshd_config *cfg, enum tlshd_signer_role role);

/* The SHA-256 id of @key's public half. Returns 0 or a negative errno. */
int tlshd_creds_key_id(gnutls_privkey_t key, unsigned char id[TLSHD_CREDS_KEY_ID_LEN]);

/*
 * The key holder: whether @key is the private half of @role's certificate
 * (by public key; for a key that cannot give its public half, a PKCS#11
 * object without its public attributes, by a test signature that the
 * certificate verifies); then the certificate's key id, algorithm and
 * size. -EKEYREJECTED: it is not; -EINVAL: no certificate to tell by.
 */
int tlshd_creds_key_check(const struct tlshd_config *cfg, enum tlshd_signer_role role,
			  gnutls_privkey_t key, unsigned char id[TLSHD_CREDS_KEY_ID_LEN],
			  gnutls_pk_algorithm_t *ret_pk, unsigned int *ret_bits);

/* Whether @key is the private half of @pcert's public key: by key id, or
 * for a key that cannot give its public half (a PKCS#11 object without
 * its public attributes) by a test signature @pcert verifies. */
bool tlshd_creds_key_matches(const gnutls_pcert_st *pcert, gnutls_privkey_t key);
