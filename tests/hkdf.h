/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Test helper: TLS 1.3 HKDF-Expand-Label (RFC 8446 section 7.1), used to
 * derive traffic keys independently of the code under test.
 */
#pragma once

#include <string.h>

#include <gnutls/crypto.h>

static inline int hkdf_expand_label(gnutls_mac_algorithm_t mac, const unsigned char *secret,
				    size_t secret_len, const char *label,
				    unsigned char *out, size_t out_len)
{
	unsigned char info[2 + 1 + 255 + 1];
	size_t llen = strlen("tls13 ") + strlen(label), n = 0;
	gnutls_datum_t key = { (unsigned char *)secret, secret_len };
	gnutls_datum_t dinfo;

	info[n++] = out_len >> 8;
	info[n++] = out_len & 0xff;
	info[n++] = llen;
	memcpy(info + n, "tls13 ", 6);
	memcpy(info + n + 6, label, strlen(label));
	n += llen;
	info[n++] = 0;			/* empty context */
	dinfo.data = info;
	dinfo.size = n;
	return gnutls_hkdf_expand(mac, &key, &dinfo, out, out_len);
}
