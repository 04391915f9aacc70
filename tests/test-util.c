// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests of util.c: whole-file reads and their limits, the peer's
 * numeric address (one spelling for the log and for verification, also
 * for v4-mapped peers), monotonic time and the first-error idiom.
 */
#include "build-config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tap.h"
#include "util.h"

static char dir[] = "/tmp/tlshd-test-util.XXXXXX";

static void write_file(const char *path, const char *data, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

	if (fd < 0 || write(fd, data, len) != (ssize_t)len)
		printf("Bail out! cannot write %s\n", path);
	close(fd);
}

static void test_read_file(void)
{
	char path[64], *data = NULL;
	struct stat st = { 0 };
	size_t len = 0;

	snprintf(path, sizeof(path), "%s/small", dir);
	write_file(path, "abc\0def", 7, 0640);
	is_int(tlshd_util_read_file(path, 7, &data, &len, &st), 0, "a 7-byte file reads whole");
	ok(len == 7 && !memcmp(data, "abc\0def", 7) && data[7] == '\0',
	   "every byte, embedded NUL kept, NUL-terminated");
	is_int(st.st_mode & 0777, 0640, "the file's mode comes back for permission checks");
	tlshd_util_wipe_free(data, len);

	data = NULL;
	is_int(tlshd_util_read_file(path, 6, &data, &len, NULL), -EFBIG,
	       "one byte over the limit: EFBIG");
	ok(data == NULL, "and nothing handed out");
	is_int(tlshd_util_read_file(dir, 100, &data, &len, NULL), -EINVAL,
	       "a directory is not a file: EINVAL");
	snprintf(path, sizeof(path), "%s/missing", dir);
	is_int(tlshd_util_read_file(path, 100, &data, &len, NULL), -ENOENT,
	       "a missing file: ENOENT");

	snprintf(path, sizeof(path), "%s/empty", dir);
	write_file(path, "", 0, 0600);
	is_int(tlshd_util_read_file(path, 100, &data, &len, NULL), 0, "an empty file reads");
	ok(len == 0 && data && data[0] == '\0', "as an empty string");
	free(data);
	data = NULL;
	is_int(tlshd_util_read_file("/proc/self/status", 1 << 20, &data, &len, NULL), 0,
	       "a /proc file (size 0 in stat) reads");
	ok(data && len > 100 && strstr(data, "Name:") && data[len] == '\0',
	   "to its end (%zu bytes)", len);
	free(data);
	data = NULL;
	is_int(tlshd_util_read_file("/proc/self/status", 64, &data, &len, NULL), -EFBIG,
	       "a /proc file longer than the limit: EFBIG");
	tlshd_util_wipe_free(NULL, 10);
	ok(true, "wiping NULL is a no-op");
}

/* A connected pair over loopback: *ret_srv is the accepted end, whose
 * peer is the client. Returns -1 when the family is unavailable. */
static int loopback_pair(int lfamily, int cfamily, const char *caddr, int *ret_cli,
			 int *ret_srv)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t slen = sizeof(ss);
	int l, c, s;

	l = socket(lfamily, SOCK_STREAM, 0);
	if (l < 0)
		return -1;
	if (lfamily == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		int off = 0;

		setsockopt(l, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off));
		a->sin6_family = AF_INET6;
		a->sin6_addr = in6addr_any;
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;

		a->sin_family = AF_INET;
		a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	}
	if (bind(l, (struct sockaddr *)&ss, lfamily == AF_INET6 ? sizeof(struct sockaddr_in6) :
		 sizeof(struct sockaddr_in)) < 0 || listen(l, 1) < 0 ||
	    getsockname(l, (struct sockaddr *)&ss, &slen) < 0)
		goto fail_l;
	c = socket(cfamily, SOCK_STREAM, 0);
	if (c < 0)
		goto fail_l;
	if (cfamily == AF_INET6) {
		struct sockaddr_in6 a = { .sin6_family = AF_INET6,
					  .sin6_port = ((struct sockaddr_in6 *)&ss)->sin6_port };

		inet_pton(AF_INET6, caddr, &a.sin6_addr);
		if (connect(c, (struct sockaddr *)&a, sizeof(a)) < 0)
			goto fail_c;
	} else {
		struct sockaddr_in a = { .sin_family = AF_INET };

		a.sin_port = lfamily == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port :
						   ((struct sockaddr_in *)&ss)->sin_port;
		inet_pton(AF_INET, caddr, &a.sin_addr);
		if (connect(c, (struct sockaddr *)&a, sizeof(a)) < 0)
			goto fail_c;
	}
	s = accept(l, NULL, NULL);
	close(l);
	if (s < 0) {
		close(c);
		return -1;
	}
	*ret_cli = c;
	*ret_srv = s;
	return 0;
