// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests of priority.c: which suites a PSK of a given length may use,
 * and the priority strings built from the system policy's cipher list.
 */
#include "build-config.h"

#include <errno.h>
#include <string.h>

#include "log.h"
#include "priority.h"
#include "tap.h"

static void test_psk_kind(void)
{
	is_int(tlshd_priority_for_psk(32), TLSHD_PRIO_PSK_SHA256, "32-byte PSK: SHA-256 suites");
	is_int(tlshd_priority_for_psk(48), TLSHD_PRIO_PSK_SHA384, "48-byte PSK: SHA-384 suites");
	is_int(tlshd_priority_for_psk(16), TLSHD_PRIO_PSK, "16-byte PSK: any suite");
	is_int(tlshd_priority_psk_hash(48), GNUTLS_DIG_SHA384, "48 bytes call for SHA-384");
	is_int(tlshd_priority_psk_hash(33), GNUTLS_DIG_UNKNOWN, "33 bytes say nothing");
}

static void test_strings(void)
{
	const unsigned int policy[] = {
		GNUTLS_CIPHER_AES_256_GCM, GNUTLS_CIPHER_CHACHA20_POLY1305,
		GNUTLS_CIPHER_AES_128_GCM, GNUTLS_CIPHER_AES_256_CBC, GNUTLS_CIPHER_AES_128_CCM,
	};
	const unsigned int only_128[] = { GNUTLS_CIPHER_AES_128_GCM };
	char buf[512];
	int n;

	n = tlshd_priority_string(TLSHD_PRIO_PSK_SHA256, policy, 5, buf, sizeof(buf));
	ok(n > 0, "SHA-256 PSK string builds");
	ok(strstr(buf, "-CIPHER-ALL:+CHACHA20-POLY1305:+AES-128-GCM:+AES-128-CCM") != NULL,
	   "SHA-256 suites only, in the policy's order: %s", buf);
	ok(!strstr(buf, "AES-256"), "no SHA-384 suite with a 32-byte PSK");
	ok(strstr(buf, "+VERS-TLS1.3") && strstr(buf, "-VERS-ALL") && strstr(buf, "%NO_TICKETS"),
	   "TLS 1.3 only, no tickets");
	ok(strstr(buf, "+ECDHE-PSK") != NULL, "PSK key exchanges enabled");
	ok(strstr(buf, "%ALLOW_SMALL_RECORDS") != NULL,
	   "a peer may ask for records down to RFC 8449's 64 bytes");

	n = tlshd_priority_string(TLSHD_PRIO_PSK_SHA384, policy, 5, buf, sizeof(buf));
	ok(n > 0 && strstr(buf, "-CIPHER-ALL:+AES-256-GCM") && !strstr(buf, "AES-128") &&
	   !strstr(buf, "CHACHA"), "SHA-384 PSK: AES-256-GCM alone: %s", buf);

	n = tlshd_priority_string(TLSHD_PRIO_X509, policy, 5, buf, sizeof(buf));
	ok(n > 0 && !strstr(buf, "PSK") && !strstr(buf, "CBC") && strstr(buf, "+AES-256-GCM"),
	   "x509: every kTLS cipher the policy allows, no CBC, no PSK: %s", buf);

	is_int(tlshd_priority_string(TLSHD_PRIO_PSK_SHA384, only_128, 1, buf, sizeof(buf)),
	       -EOPNOTSUPP, "a policy without AES-256-GCM has no SHA-384 PSK suite");
	n = tlshd_priority_string(TLSHD_PRIO_X509, (const unsigned int[]){
		GNUTLS_CIPHER_AES_128_CCM_8, GNUTLS_CIPHER_AES_128_GCM }, 2, buf, sizeof(buf));
	ok(n > 0 && !strstr(buf, "CCM-8") && strstr(buf, "+AES-128-GCM"),
	   "a TLS 1.3 suite kTLS cannot take (AES-128-CCM-8) is left out: %s", buf);
	is_int(tlshd_priority_string(TLSHD_PRIO_PSK, policy, 5, buf, 20), -ENOSPC,
	       "short buffer is reported");
}

/* The data path's cipher follows the CPU: AES-GCM where it has AES
 * instructions (and NIC offload implements only AES-GCM), else
 * CHACHA20-POLY1305; the rest keep the policy's order, after both. */
static void test_order(void)
{
	const unsigned int policy[] = {
		GNUTLS_CIPHER_AES_256_GCM, GNUTLS_CIPHER_CHACHA20_POLY1305,
		GNUTLS_CIPHER_AES_128_CCM, GNUTLS_CIPHER_AES_128_GCM,
	};
	unsigned int c[4];
	char buf[512];

	memcpy(c, policy, sizeof(c));
	tlshd_priority_order(c, 4, true);
	ok(c[0] == GNUTLS_CIPHER_AES_256_GCM && c[1] == GNUTLS_CIPHER_AES_128_GCM &&
	   c[2] == GNUTLS_CIPHER_CHACHA20_POLY1305 && c[3] == GNUTLS_CIPHER_AES_128_CCM,
	   "with AES instructions: AES-GCM (in the policy's order), CHACHA20, the rest");
	tlshd_priority_string(TLSHD_PRIO_PSK_SHA256, c, 4, buf, sizeof(buf));
	ok(strstr(buf, "-CIPHER-ALL:+AES-128-GCM:+CHACHA20-POLY1305") != NULL,
	   "a SHA-256 PSK then offers AES-128-GCM first: %s", buf);
	memcpy(c, policy, sizeof(c));
	tlshd_priority_order(c, 4, false);
	ok(c[0] == GNUTLS_CIPHER_CHACHA20_POLY1305 && c[1] == GNUTLS_CIPHER_AES_256_GCM &&
	   c[2] == GNUTLS_CIPHER_AES_128_GCM && c[3] == GNUTLS_CIPHER_AES_128_CCM,
	   "without: CHACHA20 first");
	ok(strstr(buf, "%SERVER_PRECEDENCE") != NULL, "the server role chooses by this order too");
}

static void test_init(void)
{
	struct tlshd_priorities p;

	is_int(tlshd_priority_init(&p), 0, "priorities build from this system's policy");
	for (int k = 0; k < TLSHD_PRIO_COUNT; k++)
		ok(p.prio[k] != NULL, "priority %d compiled", k);
	tlshd_priority_done(&p);
}

int main(void)
{
	tlshd_log_open(TLSHD_LOG_STDERR);
	test_psk_kind();
	test_strings();
	test_order();
	test_init();
	return tap_done();
}
