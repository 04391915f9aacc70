// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Kernel keyring access. The daemon keeps no keyring state of its own:
 * each worker sees the keyrings the kernel linked into its process
 * keyring during ACCEPT, plus the ones named in the configuration.
 */
#include "build-config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keyring.h"
#include "log.h"
#include "util.h"

bool tlshd_keyring_identity_ok(const unsigned char *id, size_t len)
{
	if (len == 0 || len > TLSHD_PSK_IDENTITY_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (id[i] < 0x20 || id[i] > 0x7e)
			return false;
	return true;
}

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


/*
 * /proc/keys, one key a line (security/keys/proc.c):
 *   serial flags usage timeout perm uid gid type description: summary
 * with the serial and perm in hex and the type padded to 9 columns. A
 * keyring's summary is "empty" or a count; its description may itself
 * hold spaces and ": ", so the summary is cut at the last ": ".
 */
static bool keyring_scan_line(const char *line, const char *name,
			      struct tlshd_keyring_entry *ret)
{
	const char *colon;
	char type[16];
	unsigned int serial;
	long uid;
	int off = -1;

	if (sscanf(line, "%x %*s %*d %*s %*x %ld %*d %15s %n", &serial, &uid, type, &off) < 3 ||
	    off < 0 || strcmp(type, "keyring"))
		return false;
	colon = strrchr(line + off, ':');
	if (!colon || colon[1] != ' ' || (size_t)(colon - (line + off)) != strlen(name) ||
	    strncmp(line + off, name, colon - (line + off)))
		return false;
	if (serial == 0 || serial > 0x7fffffff)
		return false;
	ret->serial = (key_serial_t)serial;
	ret->uid = uid;
	return true;
}

size_t tlshd_keyring_scan(const char *text, size_t len, const char *name,
			  struct tlshd_keyring_entry *ret, size_t max)
{
	const char *p = text, *end = text + len;
	char line[1024];
	size_t n = 0;

	while (p < end && n < max) {
		const char *nl = memchr(p, '\n', end - p);
		size_t l = (nl ? nl : end) - p;

		/* Longer lines hold no keyring name we look for. */
		if (l < sizeof(line)) {
			memcpy(line, p, l);
			line[l] = '\0';
			if (keyring_scan_line(line, name, &ret[n]))
				n++;
		}
		p = nl ? nl + 1 : end;
	}
	return n;
}

/* The kernel's word on a key: type keyring, owned by root, described
 * @name (/proc/keys is only the hint that names candidates). */
static bool keyring_is_roots(key_serial_t serial, const char *name)
{
	char *buf = NULL;
	char type[16];
	long uid;
	int off = -1;
	bool yes;

	if (keyctl_describe_alloc(serial, &buf) < 0) {
		tlshd_debug("keyring %d '%s' cannot be described: %s", serial, name,
			    strerror(errno));
		return false;
	}
	/* "keyring;uid;gid;perm;description" */
	yes = sscanf(buf, "%15[^;];%ld;%*d;%*x;%n", type, &uid, &off) == 2 && off > 0 &&
	      !strcmp(type, "keyring") && uid == 0 && !strcmp(buf + off, name);
	free(buf);
	return yes;
}

#define KEYRING_PROC_KEYS	"/proc/keys"
#define KEYRING_PROC_MAX	(16 * 1024 * 1024)
#define KEYRING_CANDIDATES	16

/* Reads /proc/keys, or says why not (once per lookup, naming @what). */
static int keyring_proc_keys(const char *what, char **ret, size_t *ret_len)
{
	int r = tlshd_util_read_file(KEYRING_PROC_KEYS, KEYRING_PROC_MAX, ret, ret_len, NULL);

	if (r < 0)
		tlshd_warn("cannot read %s (%s), where keyrings are found by name: %s not used "
			   "(a systemd unit with ProcSubset=pid hides it)", KEYRING_PROC_KEYS,
			   strerror(-r), what);
	return r;
}

/* The root-owned keyring described @name in the /proc/keys @text. */
static key_serial_t keyring_find_in(const char *text, size_t len, const char *name)
{
	struct tlshd_keyring_entry c[KEYRING_CANDIDATES];
	size_t n = tlshd_keyring_scan(text, len, name, c, KEYRING_CANDIDATES);

	if (!n)
		tlshd_debug("no keyring '%s' in %s", name, KEYRING_PROC_KEYS);
	for (size_t i = 0; i < n; i++) {
		if (c[i].uid != 0) {
			tlshd_warn("keyring %d '%s' belongs to uid %ld, not root: ignored",
				   c[i].serial, name, c[i].uid);
			continue;
		}
		if (keyring_is_roots(c[i].serial, name))
			return c[i].serial;
	}
	return -ENOKEY;
}

key_serial_t tlshd_keyring_find(const char *name)
{
	char *text = NULL;
	size_t len = 0;
	key_serial_t ring;

	if (keyring_proc_keys(name, &text, &len) < 0)
		return -ENOENT;
	ring = keyring_find_in(text, len, name);
	free(text);
	return ring;
}

int tlshd_keyring_link_named(const char *const *names, key_serial_t dest)
{
	char *text = NULL;
	size_t len = 0;
	int n = 0;

	if (!names || !*names)
		return 0;
	/* One read of /proc/keys for every name: this runs per request. */
	if (keyring_proc_keys("keyrings named in the configuration or by the consumer",
			      &text, &len) < 0)
		return 0;
	for (; *names; names++) {
		key_serial_t ring = keyring_find_in(text, len, *names);

		if (ring < 0)
			continue;
		if (keyctl_link(ring, dest) < 0)
			tlshd_debug("cannot link keyring '%s': %s", *names, strerror(errno));
		else
			n++;
	}
	free(text);
	return n;
}

void tlshd_keyring_possess(const char *const *names)
{
	/* The thread keyring: possessed from then on, but not part of the
	 * process keyring, which holds the kernel's keyring alone
	 * (tlshd_keyring_search() relies on that). */
	tlshd_keyring_link_named(names, KEY_SPEC_THREAD_KEYRING);
}

key_serial_t tlshd_keyring_job_new(unsigned long long seq)
{
	/* Possessor: all; the owner (root): link into it, and the spare
	 * may link it while still root. Nobody else. */
	const key_perm_t perm = KEY_POS_ALL | KEY_USR_VIEW | KEY_USR_WRITE | KEY_USR_SEARCH |
				KEY_USR_LINK;
	key_serial_t ring;
	char desc[40];

	/* A keyring of the same description would displace the previous
	 * spare's before that spare has linked it. */
	snprintf(desc, sizeof(desc), "tlshd:job:%llu", seq);
	ring = add_key("keyring", desc, NULL, 0, KEY_SPEC_THREAD_KEYRING);
	if (ring < 0)
		return -errno;
	if (keyctl_setperm(ring, perm) < 0) {
		int r = -errno;

		tlshd_keyring_job_drop(ring);
		return r;
	}
	return ring;
}

int tlshd_keyring_job_give(key_serial_t job_ring, key_serial_t ring)
{
	return keyctl_link(ring, job_ring) < 0 ? -errno : 0;
}

void tlshd_keyring_job_drop(key_serial_t job_ring)
{
	if (job_ring > 0)
		keyctl_unlink(job_ring, KEY_SPEC_THREAD_KEYRING);
}

key_serial_t tlshd_keyring_take_accepted(void)
{
	key_serial_t *rings = NULL, first = 0;
	long len = keyctl_read_alloc(KEY_SPEC_PROCESS_KEYRING, (void **)&rings);

	if (len < 0)
		return 0;	/* no process keyring yet: nothing was linked */
	for (long i = 0; i < len / (long)sizeof(*rings); i++) {
		if (!first)
			first = rings[i];
		if (keyctl_unlink(rings[i], KEY_SPEC_PROCESS_KEYRING) < 0)
			tlshd_log_errno(LOG_WARNING, -errno, "cannot unlink keyring %d from the "
					"daemon's process keyring", rings[i]);
	}
	free(rings);
	return first;
}

int tlshd_keyring_adopt(key_serial_t ring)
{
	if (keyctl_link(ring, KEY_SPEC_PROCESS_KEYRING) < 0)
		return -errno;
	return 0;
}

static key_serial_t keyring_search_one(key_serial_t ring, const char *type,
				       const char *identity)
{
	long r = keyctl_search(ring, type, identity, 0);

	return r < 0 ? -ENOKEY : (key_serial_t)r;
}

/* The keyrings tlshd_keyring_possess() linked into the thread keyring
 * (the configured ones), in order; the caller frees the array. */
static int keyring_linked(key_serial_t **ret)
{
	void *buf = NULL;
	long len = keyctl_read_alloc(KEY_SPEC_THREAD_KEYRING, &buf);

	if (len < 0)
		return 0;	/* no thread keyring: nothing was linked */
	*ret = buf;
	return (int)(len / sizeof(key_serial_t));
}

static void keyring_name(key_serial_t ring, char *buf, size_t size)
{
	char *d = NULL;
	const char *desc;

	if (keyctl_describe_alloc(ring, &d) < 0) {
		snprintf(buf, size, "%d", ring);
		return;
	}
	desc = strrchr(d, ';');
	snprintf(buf, size, "'%s' (%d)", desc ? desc + 1 : d, ring);
	free(d);
}

key_serial_t tlshd_keyring_search(const char *type, const char *identity,
				  key_serial_t request_ring, char *where, size_t size)
{
	key_serial_t k, ring, *linked = NULL;
	char name[160];
	int n;

	/* The kernel's keyring: named in the request (6.17+), or before
	 * that linked into our process keyring at ACCEPT, which holds
	 * nothing else. */
	ring = request_ring ? request_ring : KEY_SPEC_PROCESS_KEYRING;
	k = keyring_search_one(ring, type, identity);
	if (k > 0) {
		if (request_ring)
			snprintf(where, size, "the request's keyring %d", request_ring);
		else
			snprintf(where, size, "the keyring the kernel linked");
		return k;
	}
	/* Then the configured keyrings, linked (root-owned only) into the
	 * thread keyring before the worker left root: searched by serial,
	 * with no /proc/keys to read under the worker's filter. */
	n = keyring_linked(&linked);
	for (int i = 0; i < n; i++) {
		k = keyring_search_one(linked[i], type, identity);
		if (k > 0) {
			keyring_name(linked[i], name, sizeof(name));
			snprintf(where, size, "configured keyring %s", name);
			break;
		}
	}
	free(linked);
	return k > 0 ? k : -ENOKEY;
}
