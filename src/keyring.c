// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Kernel keyring access. The daemon keeps no keyring state of its own:
 * each worker sees the keyrings the kernel linked into its process
 * keyring during ACCEPT, plus the ones named in the configuration.
 */
#include "build-config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "keyring.h"
#include "log.h"
#include "util.h"

void tlshd_psk_done(struct tlshd_psk *psk)
{
	tlshd_util_wipe_free(psk->key, psk->key_len);
	free(psk->identity);
	memset(psk, 0, sizeof(*psk));
}

/* keyctl_describe gives "type;uid;gid;perm;description"; the
 * description itself may contain ';'. */
static int keyring_describe(key_serial_t serial, char **ret_type, char **ret_desc)
{
	char *buf = NULL, *p, *type, *desc;
	int i;

	if (keyctl_describe_alloc(serial, &buf) < 0)
		return -errno;
	p = buf;
	for (i = 0; i < 4 && p; i++) {
		p = strchr(p, ';');
		if (p)
			p++;
	}
	if (!p || !*p || (size_t)strlen(p) > TLSHD_PSK_IDENTITY_MAX) {
		free(buf);
		return -EKEYREJECTED;
	}
	type = strndup(buf, strcspn(buf, ";"));
	desc = strdup(p);
	free(buf);
	if (!type || !desc) {
		free(type);
		free(desc);
		return -ENOMEM;
	}
	*ret_type = type;
	*ret_desc = desc;
	return 0;
}

int tlshd_keyring_read_psk(key_serial_t serial, struct tlshd_psk *ret)
{
	struct tlshd_psk psk = { .serial = serial };
	char *type = NULL;
	void *payload;
	long len;
	int r;

	r = keyring_describe(serial, &type, &psk.identity);
	if (r < 0) {
		tlshd_debug("cannot describe key %d: %s", serial, strerror(-r));
		return r == -ENOMEM ? r : -ENOKEY;
	}
	if (strcmp(type, "psk") && strcmp(type, "user")) {
		tlshd_debug("key %d has type '%s', not psk", serial, type);
		r = -EKEYREJECTED;
		goto fail;
	}
	len = keyctl_read_alloc(serial, &payload);
	if (len < 0) {
		r = -errno;
		tlshd_debug("cannot read key %d: %s", serial, strerror(-r));
		r = -ENOKEY;
		goto fail;
	}
	if (len < 1 || len > TLSHD_PSK_KEY_MAX) {
		tlshd_util_wipe_free(payload, len);
		tlshd_debug("key %d holds %ld bytes, not a PSK", serial, len);
		r = -EKEYREJECTED;
		goto fail;
	}
	psk.key = payload;
	psk.key_len = len;
	free(type);
	*ret = psk;
	return 0;
fail:
	free(type);
	tlshd_psk_done(&psk);
	return r;
}

int tlshd_keyring_read(key_serial_t serial, void **ret, size_t *ret_len)
{
	void *payload;
	long len;

	len = keyctl_read_alloc(serial, &payload);
	if (len < 0) {
		tlshd_debug("cannot read key %d: %s", serial, strerror(errno));
		return -ENOKEY;
	}
	*ret = payload;
	*ret_len = len;
	return 0;
}


void tlshd_keyring_possess(const char *const *names)
{
	for (; names && *names; names++) {
		key_serial_t ring = find_key_by_type_and_desc("keyring", *names, 0);

		if (ring < 0)
			continue;
		if (keyctl_link(ring, KEY_SPEC_PROCESS_KEYRING) < 0)
			tlshd_debug("cannot link keyring '%s': %s", *names, strerror(errno));
	}
}

static key_serial_t keyring_search_one(key_serial_t ring, const char *type,
				       const char *identity)
{
	long r = keyctl_search(ring, type, identity, 0);

	return r < 0 ? -ENOKEY : (key_serial_t)r;
}

key_serial_t tlshd_keyring_search(const char *type, const char *identity,
				  key_serial_t request_ring, char *const *names)
{
	key_serial_t k;

	if (request_ring) {
		k = keyring_search_one(request_ring, type, identity);
		if (k > 0)
			return k;
	}
	k = keyring_search_one(KEY_SPEC_PROCESS_KEYRING, type, identity);
	if (k > 0)
		return k;
	for (; names && *names; names++) {
		key_serial_t ring = find_key_by_type_and_desc("keyring", *names, 0);

		if (ring < 0) {
			tlshd_debug("configured keyring '%s' not found", *names);
			continue;
		}
		k = keyring_search_one(ring, type, identity);
		if (k > 0)
			return k;
	}
	return -ENOKEY;
}
