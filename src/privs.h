/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Privilege reduction for workers. A worker parses bytes from the
 * network; once the kernel has handed it a request (ACCEPT needs root:
 * the kernel links the consumer's keyring into the worker, which only
 * root may) it keeps only what it still needs: CAP_NET_ADMIN for DONE,
 * under an unprivileged uid.
 */
#pragma once

#include <sys/types.h>

/* Whom workers run as after ACCEPT. */
struct tlshd_privs_ids {
	uid_t uid;
	gid_t gid;
};

#define TLSHD_PRIVS_USER	"tlshd"		/* if it exists */
#define TLSHD_PRIVS_NOBODY	65534		/* else nobody/nogroup */

/* Resolves TLSHD_PRIVS_USER (start-up, in the parent), else nobody. */
void tlshd_privs_worker_ids(struct tlshd_privs_ids *ret);

/*
 * Drops every capability but CAP_NET_ADMIN (effective, permitted,
 * inheritable and bounding sets), switches a root process to @ids (no
 * supplementary groups), sets no_new_privs, and makes the process
 * non-dumpable so its keys cannot be read through ptrace or a core file.
 * @ids NULL keeps the uid. Returns 0 or a negative errno; on failure the
 * caller must not go on with the request's data.
 */
int tlshd_privs_drop(const struct tlshd_privs_ids *ids);

/* As tlshd_privs_drop(), keeping no capability at all (the key holder). */
int tlshd_privs_drop_all(const struct tlshd_privs_ids *ids);
