// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests of log.c's journal sink: the datagrams it sends to
 * journald's socket carry every field of a handshake entry once, with its
 * value whole, a value holding a newline in journald's binary form, and an
 * oversized value cut, not its neighbours; entries journald has no room
 * for wait in order, and those past the backlog are counted and said. journald is stood in for by a
 * socket at its path, in a private mount namespace with its own /run
 * (root, or an unprivileged user namespace where the system allows it).
 */
#include "build-config.h"

#include <endian.h>
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "tap.h"

#define JOURNAL_DIR	"/run/systemd/journal"

struct field {
	char key[64];
	char value[2048];
	size_t len;
};

struct entry {
	struct field f[40];
	int n;
	bool malformed;
};

static int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, text, strlen(text));
	close(fd);
	return n == (ssize_t)strlen(text) ? 0 : -1;
}

/* A mount namespace of our own; as a non-root user, inside a user
 * namespace mapping us to root. */
static int private_mounts(void)
{
	uid_t uid = geteuid();
	gid_t gid = getegid();
	char map[64];

	if (unshare(CLONE_NEWNS) == 0)
		return 0;
	if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0)
		return -1;
	snprintf(map, sizeof(map), "0 %u 1", (unsigned int)uid);
	if (write_file("/proc/self/uid_map", map) < 0)
		return -1;
	write_file("/proc/self/setgroups", "deny");
	snprintf(map, sizeof(map), "0 %u 1", (unsigned int)gid);
	return write_file("/proc/self/gid_map", map);
}

/* A stand-in journald: a datagram socket at its path. */
static int fake_journald(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (private_mounts() < 0)
		return -1;
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount("tmpfs", "/run", "tmpfs", 0, "mode=0755") < 0)
		return -1;
	if (mkdir("/run/systemd", 0755) < 0 || mkdir(JOURNAL_DIR, 0755) < 0)
		return -1;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/socket", JOURNAL_DIR);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* journald's native protocol: "KEY=value\n", or "KEY\n", a 64-bit
 * little-endian length, the value and "\n". */
static void parse(const char *p, size_t len, struct entry *e)
{
	const char *end = p + len;

	e->n = 0;
	e->malformed = false;
	while (p < end && e->n < (int)(sizeof(e->f) / sizeof(e->f[0]))) {
		const char *nl = memchr(p, '\n', end - p), *eq = memchr(p, '=', end - p);
		struct field *f = &e->f[e->n];
		uint64_t vlen;

		if (!nl)
			goto bad;
		if (eq && eq < nl) {
			if ((size_t)(eq - p) >= sizeof(f->key) || (size_t)(nl - eq - 1) >= sizeof(f->value))
				goto bad;
			snprintf(f->key, sizeof(f->key), "%.*s", (int)(eq - p), p);
			f->len = nl - eq - 1;
			memcpy(f->value, eq + 1, f->len);
			p = nl + 1;
		} else {
			if ((size_t)(nl - p) >= sizeof(f->key) || end - nl - 1 < 8)
				goto bad;
			snprintf(f->key, sizeof(f->key), "%.*s", (int)(nl - p), p);
			memcpy(&vlen, nl + 1, 8);
			vlen = le64toh(vlen);
			p = nl + 9;
			if (vlen >= sizeof(f->value) || (uint64_t)(end - p) < vlen + 1 || p[vlen] != '\n')
				goto bad;
			f->len = vlen;
			memcpy(f->value, p, vlen);
			p += vlen + 1;
		}
		f->value[f->len] = '\0';
		e->n++;
	}
	if (p == end)
		return;
bad:
	e->malformed = true;
}

static int receive(int fd, struct entry *e)
{
	static char buf[65536];
	ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

	if (n <= 0)
		return -1;
	parse(buf, n, e);
	return 0;
}

/* The value of @key, or NULL; @count is how often it occurs. */
static const char *value(const struct entry *e, const char *key, int *count)
{
	const char *v = NULL;

	*count = 0;
	for (int i = 0; i < e->n; i++)
		if (!strcmp(e->f[i].key, key)) {
			(*count)++;
			v = e->f[i].value;
		}
	return v;
}

#define has(e, key, want)							\
	({									\
		int _c;								\
		const char *_v = value(e, key, &_c);				\
		is_int(_c, 1, "%s occurs once", key);				\
		is_str(_v, want, "%s", key);					\
	})

