/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Private keys that are somewhere else. In the daemon, the X.509 keys
 * named in the configuration are held by the key holder (keyholder.h);
 * a worker presents its certificate with an external GnuTLS key whose
 * one signature, the TLS 1.3 CertificateVerify, the holder makes for it
 * over the worker's own connection. This file is both ends' shared
 * vocabulary (the messages, the signature schemes) and the worker's end.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>

/* Whose key: the configuration's [authenticate.client] or .server. */
enum tlshd_signer_role {
	TLSHD_SIGNER_CLIENT,
	TLSHD_SIGNER_SERVER,
	TLSHD_SIGNER_ROLES,
};

/* The most a request carries: a CertificateVerify's signed content
 * (64 + 34 + a transcript hash of up to 64 bytes, EdDSA) or a hash. */
#define TLSHD_SIGNER_MAX_DATA	192
/* The longest signature: RSA-8192. */
#define TLSHD_SIGNER_MAX_SIG	1024
/* How long a worker waits for the holder's answer. */
#define TLSHD_SIGNER_TIMEOUT_MS	5000

/* Worker to holder, one SOCK_SEQPACKET message of exactly this size. */
struct tlshd_signer_request {
	uint32_t role;			/* enum tlshd_signer_role */
	uint32_t algo;			/* gnutls_sign_algorithm_t */
	uint32_t hashed;		/* 1: data is the content's hash (RSA-PSS,
					 * ECDSA); 0: the content (EdDSA) */
	uint32_t len;
	uint8_t data[TLSHD_SIGNER_MAX_DATA];
};

/* Holder to worker. */
struct tlshd_signer_reply {
	int32_t err;			/* 0 or a negative errno */
	uint32_t len;
	uint8_t sig[TLSHD_SIGNER_MAX_SIG];
};

/* Whether @sign is a TLS 1.3 signature scheme a key of @pk with @bits
 * (the curve's, for ECDSA) makes: the only ones a worker asks for and
 * the holder signs. */
bool tlshd_signer_scheme_ok(gnutls_sign_algorithm_t sign, gnutls_pk_algorithm_t pk,
			    unsigned int bits);

/* A process's connection to the key holder; fd -1: none (no holder, or
 * the parent). Workers inherit it set by the parent right after fork. */
struct tlshd_signer {
	int fd;
};

/*
 * An external private key for @role whose public half is @pub (the
 * certificate's), signing through @s; @s must outlive it. Returns 0 or
 * a negative errno; the caller releases *ret with gnutls_privkey_deinit().
 */
int tlshd_signer_key_new(struct tlshd_signer *s, enum tlshd_signer_role role,
			 gnutls_pubkey_t pub, gnutls_privkey_t *ret);