fail_c:
	close(c);
fail_l:
	close(l);
	return -1;
}

static unsigned int local_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	getsockname(fd, (struct sockaddr *)&ss, &len);
	return ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port :
					       ((struct sockaddr_in *)&ss)->sin_port);
}

static void test_peer(int lfamily, int cfamily, const char *caddr, const char *want_host,
		      const char *what)
{
	char host[64], label[80], want_label[80];
	unsigned int port = 0;
	int c, s;

	if (loopback_pair(lfamily, cfamily, caddr, &c, &s) < 0) {
		ok(true, "%s: # SKIP no such loopback here", what);
		return;
	}
	is_int(tlshd_util_peer_address(s, host, sizeof(host), &port), 0, "%s: peer address", what);
	ok(!strcmp(host, want_host), "%s: written %s (got %s)", what, want_host, host);
	is_int(port, local_port(c), "%s: the client's port", what);
	tlshd_util_peer_label(s, label, sizeof(label));
	snprintf(want_label, sizeof(want_label), strchr(want_host, ':') ? "[%s]:%u" : "%s:%u",
		 want_host, port);
	ok(!strcmp(label, want_label), "%s: log label %s (got %s)", what, want_label, label);
	close(c);
	close(s);
}

static void test_no_peer(void)
{
	char host[64], label[80];
	int sv[2];

	socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	ok(tlshd_util_peer_address(sv[0], host, sizeof(host), NULL) < 0,
	   "a socketpair has no numeric peer address");
	tlshd_util_peer_label(sv[0], label, sizeof(label));
	ok(strstr(label, "no peer address") != NULL, "and says so in its label: %s", label);
	close(sv[0]);
	close(sv[1]);
}

static void test_time_and_errors(void)
{
	long long t0 = tlshd_util_now_ms(), t1;
	int first = 0;

	usleep(20000);
	t1 = tlshd_util_now_ms();
	ok(t1 - t0 >= 20 && t1 - t0 < 5000, "monotonic ms advance (%lld ms for a 20 ms sleep)",
	   t1 - t0);
	tlshd_util_keep_first(&first, 0);
	is_int(first, 0, "success is not an error");
	tlshd_util_keep_first(&first, -EINVAL);
	tlshd_util_keep_first(&first, -ENOENT);
	is_int(first, -EINVAL, "the first error is kept, later ones ignored");
}

int main(void)
{
	char cmd[80];

	if (!mkdtemp(dir))
		return tap_skip_all("cannot create a temporary directory");
	test_read_file();
	test_peer(AF_INET, AF_INET, "127.0.0.1", "127.0.0.1", "IPv4 peer");
	test_peer(AF_INET6, AF_INET, "127.0.0.1", "127.0.0.1", "IPv4 peer on a dual-stack socket");
	test_peer(AF_INET6, AF_INET6, "::1", "::1", "IPv6 peer");
	test_no_peer();
	test_time_and_errors();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		printf("# could not remove %s\n", dir);
	return tap_done();
}
