// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer target: the PSK identity check and the /proc/keys scan, the
 * parts of the keyring lookups that read untrusted bytes (the keyctl
 * calls around them stay out). The input is a PSK identity as a client
 * sends it, up to the first newline, then /proc/keys text. An identity
 * that passes tlshd_keyring_identity_ok() is looked for as a keyring name
 * (it is a key description, as a configured keyring name is); otherwise
 * the text is scanned for ".nvme".
 */
#include "build-config.h"

#include <string.h>

#include "fuzz.h"
#include "keyring.h"

#define FUZZ_ENTRIES	4

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_quiet_log();
	return 0;
}

/* What tlshd_keyring_identity_ok() promises about what it accepts. */
static void check_identity(const uint8_t *id, size_t len)
{
	fuzz_assert(len > 0 && len <= TLSHD_PSK_IDENTITY_MAX);
	for (size_t i = 0; i < len; i++)
		fuzz_assert(id[i] >= 0x20 && id[i] <= 0x7e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tlshd_keyring_entry e[FUZZ_ENTRIES];
	char name[TLSHD_PSK_IDENTITY_MAX + 1] = ".nvme";
	const uint8_t *nl = memchr(data, '\n', size);
	size_t id_len = nl ? (size_t)(nl - data) : size;
	size_t skip = nl ? id_len + 1 : size;
	size_t n;

	if (tlshd_keyring_identity_ok(data, id_len)) {
		check_identity(data, id_len);
		memcpy(name, data, id_len);
		name[id_len] = '\0';
	}
	n = tlshd_keyring_scan((const char *)data + skip, size - skip, name, e, FUZZ_ENTRIES);
	fuzz_assert(n <= FUZZ_ENTRIES);
	for (size_t i = 0; i < n; i++)
		fuzz_assert(e[i].serial > 0);
	return 0;
}
