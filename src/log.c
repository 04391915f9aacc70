// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Logging backends. The state here is set once by main() (sink, debug
 * switch, journal socket) and once per worker (prefix); besides that,
 * only the parent's backlog of journal entries changes (see below).
 *
 * Journal entries go through a datagram socket connected to journald
 * when the log opens, in the journal's native protocol: workers inherit
 * it, and once they run as an unprivileged uid a new connection to
 * journald's socket would be refused under the unit's sandbox (EACCES),
 * while sending on this one still works.
 */
#include "build-config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <endian.h>
#include <stdint.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"

static enum tlshd_log_sink log_sink = TLSHD_LOG_STDERR;
static bool log_debug;
static char log_prefix[160];
static pid_t log_daemon_pid;
static int log_journal_fd = -1;
static tlshd_log_forward_fn log_forward;	/* a worker's, see tlshd_log_set_forward() */
static void *log_forward_data;

#define LOG_JOURNAL_SOCKET	"/run/systemd/journal/socket"

enum tlshd_log_sink tlshd_log_default_sink(void)
{
	/* systemd sets JOURNAL_STREAM for services whose output it
	 * connects to the journal. */
	if (getenv("JOURNAL_STREAM"))
		return TLSHD_LOG_JOURNAL;
	return TLSHD_LOG_SYSLOG;
}

static int log_journal_connect(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX, .sun_path = LOG_JOURNAL_SOCKET };
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