static void test_handshake_entry(int fd)
{
	struct tlshd_log_handshake h = {
		.role = "server", .auth = "psk", .peer = "192.0.2.7:4420",
		.peername = "host.example", .status = 0, .cipher = "TLS_AES_128_GCM_SHA256",
		.identity = "psk=123 identity='NVMe0R01 host sub'", .duration_ms = 42,
		.worker_pid = 4321, .worker_uid = 65534,
		.phase_us = { 11, 22, 33, 44, 55, 66 },
	};
	struct entry e;
	int c;

	tlshd_log_handshake(&h);
	if (!ok(receive(fd, &e) == 0, "a successful handshake's entry reaches the journal"))
		return;
	ok(!e.malformed, "it is well-formed");
	has(&e, "MESSAGE", "handshake succeeded: role=server auth=psk peer=192.0.2.7:4420 "
	    "cipher=TLS_AES_128_GCM_SHA256 duration_ms=42 psk=123 identity='NVMe0R01 host sub'");
	has(&e, "PRIORITY", "6");
	has(&e, "MESSAGE_ID", TLSHD_MESSAGE_ID_SUCCEEDED);
	has(&e, "TLSHD_ROLE", "server");
	has(&e, "TLSHD_AUTH", "psk");
	has(&e, "TLSHD_PEER", "192.0.2.7:4420");
	has(&e, "TLSHD_PEERNAME", "host.example");
	has(&e, "TLSHD_RESULT", "succeeded");
	has(&e, "TLSHD_ERRNO", "0");
	has(&e, "TLSHD_CIPHER", "TLS_AES_128_GCM_SHA256");
	has(&e, "TLSHD_REASON", "");
	has(&e, "TLSHD_IDENTITY", "psk=123 identity='NVMe0R01 host sub'");
	has(&e, "TLSHD_DURATION_MS", "42");
	has(&e, "TLSHD_US_START", "11");
	has(&e, "TLSHD_US_ACCEPT", "22");
	has(&e, "TLSHD_US_SETUP", "33");
	has(&e, "TLSHD_US_HANDSHAKE", "44");
	has(&e, "TLSHD_US_KTLS", "55");
	has(&e, "TLSHD_US_DONE", "66");
	has(&e, "TLSHD_WORKER_PID", "4321");
	has(&e, "TLSHD_WORKER_UID", "65534");
	has(&e, "SYSLOG_IDENTIFIER", "tlshd");
	ok(!value(&e, "OBJECT_PID", &c), "the daemon's own entry names no OBJECT_PID");
	is_int(e.n, 22, "and nothing else");
}

/* The largest values a failure entry can carry: each is cut at the
 * field's limit (1279 bytes with its key), the rest arrive whole. */
static void test_oversized_entry(int fd)
{
	static char reason[3000], identity[TLSHD_LOG_IDENTITY_MAX + 100], peername[300];
	struct tlshd_log_handshake h = {
		.role = "client", .auth = "x509", .peer = "[2001:db8::1]:20049",
		.status = 110, .cipher = "", .duration_ms = 10000,
		.reason = reason, .identity = identity, .peername = peername,
	};
	struct entry e;
	const char *v;
	int c;

	memset(reason, 'r', sizeof(reason) - 1);
	reason[100] = '\n';	/* journald's binary form */
	memset(identity, 'i', sizeof(identity) - 1);
	memset(peername, 'p', sizeof(peername) - 1);
	tlshd_log_handshake(&h);
	if (!ok(receive(fd, &e) == 0, "a failure entry with oversized values reaches the journal"))
		return;
	ok(!e.malformed, "it is well-formed");
	v = value(&e, "TLSHD_REASON", &c);
	is_int(c, 1, "TLSHD_REASON occurs once");
	is_int(v ? strlen(v) : 0, 1279 - strlen("TLSHD_REASON="), "the reason is cut at the field limit");
	ok(v && v[100] == '\n' && v[99] == 'r' && v[101] == 'r', "its newline arrives (binary form)");
	v = value(&e, "TLSHD_IDENTITY", &c);
	is_int(v ? strlen(v) : 0, TLSHD_LOG_IDENTITY_MAX, "the identity is cut at its limit");
	v = value(&e, "TLSHD_PEERNAME", &c);
	is_int(v ? strlen(v) : 0, sizeof(peername) - 1, "the peer name arrives whole");
	v = value(&e, "MESSAGE", &c);
	ok(v && !strncmp(v, "handshake failed: role=client auth=x509 peer=[2001:db8::1]:20049 "
			 "errno=ETIMEDOUT reason=rrr", 91), "MESSAGE starts with the failure");
	has(&e, "TLSHD_ERRNO", "ETIMEDOUT");
	has(&e, "TLSHD_RESULT", "failed");
	has(&e, "PRIORITY", "3");
	has(&e, "TLSHD_DURATION_MS", "10000");
	has(&e, "TLSHD_US_DONE", "0");
	has(&e, "SYSLOG_IDENTIFIER", "tlshd");
	is_int(e.n, 20, "every field is there (no worker fields)");
}

