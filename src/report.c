// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Worker outcome reports, worker to parent (see report.h). A report is
 * one fixed-size datagram; the parent trusts nothing in it but what the
 * kernel attached (the sender's pid and uid): every string is bounded
 * and terminated again, the status and the peer's key serials
 * range-checked.
 */
#include "build-config.h"

#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "report.h"
#include "util.h"

#define REPORT_MAGIC	0x746c7372u	/* "tlsr" */

enum report_kind {
	REPORT_HANDSHAKE = 1,		/* the one outcome entry */
	REPORT_LINE = 2,		/* any other message */
};

struct report_msg {
	uint32_t magic;
	uint32_t kind;
	int32_t status;			/* HANDSHAKE: 0 or errno; LINE: priority */
	int64_t duration_ms;
	char role[8];
	char auth[8];
	char peer[96];
	char peername[256];
	char cipher[64];
	char reason[1200];		/* LINE: the message */
	char identity[TLSHD_LOG_IDENTITY_MAX + 8];	/* its NUL, and no padding */
	uint32_t phase_us[TLSHD_PHASE_COUNT];
	uint32_t num_remote_auth;	/* HANDSHAKE: for DONE */
	int32_t remote_auth[TLSHD_MAX_PEERIDS];
};

/* Entries held back, in the order they came (see report.h). */
struct report_held {
	long long since_ms;		/* when the oldest came */
	unsigned int n;
	struct {
		struct report_msg m;
		struct ucred cred;
	} e[TLSHD_REPORT_HOLD_MAX];
};

/* Every byte of a report is a field: nothing uninitialised is sent. */
_Static_assert(sizeof(struct report_msg) ==
	       offsetof(struct report_msg, remote_auth) +
	       sizeof(((struct report_msg *)0)->remote_auth),
	       "a report has no padding");

int tlshd_report_open(struct tlshd_report *rep, bool journal)
{
	int sv[2], on = 1;

	rep->parent_fd = rep->worker_fd = -1;
	rep->journal = journal;
	rep->held = NULL;
	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0)
		return -errno;
	if (setsockopt(sv[0], SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)) < 0) {
		int r = -errno;

		close(sv[0]);
		close(sv[1]);
		return r;
	}
	rep->parent_fd = sv[0];
	rep->worker_fd = sv[1];
	return 0;
}

static void report_log(struct report_msg *m, const struct ucred *cred);

/* Logs every entry held back, oldest first, and lets the store go. */
static void report_release_all(struct tlshd_report *rep)
{
	struct report_held *h = rep->held;

	if (!h)
		return;
	for (unsigned int i = 0; i < h->n; i++)
		report_log(&h->e[i].m, &h->e[i].cred);
	free(h);
	rep->held = NULL;
}

/* Holds @m back; false when it cannot (not under the journal, no
 * memory): log it now. */
static bool report_hold(struct tlshd_report *rep, const struct report_msg *m,
			const struct ucred *cred)
{
	if (!rep->journal)
		return false;
	if (rep->held && rep->held->n == TLSHD_REPORT_HOLD_MAX)
		report_release_all(rep);
	if (!rep->held) {
		rep->held = malloc(sizeof(*rep->held));
		if (!rep->held)
			return false;
		rep->held->n = 0;
		rep->held->since_ms = tlshd_util_now_ms();
	}
	rep->held->e[rep->held->n].m = *m;
	rep->held->e[rep->held->n].cred = *cred;
	rep->held->n++;
	return true;
}

int tlshd_report_release(struct tlshd_report *rep, bool quiet, long long now)
{
	long long due;

	if (!rep->held)
		return -1;
	due = rep->held->since_ms + TLSHD_REPORT_HOLD_MS;
	if (!quiet && now < due)
		return (int)(due - now);
	report_release_all(rep);
	return -1;
}