void tlshd_log_open(enum tlshd_log_sink sink)
{
	log_sink = sink;
	log_daemon_pid = getpid();
	if (sink == TLSHD_LOG_JOURNAL) {
		log_journal_fd = log_journal_connect();
		/* No journald after all: stderr, which systemd collects. */
		if (log_journal_fd < 0)
			log_sink = TLSHD_LOG_STDERR;
	}
	if (log_sink == TLSHD_LOG_SYSLOG)
		openlog("tlshd", LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

enum tlshd_log_sink tlshd_log_sink(void)
{
	return log_sink;
}

void tlshd_log_set_debug(bool on)
{
	log_debug = on;
}

bool tlshd_log_debug_enabled(void)
{
	return log_debug;
}

void tlshd_log_set_prefix(const char *fmt, ...)
{
	va_list ap;

	if (!fmt) {
		log_prefix[0] = '\0';
		return;
	}
	va_start(ap, fmt);
	vsnprintf(log_prefix, sizeof(log_prefix), fmt, ap);
	va_end(ap);
}

/*
 * Journal entries are built as a list of "FIELD=value" strings, packed
 * one after the other into one buffer that is never cleared: an entry
 * writes only the stack it fills. (After each fork every page the parent
 * writes is copied, and the parent logs between forks.)
 */
#define LOG_FIELDS_MAX	28
#define LOG_FIELD_MAX	1280		/* one field, its NUL included */

struct log_fields {
	struct iovec iov[LOG_FIELDS_MAX];
	int n;
	size_t used;
	char buf[6 * LOG_FIELD_MAX];
};

/* (Not an initializer, which would clear the whole buffer.) */
static void log_fields_start(struct log_fields *f)
{
	f->n = 0;
	f->used = 0;
}

static void log_field(struct log_fields *f, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void log_field(struct log_fields *f, const char *fmt, ...)
{
	size_t room = sizeof(f->buf) - f->used;
	char *field = f->buf + f->used;
	va_list ap;
	int len;

	if (f->n == LOG_FIELDS_MAX || room < 2)
		return;
	if (room > LOG_FIELD_MAX)
		room = LOG_FIELD_MAX;
	va_start(ap, fmt);
	len = vsnprintf(field, room, fmt, ap);
	va_end(ap);
	if (len < 0)
		return;
	if ((size_t)len >= room)
		len = room - 1;
	f->iov[f->n].iov_base = field;
	f->iov[f->n].iov_len = len;
	f->n++;
	f->used += len + 1;
}

/*
 * journald falling behind. The daemon sends to journald without waiting
 * (MSG_DONTWAIT): its loop must never stall on a busy journald. When
 * journald's queue is full (a storm of handshakes on a loaded machine),
 * the parent keeps the entry in a backlog, in order, and its loop sends
 * it once the socket has room (tlshd_log_backlog_fd(), tlshd_log_flush()).
 * Past TLSHD_LOG_BACKLOG_MAX waiting entries the newer ones are counted,
 * and the count is logged once the backlog has drained. Any other
 * process (a worker, the key holder) logs little and waits for room, up
 * to LOG_WAIT_MS.
 */
#define LOG_WAIT_MS	1000

struct log_entry {
	size_t len;
	char data[];
};

static struct {
	struct log_entry *e[TLSHD_LOG_BACKLOG_MAX];
	unsigned int head, n;
	unsigned long long lost;
} log_backlog;

static void log_backlog_add(const struct msghdr *mh)
{
	struct log_entry *e;
	size_t len = 0;

	for (size_t i = 0; i < mh->msg_iovlen; i++)
		len += mh->msg_iov[i].iov_len;
	e = log_backlog.n < TLSHD_LOG_BACKLOG_MAX ? malloc(sizeof(*e) + len) : NULL;
	if (!e) {
		log_backlog.lost++;
		return;
	}
	e->len = 0;
	for (size_t i = 0; i < mh->msg_iovlen; i++) {
		memcpy(e->data + e->len, mh->msg_iov[i].iov_base, mh->msg_iov[i].iov_len);
		e->len += mh->msg_iov[i].iov_len;
	}
	log_backlog.e[(log_backlog.head + log_backlog.n++) % TLSHD_LOG_BACKLOG_MAX] = e;
}

static void log_journal_send(struct msghdr *mh, bool parent)
{
	struct pollfd p = { .fd = log_journal_fd, .events = POLLOUT };

	/* (Behind the backlog: entries stay in order.) */
	if (parent && log_backlog.n) {
		log_backlog_add(mh);
		return;
	}
	if (sendmsg(log_journal_fd, mh, MSG_NOSIGNAL | MSG_DONTWAIT) >= 0 || errno != EAGAIN)
		return;
	if (parent) {
		log_backlog_add(mh);
		return;
	}
	if (poll(&p, 1, LOG_WAIT_MS) == 1)
		sendmsg(log_journal_fd, mh, MSG_NOSIGNAL | MSG_DONTWAIT);
}

int tlshd_log_backlog_fd(void)
{
	return log_backlog.n ? log_journal_fd : -1;
}

void tlshd_log_flush(void)
{
	unsigned long long lost;

	while (log_backlog.n) {
		struct log_entry *e = log_backlog.e[log_backlog.head];

		if (send(log_journal_fd, e->data, e->len, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 &&
		    errno == EAGAIN)
			return;
		free(e);
		log_backlog.head = (log_backlog.head + 1) % TLSHD_LOG_BACKLOG_MAX;
		log_backlog.n--;
	}
	if (!log_backlog.lost)
		return;
	lost = log_backlog.lost;
	log_backlog.lost = 0;
	tlshd_warn("%llu log entries were lost: journald did not keep up, and %d more were "
		   "waiting for it already", lost, TLSHD_LOG_BACKLOG_MAX);
}

void tlshd_log_drain(int timeout_ms)
{
	struct pollfd p = { .events = POLLOUT };

	for (;;) {
		tlshd_log_flush();
		p.fd = tlshd_log_backlog_fd();
		if (p.fd < 0 || poll(&p, 1, timeout_ms) <= 0)
			return;
	}
}

/*
 * A worker exits right after logging, often before journald has looked
 * up which unit the sender belongs to, and the entry would then be lost
 * to "journalctl -u tlshd". OBJECT_PID names the long-lived daemon, which
 * journald resolves to OBJECT_SYSTEMD_UNIT, and journalctl -u matches it.
 */
static void log_journal(struct log_fields *f)
{
	/* Per field: "KEY=value\n", or for a value holding a newline
	 * "KEY\n" + its 64-bit little-endian length + value + "\n". */
	struct iovec iov[LOG_FIELDS_MAX * 5];
	uint64_t lens[LOG_FIELDS_MAX];
	struct msghdr mh = { .msg_iov = iov };
	bool parent = getpid() == log_daemon_pid;
	size_t n = 0;

	log_field(f, "SYSLOG_IDENTIFIER=tlshd");
	if (!parent)
		log_field(f, "OBJECT_PID=%d", (int)log_daemon_pid);
	for (int i = 0; i < f->n; i++) {
		char *field = f->iov[i].iov_base, *eq = memchr(field, '=', f->iov[i].iov_len);
		size_t klen = eq ? (size_t)(eq - field) : 0;

		if (!eq)
			continue;
		if (!memchr(eq + 1, '\n', f->iov[i].iov_len - klen - 1)) {
			iov[n++] = f->iov[i];
			iov[n++] = (struct iovec){ "\n", 1 };
			continue;
		}
		lens[i] = htole64(f->iov[i].iov_len - klen - 1);
		iov[n++] = (struct iovec){ field, klen };
		iov[n++] = (struct iovec){ "\n", 1 };
		iov[n++] = (struct iovec){ &lens[i], sizeof(lens[i]) };
		iov[n++] = (struct iovec){ eq + 1, f->iov[i].iov_len - klen - 1 };
		iov[n++] = (struct iovec){ "\n", 1 };
	}
	mh.msg_iovlen = n;
	log_journal_send(&mh, parent);
}

void tlshd_log_set_forward(tlshd_log_forward_fn fn, void *data)
{
	log_forward = fn;
	log_forward_data = data;
}

static void log_emit(int prio, const char *msg)
{
	switch (log_sink) {
	case TLSHD_LOG_JOURNAL: {
		struct log_fields f;
		char line[1200];

		if (log_forward) {
			snprintf(line, sizeof(line), "%s%s", log_prefix, msg);
			if (log_forward(log_forward_data, prio, line))
				break;
		}
		log_fields_start(&f);
		log_field(&f, "MESSAGE=%s%s", log_prefix, msg);
		log_field(&f, "PRIORITY=%d", prio);
		log_journal(&f);
		break;
	}
	case TLSHD_LOG_SYSLOG:
		syslog(prio, "%s%s", log_prefix, msg);
		break;
	case TLSHD_LOG_STDERR:
		fprintf(stderr, "tlshd[%d]: %s%s\n", (int)getpid(), log_prefix, msg);
		break;
	}
}

void tlshd_log_from_worker(int prio, const char *msg, pid_t pid, uid_t uid)
{
	struct log_fields f;

	if (log_sink != TLSHD_LOG_JOURNAL) {
		char line[1300];

		snprintf(line, sizeof(line), "worker %d (uid %u): %s", (int)pid,
			 (unsigned int)uid, msg);
		log_emit(prio, line);
		return;
	}
	log_fields_start(&f);
	log_field(&f, "MESSAGE=%s", msg);
	log_field(&f, "PRIORITY=%d", prio);
	log_field(&f, "TLSHD_WORKER_PID=%d", (int)pid);
	log_field(&f, "TLSHD_WORKER_UID=%u", (unsigned int)uid);
	log_journal(&f);
}

static void log_vemit(int prio, const char *fmt, va_list ap, const char *suffix)
	__attribute__((format(printf, 2, 0)));

static void log_vemit(int prio, const char *fmt, va_list ap, const char *suffix)
{
	char buf[1024];
	int n;

	if (prio == LOG_DEBUG && !log_debug)
		return;
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	if (n >= 0 && suffix && (size_t)n < sizeof(buf))
		snprintf(buf + n, sizeof(buf) - n, ": %s", suffix);
	log_emit(prio, buf);
}

void tlshd_log(int prio, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vemit(prio, fmt, ap, NULL);
	va_end(ap);
}

int tlshd_log_errno(int prio, int err, const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	log_vemit(prio, fmt, ap, strerror(err < 0 ? -err : err));
	va_end(ap);
	errno = saved;
	return err;
}

/* The journal field of each phase. */
static const char *const log_phase_fields[TLSHD_PHASE_COUNT] = {
	[TLSHD_PHASE_START] = "TLSHD_US_START",
	[TLSHD_PHASE_ACCEPT] = "TLSHD_US_ACCEPT",
	[TLSHD_PHASE_SETUP] = "TLSHD_US_SETUP",
	[TLSHD_PHASE_HANDSHAKE] = "TLSHD_US_HANDSHAKE",
	[TLSHD_PHASE_KTLS] = "TLSHD_US_KTLS",
	[TLSHD_PHASE_DONE] = "TLSHD_US_DONE",
};

void tlshd_log_handshake(const struct tlshd_log_handshake *h)
{
	const char *result = h->status ? "failed" : "succeeded";
	const char *err = h->status ? tlshd_errno_name(h->status) : "0";
	int prio = h->status ? LOG_ERR : LOG_INFO;
	const char *id = h->identity ? h->identity : "";
	char line[1200];

	if (h->status)
		snprintf(line, sizeof(line),
			 "handshake failed: role=%s auth=%s peer=%s errno=%s reason=%s duration_ms=%ld%s%.*s",
			 h->role, h->auth, h->peer, err, h->reason && *h->reason ? h->reason : "unknown",
			 h->duration_ms, *id ? " " : "", TLSHD_LOG_IDENTITY_MAX, id);
	else
		snprintf(line, sizeof(line),
			 "handshake succeeded: role=%s auth=%s peer=%s cipher=%s duration_ms=%ld%s%.*s",
			 h->role, h->auth, h->peer, h->cipher, h->duration_ms, *id ? " " : "",
			 TLSHD_LOG_IDENTITY_MAX, id);
	if (log_sink != TLSHD_LOG_JOURNAL) {
		log_emit(prio, line);
		return;
	}
	struct log_fields f;

	log_fields_start(&f);
	log_field(&f, "MESSAGE=%s", line);
	log_field(&f, "PRIORITY=%d", prio);
	log_field(&f, "MESSAGE_ID=%s",
		  h->status ? TLSHD_MESSAGE_ID_FAILED : TLSHD_MESSAGE_ID_SUCCEEDED);
	log_field(&f, "TLSHD_ROLE=%s", h->role);
	log_field(&f, "TLSHD_AUTH=%s", h->auth);
	log_field(&f, "TLSHD_PEER=%s", h->peer);
	log_field(&f, "TLSHD_PEERNAME=%s", h->peername ? h->peername : "");
	log_field(&f, "TLSHD_RESULT=%s", result);
	log_field(&f, "TLSHD_ERRNO=%s", err);
	log_field(&f, "TLSHD_CIPHER=%s", h->cipher ? h->cipher : "");
	log_field(&f, "TLSHD_REASON=%s", h->status && h->reason ? h->reason : "");
	log_field(&f, "TLSHD_IDENTITY=%.*s", TLSHD_LOG_IDENTITY_MAX, id);
	log_field(&f, "TLSHD_DURATION_MS=%ld", h->duration_ms);
	for (int i = 0; i < TLSHD_PHASE_COUNT; i++)
		log_field(&f, "%s=%u", log_phase_fields[i], h->phase_us[i]);
	if (h->worker_pid > 0) {
		log_field(&f, "TLSHD_WORKER_PID=%d", (int)h->worker_pid);
		log_field(&f, "TLSHD_WORKER_UID=%u", (unsigned int)h->worker_uid);
	}
	log_journal(&f);
}

const char *tlshd_errno_name(int err)
{
	const char *name = strerrorname_np(err < 0 ? -err : err);

	return name ? name : "E?";
}
