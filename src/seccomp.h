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
#include <stddef.h>

enum tlshd_seccomp_profile {
	TLSHD_SECCOMP_WORKER,		/* the above */
	TLSHD_SECCOMP_KEYHOLDER,	/* signing for workers: messages, memory, time */
};

/* Installs @profile's filter (and no_new_privs). Returns 0 or a negative
 * errno; on failure the caller must not go on. */
int tlshd_seccomp_install(enum tlshd_seccomp_profile profile);

/* Whether this build leaves the filter out (configure --enable-sanitizers). */
bool tlshd_seccomp_disabled(void);

/* For the unit test, which runs the program for every call number: the
 * program of @profile in @f (at most @max instructions; returns how many,
 * 0 if @max is too small), and the list of calls it allows (ioctl aside). */
struct sock_filter;
size_t tlshd_seccomp_program(enum tlshd_seccomp_profile profile, struct sock_filter *f,
			     size_t max);
const int *tlshd_seccomp_allowed(enum tlshd_seccomp_profile profile, size_t *ret_n);