static void test_lines(int fd)
{
	struct entry e;

	tlshd_log_set_prefix("client psk %s: ", "192.0.2.9:4420");
	tlshd_log(LOG_WARNING, "a %s line", "plain");
	tlshd_log_set_prefix(NULL);
	if (ok(receive(fd, &e) == 0, "a plain line reaches the journal")) {
		has(&e, "MESSAGE", "client psk 192.0.2.9:4420: a plain line");
		has(&e, "PRIORITY", "4");
		has(&e, "SYSLOG_IDENTIFIER", "tlshd");
		is_int(e.n, 3, "and nothing else");
	}
	tlshd_log_from_worker(LOG_ERR, "a worker's line", 77, 65534);
	if (ok(receive(fd, &e) == 0, "a worker's line reaches the journal")) {
		has(&e, "MESSAGE", "a worker's line");
		has(&e, "PRIORITY", "3");
		has(&e, "TLSHD_WORKER_PID", "77");
		has(&e, "TLSHD_WORKER_UID", "65534");
		is_int(e.n, 5, "and nothing else");
	}
}

static long read_long(const char *path, long dflt)
{
	FILE *f = fopen(path, "re");
	long v = dflt;

	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = dflt;
		fclose(f);
	}
	return v;
}

/*
 * A journald that does not read while more entries are logged than its
 * queue and the backlog hold together, then reads everything as the
 * daemon's loop would flush: every entry up to some point arrives, in
 * order, none twice; the rest are counted in one warning, the last entry,
 * and nothing is missing from the sum.
 */
static void test_backlog(int fd)
{
	/* A datagram queue holds at most max_dgram_qlen + 1. */
	long qlen = read_long("/proc/sys/net/unix/max_dgram_qlen", 512);
	long total = qlen + 1 + TLSHD_LOG_BACKLOG_MAX + 77, next = 0, lost = -1;
	bool in_order = true, flushed = false;
	struct entry e;

	for (long i = 0; i < total; i++)
		tlshd_log(LOG_INFO, "entry %ld", i);
	ok(tlshd_log_backlog_fd() >= 0, "a full journal leaves entries waiting (%ld logged)", total);
	for (int idle = 0; idle < 3;) {
		int c;
		const char *m;
		long n;

		if (receive(fd, &e) < 0) {
			flushed = tlshd_log_backlog_fd() < 0;
			tlshd_log_flush();
			idle += flushed;
			continue;
		}
		m = value(&e, "MESSAGE", &c);
		if (m && sscanf(m, "entry %ld", &n) == 1) {
			in_order &= n == next && lost < 0;
			next = n + 1;
		} else if (m && sscanf(m, "%ld log entries were lost", &n) == 1) {
			in_order &= lost < 0;
			lost = n;
		}
	}
	ok(in_order, "entries arrive in order, none twice, the count of lost ones last");
	ok(next >= TLSHD_LOG_BACKLOG_MAX, "%ld entries arrived (the backlog's %d at least)", next,
	   TLSHD_LOG_BACKLOG_MAX);
	is_int(lost, total - next, "the warning counts every entry that did not arrive");
	ok(flushed, "nothing is left waiting");
}

int main(void)
{
	int fd = fake_journald();

	if (fd < 0)
		return tap_skip_all("no private mount namespace for a stand-in journald socket");
	tlshd_log_open(TLSHD_LOG_JOURNAL);
	if (!ok(tlshd_log_sink() == TLSHD_LOG_JOURNAL, "the journal sink connects"))
		return tap_done();
	test_handshake_entry(fd);
	test_oversized_entry(fd);
	test_lines(fd);
	test_backlog(fd);
	close(fd);
	return tap_done();
}