void tlshd_report_close(struct tlshd_report *rep)
{
	report_release_all(rep);
	if (rep->parent_fd >= 0)
		close(rep->parent_fd);
	if (rep->worker_fd >= 0)
		close(rep->worker_fd);
	rep->parent_fd = rep->worker_fd = -1;
}

void tlshd_report_worker_init(struct tlshd_report *rep)
{
	if (rep->parent_fd >= 0)
		close(rep->parent_fd);
	rep->parent_fd = -1;
	/* (The parent logs those.) */
	free(rep->held);
	rep->held = NULL;
}

static void report_copy(char *dst, size_t size, const char *src)
{
	snprintf(dst, size, "%s", src ? src : "");
}

/* Sends @m, waiting while the parent's queue is full. */
static int report_send_wait(int fd, const struct report_msg *m)
{
	struct pollfd p = { .fd = fd, .events = POLLOUT };

	for (;;) {
		ssize_t n = send(fd, m, sizeof(*m), MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n == sizeof(*m))
			return 0;
		if (n >= 0)
			return -EIO;
		if (errno != EAGAIN && errno != EINTR)
			return -errno;
		if (errno == EAGAIN && poll(&p, 1, -1) < 0 && errno != EINTR)
			return -errno;
	}
}

int tlshd_report_send(const struct tlshd_report *rep, const struct tlshd_result *res,
		      const struct tlshd_log_handshake *h)
{
	struct report_msg m = {
		.magic = REPORT_MAGIC,
		.kind = REPORT_HANDSHAKE,
		.status = res->status,
		.duration_ms = h->duration_ms,
	};

	if (rep->worker_fd < 0)
		return -ENOTCONN;
	if (!res->status && res->num_remote_auth <= TLSHD_MAX_PEERIDS) {
		m.num_remote_auth = res->num_remote_auth;
		for (unsigned int i = 0; i < res->num_remote_auth; i++)
			m.remote_auth[i] = res->remote_auth[i];
	}
	report_copy(m.role, sizeof(m.role), h->role);
	report_copy(m.auth, sizeof(m.auth), h->auth);
	report_copy(m.peer, sizeof(m.peer), h->peer);
	report_copy(m.peername, sizeof(m.peername), h->peername);
	report_copy(m.cipher, sizeof(m.cipher), h->cipher);
	report_copy(m.reason, sizeof(m.reason), h->reason);
	report_copy(m.identity, sizeof(m.identity), h->identity);
	memcpy(m.phase_us, h->phase_us, sizeof(m.phase_us));
	return report_send_wait(rep->worker_fd, &m);
}

bool tlshd_report_line(void *data, int prio, const char *msg)
{
	const struct tlshd_report *rep = data;
	struct report_msg m = {
		.magic = REPORT_MAGIC,
		.kind = REPORT_LINE,
		.status = prio,
	};

	if (rep->worker_fd < 0 || !rep->journal)
		return false;
	report_copy(m.reason, sizeof(m.reason), msg);
	return send(rep->worker_fd, &m, sizeof(m), MSG_DONTWAIT | MSG_NOSIGNAL) == sizeof(m);
}

/* Terminates every string field, whatever the sender put there. */
static bool report_check(struct report_msg *m)
{
	m->role[sizeof(m->role) - 1] = '\0';
	m->auth[sizeof(m->auth) - 1] = '\0';
	m->peer[sizeof(m->peer) - 1] = '\0';
	m->peername[sizeof(m->peername) - 1] = '\0';
	m->cipher[sizeof(m->cipher) - 1] = '\0';
	m->reason[sizeof(m->reason) - 1] = '\0';
	m->identity[sizeof(m->identity) - 1] = '\0';
	if (m->magic != REPORT_MAGIC)
		return false;
	if (m->kind == REPORT_LINE)
		return m->status >= LOG_EMERG && m->status <= LOG_DEBUG;
	if (m->kind != REPORT_HANDSHAKE || m->status < 0 || m->status > 4095 ||
	    m->duration_ms < 0 || m->num_remote_auth > TLSHD_MAX_PEERIDS)
		return false;
	/* A peer is only named on success: by a key's serial, or as a
	 * verified certificate. */
	if (m->status && m->num_remote_auth)
		return false;
	for (unsigned int i = 0; i < m->num_remote_auth; i++)
		if (m->remote_auth[i] <= 0 && m->remote_auth[i] != TLSHD_PEERID_CERT_VERIFIED)
			return false;
	return true;
}

