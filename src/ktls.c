// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * kTLS crypto info. One table describes where each cipher's key, salt,
 * IV and sequence number go; one function fills any of them.
 *
 * TLS 1.3 per-record nonce = write_iv XOR seq. The kernel splits the
 * 12-byte write_iv into a 4-byte "salt" and an 8-byte "iv" for the
 * AES ciphers, and takes all 12 bytes as "iv" for ChaCha20-Poly1305.
 */
#include "build-config.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <string.h>

#include "ktls.h"

#ifndef SOL_TLS
#define SOL_TLS 282
#endif
#ifndef TCP_ULP
#define TCP_ULP 31
#endif

struct ktls_cipher {
	gnutls_cipher_algorithm_t gnutls;
	unsigned short type;
	unsigned char key_size, salt_size, iv_size;
	unsigned char key_off, salt_off, iv_off, seq_off;
	socklen_t len;
};

#define KTLS_CIPHER(g, t, s, name)						\
	{									\
		.gnutls = (g), .type = (t),					\
		.key_size = t##_KEY_SIZE, .salt_size = t##_SALT_SIZE,		\
		.iv_size = t##_IV_SIZE,						\
		.key_off = offsetof(struct s, key),				\
		.salt_off = offsetof(struct s, salt),				\
		.iv_off = offsetof(struct s, iv),				\
		.seq_off = offsetof(struct s, rec_seq),				\
		.len = sizeof(struct s),					\
	}

static const struct ktls_cipher ktls_ciphers[] = {
	KTLS_CIPHER(GNUTLS_CIPHER_AES_128_GCM, TLS_CIPHER_AES_GCM_128,
		    tls12_crypto_info_aes_gcm_128, aes_gcm_128),
	KTLS_CIPHER(GNUTLS_CIPHER_AES_256_GCM, TLS_CIPHER_AES_GCM_256,
		    tls12_crypto_info_aes_gcm_256, aes_gcm_256),
	KTLS_CIPHER(GNUTLS_CIPHER_AES_128_CCM, TLS_CIPHER_AES_CCM_128,
		    tls12_crypto_info_aes_ccm_128, aes_ccm_128),
	KTLS_CIPHER(GNUTLS_CIPHER_CHACHA20_POLY1305, TLS_CIPHER_CHACHA20_POLY1305,
		    tls12_crypto_info_chacha20_poly1305, chacha20_poly1305),
};

static const struct ktls_cipher *ktls_cipher_find(gnutls_cipher_algorithm_t cipher)
{
	for (size_t i = 0; i < sizeof(ktls_ciphers) / sizeof(ktls_ciphers[0]); i++)
		if (ktls_ciphers[i].gnutls == cipher)
			return &ktls_ciphers[i];
	return NULL;
}

bool tlshd_ktls_cipher_supported(gnutls_cipher_algorithm_t cipher)
{
	return ktls_cipher_find(cipher) != NULL;
}

void tlshd_ktls_wipe(struct tlshd_ktls_crypto *c)
{
	explicit_bzero(c, sizeof(*c));
}

int tlshd_ktls_build(gnutls_cipher_algorithm_t cipher, const gnutls_datum_t *key,
		     const gnutls_datum_t *iv, const unsigned char seq[8],
		     struct tlshd_ktls_crypto *ret)
{
	const struct ktls_cipher *kc = ktls_cipher_find(cipher);
	unsigned char *base = (unsigned char *)&ret->u;

	if (!kc)
		return -EOPNOTSUPP;
	if (key->size != kc->key_size || iv->size != (unsigned int)kc->salt_size + kc->iv_size)
		return -EINVAL;
	tlshd_ktls_wipe(ret);
	ret->u.info.version = TLS_1_3_VERSION;
	ret->u.info.cipher_type = kc->type;
	memcpy(base + kc->key_off, key->data, kc->key_size);
	memcpy(base + kc->salt_off, iv->data, kc->salt_size);
	memcpy(base + kc->iv_off, iv->data + kc->salt_size, kc->iv_size);
	memcpy(base + kc->seq_off, seq, 8);
	ret->len = kc->len;
	return 0;
}

int tlshd_ktls_from_session(gnutls_session_t session, bool read,
			    struct tlshd_ktls_crypto *ret)
{
	gnutls_datum_t mac, iv, key;
	unsigned char seq[8];
	int r;

	if (gnutls_protocol_get_version(session) != GNUTLS_TLS1_3)
		return -EOPNOTSUPP;
	r = gnutls_record_get_state(session, read ? 1 : 0, &mac, &iv, &key, seq);
	if (r < 0)
		return -EIO;
	return tlshd_ktls_build(gnutls_cipher_get(session), &key, &iv, seq, ret);
}

int tlshd_ktls_install(int fd, const struct tlshd_ktls_crypto *tx,
		       const struct tlshd_ktls_crypto *rx, const char **ret_step)
{
	static const char ulp[] = "tls";
	unsigned int one = 1;

	*ret_step = "TCP_ULP";
	if (setsockopt(fd, SOL_TCP, TCP_ULP, ulp, sizeof(ulp)) < 0)
		return -errno;
	*ret_step = "TLS_TX";
	if (setsockopt(fd, SOL_TLS, TLS_TX, &tx->u, tx->len) < 0)
		return -errno;
	*ret_step = "TLS_RX";
	if (setsockopt(fd, SOL_TLS, TLS_RX, &rx->u, rx->len) < 0)
		return -errno;
	/* A hint (Linux 6.0+): peers that do not pad records let the kernel
	 * decrypt in place. A kernel without it loses nothing. */
	setsockopt(fd, SOL_TLS, TLS_RX_EXPECT_NO_PAD, &one, sizeof(one));
	*ret_step = NULL;
	return 0;
}
