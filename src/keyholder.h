/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The key holder: the one process that holds the private keys the
 * configuration names. The parent forks it before it joins the kernel
 * (and a new one on reload, and again if it dies); it loads the keys,
 * drops every capability (and root, unless a key is a PKCS#11 or TPM
 * URL), confines itself to a system call filter, says which keys it
 * holds, and signs for workers. Each worker gets a connection of its
 * own, made at fork and handed to the holder by the parent, on which
 * the holder makes one signature at most: the TLS 1.3 CertificateVerify,
 * with the key of the role the worker names, in a scheme that key makes,
 * over a hash of the scheme's length (or, for EdDSA, the CertificateVerify
 * content for that role). Anything else is refused with a log line; a
 * worker that asks for a second signature or sends a malformed request
 * loses its connection and is reported to the parent, which kills it (a
 * holder let go of on reload can only do the former).
 *
 * Neither the parent nor any worker ever holds these keys. Keys the
 * kernel names for one request (NFS's privkey_serial=) stay in the
 * worker that serves it: tlshd(8), "Security model".
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "creds.h"

struct tlshd_config;
struct tlshd_privs_ids;
struct tlshd_report;

/* How long the parent waits for a new holder's keys (a PKCS#11 token
 * may be slow to open). */
#define TLSHD_KEYHOLDER_START_TIMEOUT_MS	30000
/* Workers' connections a holder serves at once. */
#define TLSHD_KEYHOLDER_MAX_CONNS		1024

/* Holder to parent, once: the keys it holds, or why it holds none. */
struct tlshd_keyholder_hello {
	int32_t err;			/* 0 or a negative errno */
	struct {
		uint32_t present;
		uint8_t id[TLSHD_CREDS_KEY_ID_LEN];
	} role[TLSHD_SIGNER_ROLES];
};

/* Parent to holder: a worker's connection (SCM_RIGHTS) and its pid.
 * Holder to parent: a worker that broke the rules, to be killed. */
struct tlshd_keyholder_worker {
	int32_t pid;
};

/* The parent's view of one holder. */
struct tlshd_keyholder {
	pid_t pid;			/* 0: none */
	int ctl_fd;			/* -1: none */
};

/* Whether @cfg names a private key, and so needs a holder. */
bool tlshd_keyholder_needed(const struct tlshd_config *cfg);

/*
 * In a child just forked: loads @cfg's keys, drops to @ids (see above),
 * installs the filter, reports on @ctl_fd, and serves workers until the
 * parent closes @ctl_fd and the last worker's connection ends. Logs go
 * through @report when it is open. Returns the exit status.
 */
int tlshd_keyholder_run(const struct tlshd_config *cfg, const struct tlshd_privs_ids *ids,
			const struct tlshd_report *report, int ctl_fd);

/*
 * Parent: forks a holder for @cfg (the child first calls @child_init with
 * @arg, if given, to drop what it must not keep of the parent's) and
 * waits until it reports its keys; fills @kh and the key ids in @keys
 * (keys->signer is the caller's). Returns 0, or a negative errno (the
 * holder logged why) with the child reaped.
 */
int tlshd_keyholder_spawn(const struct tlshd_config *cfg, const struct tlshd_privs_ids *ids,
			  const struct tlshd_report *report, void (*child_init)(void *),
			  void *arg, struct tlshd_keyholder *kh, struct tlshd_creds_remote *keys);

/* Parent: hands worker @pid's connection @fd to the holder (the caller
 * still closes its @fd). Returns 0 or a negative errno. */
int tlshd_keyholder_attach(const struct tlshd_keyholder *kh, pid_t pid, int fd);

/* A connection for @pid, a process already running (tests, tlshd-probe):
 * *ret_fd gets its end. Returns 0 or a negative errno. */
int tlshd_keyholder_connect(const struct tlshd_keyholder *kh, pid_t pid, int *ret_fd);

/* Parent: one complaint from the holder: *pid the worker to kill.
 * Returns 0, -EAGAIN when there is none, -ECONNRESET when the holder
 * is gone. */
int tlshd_keyholder_read(const struct tlshd_keyholder *kh, pid_t *pid);

/* Parent: lets the holder go; it finishes with the workers it serves and
 * exits. */
void tlshd_keyholder_release(struct tlshd_keyholder *kh);