static void report_log(struct report_msg *m, const struct ucred *cred)
{
	struct tlshd_log_handshake h = {
		.role = m->role,
		.auth = m->auth,
		.peer = m->peer,
		.peername = m->peername[0] ? m->peername : NULL,
		.status = m->status,
		.cipher = m->cipher,
		.reason = m->reason,
		.identity = m->identity,
		.duration_ms = (long)m->duration_ms,
		.worker_pid = cred->pid,
		.worker_uid = cred->uid,
	};

	memcpy(h.phase_us, m->phase_us, sizeof(h.phase_us));
	tlshd_log_handshake(&h);
}

/* The outcome in @m to @served, which DONEs it; false when the sender
 * holds no request, or there is no @served any more (the daemon is
 * stopping, and has answered the requests itself): its entry is then
 * dropped. */
static bool report_served(struct report_msg *m, const struct ucred *cred,
			  tlshd_report_served_fn served, void *data)
{
	struct tlshd_result res = {
		.status = m->status,
		.num_remote_auth = m->num_remote_auth,
	};
	long long t = tlshd_util_now_us();
	int r = -ESRCH;

	for (unsigned int i = 0; i < m->num_remote_auth; i++)
		res.remote_auth[i] = m->remote_auth[i];
	if (served)
		r = served(data, cred->pid, &res);
	if (r == -ESRCH) {
		tlshd_warn("dropped the outcome reported by pid %d (uid %u): it holds no "
			   "request", (int)cred->pid, (unsigned int)cred->uid);
		return false;
	}
	m->phase_us[TLSHD_PHASE_DONE] = (uint32_t)(tlshd_util_now_us() - t);
	/* The handshake worked, but the consumer was never told. */
	if (r < 0 && !m->status) {
		m->status = -r;
		report_copy(m->reason, sizeof(m->reason), "the kernel rejected DONE");
	}
	return true;
}

void tlshd_report_drain(struct tlshd_report *rep, tlshd_report_served_fn served,
			void *data)
{
	if (rep->parent_fd < 0)
		return;
	for (;;) {
		union {
			char buf[CMSG_SPACE(sizeof(struct ucred))];
			struct cmsghdr align;
		} control;
		struct report_msg m;
		struct iovec iov = { &m, sizeof(m) };
		struct msghdr mh = {
			.msg_iov = &iov,
			.msg_iovlen = 1,
			.msg_control = control.buf,
			.msg_controllen = sizeof(control.buf),
		};
		const struct ucred *cred;
		struct cmsghdr *c;
		ssize_t n = recvmsg(rep->parent_fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

		if (n < 0)
			return;
		c = CMSG_FIRSTHDR(&mh);
		if (n != sizeof(m) || (mh.msg_flags & MSG_TRUNC) || !c ||
		    c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_CREDENTIALS ||
		    c->cmsg_len != CMSG_LEN(sizeof(struct ucred)) || !report_check(&m)) {
			tlshd_warn("dropped a malformed worker report (%zd bytes)", n);
			continue;
		}
		cred = (const struct ucred *)CMSG_DATA(c);
		if (m.kind == REPORT_LINE) {
			tlshd_log_from_worker(m.status, m.reason, cred->pid, cred->uid);
			continue;
		}
		if (!report_served(&m, cred, served, data))
			continue;
		/* A failure now, after what came before it. */
		if (m.status || !report_hold(rep, &m, cred)) {
			report_release_all(rep);
			report_log(&m, cred);
		}
	}
}
