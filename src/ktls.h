/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * kTLS: turning a finished GnuTLS session's record state into the
 * kernel's tls12_crypto_info_* structures, and installing them.
 */
#pragma once

#include <stdbool.h>
#include <sys/socket.h>

#include <gnutls/gnutls.h>
#include <linux/tls.h>

struct tlshd_ktls_crypto {
	union {
		struct tls_crypto_info info;
		struct tls12_crypto_info_aes_gcm_128 aes_gcm_128;
		struct tls12_crypto_info_aes_gcm_256 aes_gcm_256;
		struct tls12_crypto_info_aes_ccm_128 aes_ccm_128;
		struct tls12_crypto_info_chacha20_poly1305 chacha20_poly1305;
	} u;
	socklen_t len;			/* bytes of u to hand to setsockopt */
};

bool tlshd_ktls_cipher_supported(gnutls_cipher_algorithm_t cipher);

/*
 * Builds TLS 1.3 crypto info for @cipher from a traffic key, the 12-byte
 * write IV and the 8-byte big-endian sequence number of the next record.
 * Returns -EOPNOTSUPP for a cipher kTLS cannot take, -EINVAL for sizes
 * that do not match the cipher.
 */
int tlshd_ktls_build(gnutls_cipher_algorithm_t cipher, const gnutls_datum_t *key,
		     const gnutls_datum_t *iv, const unsigned char seq[8],
		     struct tlshd_ktls_crypto *ret);

/* Builds TX (@read false) or RX (@read true) info from @session. */
int tlshd_ktls_from_session(gnutls_session_t session, bool read,
			    struct tlshd_ktls_crypto *ret);

/*
 * Attaches the "tls" ULP to @fd and installs @tx and @rx. Returns 0 or
 * the failing setsockopt's negative errno; *ret_step names the step that
 * failed ("TCP_ULP", "TLS_TX", "TLS_RX").
 */
int tlshd_ktls_install(int fd, const struct tlshd_ktls_crypto *tx,
		       const struct tlshd_ktls_crypto *rx, const char **ret_step);

void tlshd_ktls_wipe(struct tlshd_ktls_crypto *c);
