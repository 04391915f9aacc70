/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * GnuTLS priorities, built once at start-up from the system's policy:
 * TLS 1.3 only, no session tickets, no compression, and only the
 * ciphers that both the policy allows and kTLS can take over, the one
 * this CPU is fast at first.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include <gnutls/gnutls.h>

enum tlshd_prio {
	TLSHD_PRIO_X509,	/* certificate handshakes */
	TLSHD_PRIO_PSK,		/* PSK, any hash (server before it knows the key) */
	TLSHD_PRIO_PSK_SHA256,	/* PSK with a 32-byte key: SHA-256 suites */
	TLSHD_PRIO_PSK_SHA384,	/* PSK with a 48-byte key: SHA-384 suites */
	TLSHD_PRIO_COUNT,
};

struct tlshd_priorities {
	gnutls_priority_t prio[TLSHD_PRIO_COUNT];
};

/* Which priority a PSK of @key_len bytes is used with. */
enum tlshd_prio tlshd_priority_for_psk(size_t key_len);

/* The hash a PSK of @key_len bytes must be used with, or
 * GNUTLS_DIG_UNKNOWN when its length does not say. */
gnutls_digest_algorithm_t tlshd_priority_psk_hash(size_t key_len);

/*
 * Writes the priority string appended to the system default for @kind,
 * given the ciphers (in the policy's order) the system allows. Returns
 * the string length, -EOPNOTSUPP when none of @allowed suits @kind, or
 * -ENOSPC.
 */
int tlshd_priority_string(enum tlshd_prio kind, const unsigned int *allowed,
			  size_t n_allowed, char *buf, size_t size);

/*
 * Orders @ciphers (the policy's, in its order) for this machine's data
 * path: with @aes_fast (AES instructions) AES-GCM before CHACHA20-POLY1305,
 * else the other way round; everything else after both, in its order.
 */
void tlshd_priority_order(unsigned int *ciphers, size_t n, bool aes_fast);

/* Builds every priority; logs and returns a negative errno on failure. */
int tlshd_priority_init(struct tlshd_priorities *p);
void tlshd_priority_done(struct tlshd_priorities *p);
