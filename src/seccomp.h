/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The worker's system call filter. Once a worker has its request, its
 * keyrings and its unprivileged uid, and before it reads a byte from the
 * peer, it confines itself to what a handshake, the kTLS hand-over, DONE
 * and logging need: reading and writing the sockets it holds, memory,
 * time, randomness, the keys it possesses. Anything else (opening a file,
 * making or connecting a socket, executing, tracing, ...) kills it with
 * SIGSYS, which the parent logs.
 */
#pragma once

#include <stdbool.h>

/* Installs the filter (and no_new_privs). Returns 0 or a negative errno;
 * on failure the caller must not go on with the request. */
int tlshd_seccomp_install(void);

/* Whether this build leaves the filter out (configure --enable-sanitizers). */
bool tlshd_seccomp_disabled(void);
