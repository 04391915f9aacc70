/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Small helpers that several modules need the same way: whole-file
 * reads, the peer's numeric address, monotonic time, wiping, and the
 * "report every problem, return the first" error idiom.
 */
#pragma once

#include <netdb.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

/*
 * Reads the regular file @path whole (at most @max bytes, also for /proc
 * files, whose size says 0) into a malloc'd, NUL-terminated buffer;
 * *ret_st (optional) gets its stat.
 * Returns 0, -EFBIG when it is larger than @max, -EINVAL when it is not
 * a regular file, or the open/read errno. On failure nothing is
 * allocated and any partial read is wiped. The caller releases the
 * buffer with tlshd_util_wipe_free() when it may hold a secret.
 */
int tlshd_util_read_file(const char *path, size_t max, char **ret, size_t *ret_len,
			 struct stat *ret_st);

/* Wipes @len bytes at @data and frees it; NULL is fine. */
void tlshd_util_wipe_free(void *data, size_t len);

/*
 * The numeric address of the socket's peer ("192.0.2.1", "2001:db8::1"),
 * never a DNS lookup; a v4-mapped IPv6 peer is written as IPv4. *ret_port
 * (optional) gets the port. Returns 0, -EAFNOSUPPORT for a socket that is
 * not IPv4 or IPv6, or another negative errno.
 */
int tlshd_util_peer_address(int fd, char *host, size_t size, unsigned int *ret_port);

/* "192.0.2.1:2049" or "[2001:db8::1]:4420" (the same address as above),
 * or "fd N (no peer address)"; TLSHD_PEER_LABEL_MAX holds any. */
#define TLSHD_PEER_LABEL_MAX	(NI_MAXHOST + NI_MAXSERV + 4)
void tlshd_util_peer_label(int fd, char *buf, size_t size);

/* CLOCK_MONOTONIC in milliseconds, and in microseconds. */
long long tlshd_util_now_ms(void);
long long tlshd_util_now_us(void);

/* Sleeps @ms milliseconds (the test hooks' pauses). */
void tlshd_util_sleep_ms(long ms);

/* Keeps the first error in *first (negative errno) and ignores the rest,
 * so that a function can go on and report every problem. */
static inline void tlshd_util_keep_first(int *first, int r)
{
	if (r < 0 && *first == 0)
		*first = r;
}

/*
 * Test hooks (configure --enable-test-hooks; a production build has
 * none): $TLSHD_TEST_HOOKS is a comma-separated list of NAME or
 * NAME=NUMBER. Whether hook @name is set; *value (if given) gets its
 * number, 0 without one. Always false without --enable-test-hooks.
 *   no-keyholder            the daemon loads private keys itself (main.c)
 *   pause-after-sign=MS     a worker sleeps after sending its
 *                           CertificateVerify (tls-session.c)
 *   open-after-filter       a worker opens a file once its system call
 *   socket-after-filter     filter is on, or makes a socket (worker.c)
 *   sign-twice              a worker asks the key holder for a second
 *                           signature (signer.c)
 *   stall-after-filter=MS   a worker sleeps once confined (worker.c)
 *   linger-after-served=MS  a worker sleeps after its DONE and report
 *                           (worker.c)
 *   kill-after-ms=MS        the daemon kills workers that have served
 *                           this long (main.c; default 330 s)
 *   exit-quiet-ms=MS        served workers wait to exit until nothing
 *                           has run for MS, at most 2 MS (main.c;
 *                           default TLSHD_EXIT_QUIET_MS)
 */
#ifdef TLSHD_TEST_HOOKS
bool tlshd_test_hook(const char *name, long *value);
#else
static inline bool tlshd_test_hook(const char *name, long *value)
{
	return false;
}
#endif
