// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * GnuTLS priority strings.
 */
#include "build-config.h"

#include <stdbool.h>
#if defined(__aarch64__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "ktls.h"
#include "log.h"
#include "priority.h"

/* The TLS 1.3 suites (RFC 8446, B.4): each cipher comes with one hash.
 * Which of them kTLS can take over is ktls.c's to say. */
static const struct {
	gnutls_cipher_algorithm_t cipher;
	gnutls_digest_algorithm_t hash;
} prio_tls13_suites[] = {
	{ GNUTLS_CIPHER_AES_128_GCM, GNUTLS_DIG_SHA256 },
	{ GNUTLS_CIPHER_AES_256_GCM, GNUTLS_DIG_SHA384 },
	{ GNUTLS_CIPHER_CHACHA20_POLY1305, GNUTLS_DIG_SHA256 },
	{ GNUTLS_CIPHER_AES_128_CCM, GNUTLS_DIG_SHA256 },
	{ GNUTLS_CIPHER_AES_128_CCM_8, GNUTLS_DIG_SHA256 },
};

/* %SERVER_PRECEDENCE: the server role chooses by its own order (the one
 * below), not the client's, so that both roles land on the cipher this
 * machine is fast at. %ALLOW_SMALL_RECORDS: RFC 8449 lets a peer ask for
 * records down to 64 bytes; without it GnuTLS takes no record_size_limit
 * under 512 (a client fails the handshake, a server ignores it and writes
 * larger records). */
#define PRIO_BASE	"-VERS-ALL:+VERS-TLS1.3:-COMP-ALL:+COMP-NULL:%NO_TICKETS:" \
			"%SERVER_PRECEDENCE:%ALLOW_SMALL_RECORDS"
#define PRIO_PSK_KX	":+ECDHE-PSK:+DHE-PSK:+PSK"

enum tlshd_prio tlshd_priority_for_psk(size_t key_len)
{
	switch (tlshd_priority_psk_hash(key_len)) {
	case GNUTLS_DIG_SHA256:
		return TLSHD_PRIO_PSK_SHA256;
	case GNUTLS_DIG_SHA384:
		return TLSHD_PRIO_PSK_SHA384;
	default:
		return TLSHD_PRIO_PSK;
	}
}

gnutls_digest_algorithm_t tlshd_priority_psk_hash(size_t key_len)
{
	if (key_len == 32)
		return GNUTLS_DIG_SHA256;
	if (key_len == 48)
		return GNUTLS_DIG_SHA384;
	return GNUTLS_DIG_UNKNOWN;
}

static bool prio_cipher_fits(enum tlshd_prio kind, unsigned int cipher)
{
	if (!tlshd_ktls_cipher_supported(cipher))
		return false;
	for (size_t i = 0; i < sizeof(prio_tls13_suites) / sizeof(prio_tls13_suites[0]); i++) {
		if (prio_tls13_suites[i].cipher != cipher)
			continue;
		if (kind == TLSHD_PRIO_PSK_SHA256)
			return prio_tls13_suites[i].hash == GNUTLS_DIG_SHA256;
		if (kind == TLSHD_PRIO_PSK_SHA384)
			return prio_tls13_suites[i].hash == GNUTLS_DIG_SHA384;
		return true;
	}
	return false;
}

int tlshd_priority_string(enum tlshd_prio kind, const unsigned int *allowed,
			  size_t n_allowed, char *buf, size_t size)
{
	size_t used, added = 0;
	int n;

	n = snprintf(buf, size, "%s%s:-CIPHER-ALL", PRIO_BASE,
		     kind == TLSHD_PRIO_X509 ? "" : PRIO_PSK_KX);
	if (n < 0 || (size_t)n >= size)
		return -ENOSPC;
	used = n;
	for (size_t i = 0; i < n_allowed; i++) {
		if (!prio_cipher_fits(kind, allowed[i]))
			continue;
		n = snprintf(buf + used, size - used, ":+%s",
			     gnutls_cipher_get_name(allowed[i]));
		if (n < 0 || (size_t)n >= size - used)
			return -ENOSPC;
		used += n;
		added++;
	}
	return added ? (int)used : -EOPNOTSUPP;
}

static bool prio_is_aes_gcm(unsigned int c)
{
	return c == GNUTLS_CIPHER_AES_128_GCM || c == GNUTLS_CIPHER_AES_256_GCM;
}

/* 0 for the AEAD this CPU is fast at, 1 for the other, 2 for the rest. */
static int prio_rank(unsigned int c, bool aes_fast)
{
	bool aes = prio_is_aes_gcm(c), chacha = c == GNUTLS_CIPHER_CHACHA20_POLY1305;

	if (!aes && !chacha)
		return 2;
	return aes == aes_fast ? 0 : 1;
}

