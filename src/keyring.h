/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Kernel keyring access for one request: reading the PSKs the kernel
 * names by serial, and finding a PSK by the identity a client offered.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include <keyutils.h>

/* The longest PSK identity accepted from a ClientHello. NVMe identities
 * carry two NQNs (223 bytes each) and a digest; 1 KiB leaves room. */
#define TLSHD_PSK_IDENTITY_MAX	1024
#define TLSHD_PSK_KEY_MAX	128

/*
 * Whether the @len bytes at @id, a PSK identity from a client's hello,
 * may be used: 1 to TLSHD_PSK_IDENTITY_MAX bytes of printable ASCII (no
 * NUL, no control characters), since the identity is written to the log
 * and used as a key description.
 */
bool tlshd_keyring_identity_ok(const unsigned char *id, size_t len);

struct tlshd_psk {
	key_serial_t serial;
	char *identity;			/* the key's description */
	unsigned char *key;		/* raw PSK bytes, wiped on release */
	size_t key_len;
};

/*
 * Reads the PSK key @serial: description as identity, payload as key.
 * Returns 0, or -ENOKEY (missing, revoked, expired, unreadable: the
 * reason is logged at debug level), -EKEYREJECTED for an unusable
 * payload size, -ENOMEM.
 */
int tlshd_keyring_read_psk(key_serial_t serial, struct tlshd_psk *ret);

/*
 * Reads the payload of key @serial (a DER certificate or private key the
 * kernel names) into *ret, malloc'd; the caller wipes and frees it with
 * tlshd_util_wipe_free(). Returns 0 or -ENOKEY.
 */
int tlshd_keyring_read(key_serial_t serial, void **ret, size_t *ret_len);

/*
 * Links the root-owned keyrings described @names (NULL-terminated;
 * missing ones are skipped) into this thread's keyring, so that the
 * keys in them are possessed (also after the worker drops root) and can
 * be read by serial. The thread keyring dies with the worker, so nothing
 * is shared between requests.
 */
void tlshd_keyring_possess(const char *const *names);
/* The same into keyring @dest; returns how many were linked. */
int tlshd_keyring_link_named(const char *const *names, key_serial_t dest);

/*
 * Parent, right after ACCEPT: the keyring the kernel linked into this
 * process's keyring for the request (its consumer's, e.g. .nvme; before
 * Linux 6.17 the only way to learn which one it is), or 0. Every link is
 * removed again, so that the parent possesses no consumer's keys and the
 * next ACCEPT's keyring is told apart.
 */
key_serial_t tlshd_keyring_take_accepted(void);

/*
 * Worker, still root: links @ring (from tlshd_keyring_take_accepted())
 * into its own process keyring, where ACCEPT would have linked it had the
 * worker sent it; tlshd_keyring_search() looks there. Returns 0 or a
 * negative errno.
 */
int tlshd_keyring_adopt(key_serial_t ring);

/*
 * A spare's job keyring, for the keyrings of the request it will get
 * while it no longer runs as root.
 * Parent, before forking the spare: a new empty keyring (@seq: a number
 * no other spare's has, which names it), linked into the
 * parent's thread keyring (which no child inherits) so that it lives
 * until the spare has linked it into its own process keyring (with
 * tlshd_keyring_adopt()); root may link into it without possessing it.
 * Returns its serial or a negative errno.
 */
key_serial_t tlshd_keyring_job_new(unsigned long long seq);
/* Parent, at dispatch: @ring into the spare's job keyring. Returns 0 or
 * a negative errno. */
int tlshd_keyring_job_give(key_serial_t job_ring, key_serial_t ring);
/* Parent, once the spare has ended: lets the job keyring go. */
void tlshd_keyring_job_drop(key_serial_t job_ring);

/* Wipes the key and frees everything; the struct may be reused. */
void tlshd_psk_done(struct tlshd_psk *psk);

/*
 * Looks for a key of @type described @identity for a server, in order:
 * the keyring the kernel named (@request_ring; when 0, as before 6.17,
 * the process keyring, where the kernel linked its keyring at ACCEPT),
 * then the configured keyrings tlshd_keyring_possess() linked into the
 * thread keyring. Never the keyrings of the session that started the
 * daemon. Returns the key's serial and names the keyring in @where, or
 * -ENOKEY. Reads no file.
 */
key_serial_t tlshd_keyring_search(const char *type, const char *identity,
				  key_serial_t request_ring, char *where, size_t size);

/*
 * Finds a keyring by description, as /proc/keys lists them: only one
 * owned by root (the kernel's own keyrings are), so that no user can
 * plant a keyring of a configured name. Returns its serial, -ENOKEY, or
 * -ENOENT when /proc/keys cannot be read (logged).
 */
key_serial_t tlshd_keyring_find(const char *name);

/* One keyring line of /proc/keys that matched a name. */
struct tlshd_keyring_entry {
	key_serial_t serial;
	long uid;			/* owner, as /proc/keys shows it */
};

/*
 * Pure part of tlshd_keyring_find(): the keyrings described exactly
 * @name in the /proc/keys text @text (@len bytes, need not be
 * NUL-terminated), at most @max of them, in listing order. Returns how
 * many were stored in @ret.
 */
size_t tlshd_keyring_scan(const char *text, size_t len, const char *name,
			  struct tlshd_keyring_entry *ret, size_t max);
