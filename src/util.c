// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Small shared helpers (see util.h).
 */
#include "build-config.h"

#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

/*
 * Reads @fd to its end into *buf (capacity *cap, grown as needed), at
 * most @max bytes. Files of /proc report size 0, so the size is a hint,
 * not a limit.
 */
static int util_read_all(int fd, size_t max, char **buf, size_t *cap, size_t *ret_len)
{
	size_t len = 0;

	for (;;) {
		ssize_t n;

		if (len + 1 >= *cap) {
			size_t want = *cap * 2 > max + 2 ? max + 2 : *cap * 2;
			char *p;

			if (want <= *cap)
				return -EFBIG;
			p = malloc(want);
			if (!p)
				return -ENOMEM;
			memcpy(p, *buf, len);
			explicit_bzero(*buf, len);
			free(*buf);
			*buf = p;
			*cap = want;
		}
		n = read(fd, *buf + len, *cap - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		len += n;
		if (len > max)
			return -EFBIG;
	}
	*ret_len = len;
	return 0;
}

int tlshd_util_read_file(const char *path, size_t max, char **ret, size_t *ret_len,
			 struct stat *ret_st)
{
	struct stat st;
	size_t len = 0, cap;
	char *buf;
	int fd, r;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		r = -errno;
		goto out_close;
	}
	if (!S_ISREG(st.st_mode)) {
		r = -EINVAL;
		goto out_close;
	}
	if ((unsigned long long)st.st_size > max) {
		r = -EFBIG;
		goto out_close;
	}
	cap = st.st_size ? (size_t)st.st_size + 2 : 4096;
	buf = malloc(cap);
	if (!buf) {
		r = -ENOMEM;
		goto out_close;
	}
	r = util_read_all(fd, max, &buf, &cap, &len);
	if (r < 0) {
		tlshd_util_wipe_free(buf, cap);
		goto out_close;
	}
	buf[len] = '\0';
	*ret = buf;
	*ret_len = len;
	if (ret_st)
		*ret_st = st;
out_close:
	close(fd);
	return r;
}

void tlshd_util_wipe_free(void *data, size_t len)
{
	if (!data)
		return;
	explicit_bzero(data, len);
	free(data);
}

int tlshd_util_peer_address(int fd, char *host, size_t size, unsigned int *ret_port)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&ss;
	const struct sockaddr_in *sin = (const struct sockaddr_in *)&ss;
	struct in_addr v4;

	if (getpeername(fd, (struct sockaddr *)&ss, &len) < 0)
		return -errno;
	/* inet_ntop, not getnameinfo: no resolver, no file, no socket (a
	 * worker calls this under its system call filter). */
	if (ss.ss_family == AF_INET) {
		if (!inet_ntop(AF_INET, &sin->sin_addr, host, size))
			return -ENOSPC;
		if (ret_port)
			*ret_port = ntohs(sin->sin_port);
		return 0;
	}
	if (ss.ss_family != AF_INET6)
		return -EAFNOSUPPORT;
	/* A v4-mapped IPv6 peer is an IPv4 peer. */
	if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
		memcpy(&v4, &sin6->sin6_addr.s6_addr[12], sizeof(v4));
		if (!inet_ntop(AF_INET, &v4, host, size))
			return -ENOSPC;
	} else if (!inet_ntop(AF_INET6, &sin6->sin6_addr, host, size)) {
		return -ENOSPC;
	}
	if (ret_port)
		*ret_port = ntohs(sin6->sin6_port);
	return 0;
}

void tlshd_util_peer_label(int fd, char *buf, size_t size)
{
	char host[NI_MAXHOST];
	unsigned int port;

	if (tlshd_util_peer_address(fd, host, sizeof(host), &port) < 0)
		snprintf(buf, size, "fd %d (no peer address)", fd);
	else if (strchr(host, ':'))
		snprintf(buf, size, "[%s]:%u", host, port);
	else
		snprintf(buf, size, "%s:%u", host, port);
}

long long tlshd_util_now_ms(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec * 1000LL + now.tv_nsec / 1000000;
}

long long tlshd_util_now_us(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec * 1000000LL + now.tv_nsec / 1000;
}

void tlshd_util_sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, ms % 1000 * 1000000 };

	nanosleep(&ts, NULL);
}

#ifdef TLSHD_TEST_HOOKS
bool tlshd_test_hook(const char *name, long *value)
{
	const char *s = getenv("TLSHD_TEST_HOOKS");
	size_t len = strlen(name);

	while (s && *s) {
		const char *end = strchrnul(s, ',');

		if ((size_t)(end - s) >= len && !strncmp(s, name, len) &&
		    (s[len] == ',' || s[len] == '=' || !s[len])) {
			if (value)
				*value = s[len] == '=' ? strtol(s + len + 1, NULL, 10) : 0;
			return true;
		}
		s = *end ? end + 1 : end;
	}
	return false;
}
#endif