void tlshd_priority_order(unsigned int *ciphers, size_t n, bool aes_fast)
{
	/* Insertion sort: stable, and the lists are a handful long. */
	for (size_t i = 1; i < n; i++) {
		unsigned int c = ciphers[i];
		size_t j = i;

		for (; j > 0 && prio_rank(ciphers[j - 1], aes_fast) > prio_rank(c, aes_fast); j--)
			ciphers[j] = ciphers[j - 1];
		ciphers[j] = c;
	}
}

/* AES instructions with carry-less multiply: what makes AES-GCM fast, in
 * user space and in the kernel (and what NIC kTLS offload implements). */
static bool prio_cpu_aes_fast(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_cpu_init();
	return __builtin_cpu_supports("aes") && __builtin_cpu_supports("pclmul");
#elif defined(__aarch64__)
	unsigned long hw = getauxval(AT_HWCAP);

	return (hw & HWCAP_AES) && (hw & HWCAP_PMULL);
#else
	return false;
#endif
}

static const char *prio_kind_name(enum tlshd_prio kind)
{
	static const char *const names[TLSHD_PRIO_COUNT] = {
		[TLSHD_PRIO_X509] = "x509",
		[TLSHD_PRIO_PSK] = "psk",
		[TLSHD_PRIO_PSK_SHA256] = "psk-sha256",
		[TLSHD_PRIO_PSK_SHA384] = "psk-sha384",
	};
	return names[kind];
}

/* The ciphers the system's default priority (crypto policy) allows. */
static int prio_system_ciphers(unsigned int *out, size_t max, size_t *ret_n)
{
	gnutls_priority_t def;
	const unsigned int *list;
	int n, r;

	r = gnutls_priority_init2(&def, NULL, NULL, 0);
	if (r < 0) {
		tlshd_err("cannot load the system's TLS priority: %s", gnutls_strerror(r));
		return -EINVAL;
	}
	n = gnutls_priority_cipher_list(def, &list);
	if (n < 0)
		n = 0;
	*ret_n = 0;
	for (int i = 0; i < n && *ret_n < max; i++)
		out[(*ret_n)++] = list[i];
	gnutls_priority_deinit(def);
	return 0;
}

int tlshd_priority_init(struct tlshd_priorities *p)
{
	unsigned int allowed[64];
	const char *err_pos;
	size_t n_allowed;
	bool aes_fast;
	char buf[512];
	int r;

	memset(p, 0, sizeof(*p));
	r = prio_system_ciphers(allowed, 64, &n_allowed);
	if (r < 0)
		return r;
	aes_fast = prio_cpu_aes_fast();
	tlshd_priority_order(allowed, n_allowed, aes_fast);
	tlshd_debug("this CPU %s AES instructions: %s preferred", aes_fast ? "has" : "lacks",
		    aes_fast ? "AES-GCM" : "CHACHA20-POLY1305");
	for (int kind = 0; kind < TLSHD_PRIO_COUNT; kind++) {
		r = tlshd_priority_string(kind, allowed, n_allowed, buf, sizeof(buf));
		if (r == -EOPNOTSUPP) {
			tlshd_warn("the system TLS policy allows no %s cipher suite that kTLS supports",
				   prio_kind_name(kind));
			continue;
		}
		if (r < 0)
			goto fail;
		r = gnutls_priority_init2(&p->prio[kind], buf, &err_pos,
					  GNUTLS_PRIORITY_INIT_DEF_APPEND);
		if (r < 0) {
			tlshd_err("invalid TLS priority '%s' at '%s': %s", buf, err_pos,
				  gnutls_strerror(r));
			r = -EINVAL;
			goto fail;
		}
		tlshd_debug("priority %s: %s", prio_kind_name(kind), buf);
	}
	if (!p->prio[TLSHD_PRIO_PSK] && !p->prio[TLSHD_PRIO_X509]) {
		tlshd_err("the system TLS policy allows no cipher suite that kTLS supports");
		r = -EOPNOTSUPP;
		goto fail;
	}
	return 0;
fail:
	tlshd_priority_done(p);
	return r;
}

void tlshd_priority_done(struct tlshd_priorities *p)
{
	for (int kind = 0; kind < TLSHD_PRIO_COUNT; kind++)
		if (p->prio[kind])
			gnutls_priority_deinit(p->prio[kind]);
	memset(p, 0, sizeof(*p));
}
