/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * System call filters: the worker's and the key holder's (keyholder.h).
 * Once a worker has its request, its keyrings and its unprivileged uid,
 * and before it reads a byte from the peer, it confines itself to what a handshake, the kTLS hand-over, DONE
 * and logging need: reading and writing the sockets it holds, memory,
 * time, randomness, the keys it possesses. Anything else (opening a file,
 * making or connecting a socket, executing, tracing, ...) kills it with
 * SIGSYS, which the parent logs. The key holder, once its keys are
 * loaded, confines itself to less still: messages on the sockets it
 * holds, memory, time and randomness.
 */
#pragma once

#include <stdbool.h>

enum tlshd_seccomp_profile {
	TLSHD_SECCOMP_WORKER,		/* the above */
	TLSHD_SECCOMP_KEYHOLDER,	/* signing for workers: messages, memory, time */
};

/* Installs @profile's filter (and no_new_privs). Returns 0 or a negative
 * errno; on failure the caller must not go on. */
int tlshd_seccomp_install(enum tlshd_seccomp_profile profile);

/* Whether this build leaves the filter out (configure --enable-sanitizers). */
bool tlshd_seccomp_disabled(void);
