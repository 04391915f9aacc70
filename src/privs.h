/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Privilege reduction for workers and the key holder. A worker parses
 * bytes from the network; it runs them under an unprivileged uid with no
 * capability at all: what needs privilege (ACCEPT, which links the
 * consumer's keyring, and DONE, which needs CAP_NET_ADMIN) is the
 * parent's.
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
 * Drops every capability (effective, permitted, inheritable and, with
 * CAP_SETPCAP, bounding sets), switches a root process to @ids (no
 * supplementary groups), sets no_new_privs, and makes the process
 * non-dumpable so its keys cannot be read through ptrace or a core file.
 * @ids NULL keeps the uid. Returns 0 or a negative errno; on failure the
 * caller must not go on with the request's data. (Workers and the key
 * holder.)
 */
int tlshd_privs_drop_all(const struct tlshd_privs_ids *ids);
