// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests of ktls.c: the crypto-info builder, checked against the
 * RFC 8448 "Simple 1-RTT Handshake" traffic keys and against the kernel
 * layout of each cipher.
 */
#include "build-config.h"

#include <errno.h>
#include <string.h>

#include "hkdf.h"
#include "ktls.h"
#include "tap.h"

static void hex(const char *s, unsigned char *out, size_t n)
{
	for (size_t i = 0; i < n; i++)
		sscanf(s + 2 * i, "%2hhx", &out[i]);
}

/* RFC 8448 section 3: server_application_traffic_secret_0 and the
 * write key and IV derived from it (TLS_AES_128_GCM_SHA256). */
static void test_rfc8448(void)
{
	unsigned char secret[32], want_key[16], want_iv[12], key[16], iv[12];
	unsigned char seq[8] = { 0, 0, 0, 0, 0, 0, 0, 1 };
	struct tlshd_ktls_crypto c;
	gnutls_datum_t dk = { key, 16 }, di = { iv, 12 };
	struct tls12_crypto_info_aes_gcm_128 *g = &c.u.aes_gcm_128;

	hex("a11af9f05531f856ad47116b45a950328204b4f44bfb6b3a4b4f1f3fcb631643", secret, 32);
	hex("9f02283b6c9c07efc26bb9f2ac92e356", want_key, 16);
	hex("cf782b88dd83549aadf1e984", want_iv, 12);

	is_int(hkdf_expand_label(GNUTLS_MAC_SHA256, secret, 32, "key", key, 16), 0, "derive key");
	is_int(hkdf_expand_label(GNUTLS_MAC_SHA256, secret, 32, "iv", iv, 12), 0, "derive iv");
	ok(!memcmp(key, want_key, 16) && !memcmp(iv, want_iv, 12),
	   "HKDF-Expand-Label reproduces RFC 8448's server write key and IV");

	is_int(tlshd_ktls_build(GNUTLS_CIPHER_AES_128_GCM, &dk, &di, seq, &c), 0,
	       "AES-128-GCM info builds");
	is_int(c.u.info.version, TLS_1_3_VERSION, "version TLS 1.3");
	is_int(c.u.info.cipher_type, TLS_CIPHER_AES_GCM_128, "cipher type 51");
	is_int(c.len, sizeof(struct tls12_crypto_info_aes_gcm_128), "optlen is the struct size");
	ok(!memcmp(g->key, want_key, 16), "key");
	ok(!memcmp(g->salt, want_iv, 4), "salt = write_iv[0..3]");
	ok(!memcmp(g->iv, want_iv + 4, 8), "iv = write_iv[4..11]");
	ok(!memcmp(g->rec_seq, seq, 8), "rec_seq big-endian as given");
}

static void fill(unsigned char *p, size_t n, unsigned char base)
{
	for (size_t i = 0; i < n; i++)
		p[i] = base + i;
}

static void test_layouts(void)
{
	unsigned char key[32], iv[12], seq[8];
	gnutls_datum_t dk = { key, 32 }, di = { iv, 12 };
	struct tlshd_ktls_crypto c;

	fill(key, 32, 0x10);
	fill(iv, 12, 0x80);
	fill(seq, 8, 0xf0);

	is_int(tlshd_ktls_build(GNUTLS_CIPHER_AES_256_GCM, &dk, &di, seq, &c), 0, "AES-256-GCM");
	ok(c.u.info.cipher_type == TLS_CIPHER_AES_GCM_256 &&
	   c.len == sizeof(struct tls12_crypto_info_aes_gcm_256) &&
	   !memcmp(c.u.aes_gcm_256.key, key, 32) && !memcmp(c.u.aes_gcm_256.salt, iv, 4) &&
	   !memcmp(c.u.aes_gcm_256.iv, iv + 4, 8) && !memcmp(c.u.aes_gcm_256.rec_seq, seq, 8),
	   "AES-256-GCM layout: 32-byte key, salt, iv, seq");

	is_int(tlshd_ktls_build(GNUTLS_CIPHER_CHACHA20_POLY1305, &dk, &di, seq, &c), 0,
	       "CHACHA20-POLY1305");
	ok(c.u.info.cipher_type == TLS_CIPHER_CHACHA20_POLY1305 &&
	   c.len == sizeof(struct tls12_crypto_info_chacha20_poly1305) &&
	   !memcmp(c.u.chacha20_poly1305.key, key, 32) &&
	   !memcmp(c.u.chacha20_poly1305.iv, iv, 12) &&
	   !memcmp(c.u.chacha20_poly1305.rec_seq, seq, 8),
	   "ChaCha20 layout: the whole 12-byte IV, no salt");

	dk.size = 16;
	is_int(tlshd_ktls_build(GNUTLS_CIPHER_AES_128_CCM, &dk, &di, seq, &c), 0, "AES-128-CCM");
	ok(c.u.info.cipher_type == TLS_CIPHER_AES_CCM_128 &&
	   c.len == sizeof(struct tls12_crypto_info_aes_ccm_128) &&
	   !memcmp(c.u.aes_ccm_128.key, key, 16) && !memcmp(c.u.aes_ccm_128.salt, iv, 4) &&
	   !memcmp(c.u.aes_ccm_128.iv, iv + 4, 8),
	   "AES-128-CCM layout");

	is_int(tlshd_ktls_build(GNUTLS_CIPHER_AES_256_GCM, &dk, &di, seq, &c), -EINVAL,
	       "16-byte key for AES-256 is refused");
	di.size = 8;
	dk.size = 16;
	is_int(tlshd_ktls_build(GNUTLS_CIPHER_AES_128_GCM, &dk, &di, seq, &c), -EINVAL,
	       "8-byte IV is refused");
	is_int(tlshd_ktls_build(GNUTLS_CIPHER_AES_128_CBC, &dk, &di, seq, &c), -EOPNOTSUPP,
	       "CBC is not a kTLS TLS 1.3 cipher");
	ok(!tlshd_ktls_cipher_supported(GNUTLS_CIPHER_AES_256_CCM), "AES-256-CCM unsupported");
	ok(tlshd_ktls_cipher_supported(GNUTLS_CIPHER_AES_128_GCM), "AES-128-GCM supported");

	tlshd_ktls_wipe(&c);
	ok(c.len == 0 && c.u.info.cipher_type == 0, "wipe clears the key material");
}

int main(void)
{
	test_rfc8448();
	test_layouts();
	return tap_done();
}
