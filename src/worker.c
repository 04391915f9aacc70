// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The per-request path, top to bottom:
 *   1. the parent ACCEPTs and parses the request (the kernel installs the
 *      consumer's socket in its fd table); a spare gets both over its
 *      socket to the parent (SCM_RIGHTS), a worker forked for the request
 *      inherits them;
 *   2. name the peer; the handshake gets what is left of the kernel's
 *      time-out (the wait for a worker counts);
 *   3. link the keyrings it may read, drop root (an unprivileged uid
 *      with no capability), confine itself to a system call allowlist
 *      (a spare does this before its request comes: worker_arm()), run
 *      the handshake engine (credentials, TLS 1.3, kTLS): one outcome;
 *   4. close the consumer's socket; report the outcome and the log
 *      entry to the parent (report.c), which sends DONE with the
 *      outcome's status and authenticated peer (DONE needs
 *      CAP_NET_ADMIN, which a process that parses a peer's bytes does
 *      not hold), logs the entry and counts this worker as finishing;
 *   5. wait for the parent's leave (it times exits for the moments no
 *      handshake runs: supervisor.c); exit.
 * Once a worker has a request, every path ends in exactly one DONE, sent
 * by the parent: for the outcome reported, or for the worker's end.
 */
#include "build-config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "keyring.h"
#include "log.h"
#include "privs.h"
#include "seccomp.h"
#include "tls.h"
#include "util.h"
#include "worker.h"

/* An outcome decided before the engine ran. */
static void worker_fail(struct tlshd_tls_outcome *out, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void worker_fail(struct tlshd_tls_outcome *out, int err, const char *fmt, ...)
{
	va_list ap;

	memset(out, 0, sizeof(*out));
	out->result.status = -err;
	va_start(ap, fmt);
	vsnprintf(out->reason, sizeof(out->reason), fmt, ap);
	va_end(ap);
}

/* Test hooks open-after-filter and socket-after-filter (util.h): what a
 * compromised worker would try; the filter must kill it here. */
static void worker_test_escape(void)
{
	int fd = -2;

	if (tlshd_test_hook("open-after-filter", NULL)) {
		tlshd_notice("test hook: worker %d opens /etc/hostname under its system call "
			     "filter", (int)getpid());
		fd = open("/etc/hostname", O_RDONLY | O_CLOEXEC);
	} else if (tlshd_test_hook("socket-after-filter", NULL)) {
		tlshd_notice("test hook: worker %d makes a socket under its system call filter",
			     (int)getpid());
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	}
	if (fd != -2)
		tlshd_err("test hook: the system call filter let it through (%d)", fd);
	if (fd >= 0)
		close(fd);
}

/* Test hook stall-after-filter=MS: a worker that hangs once confined
 * (the parent must kill it, test hook kill-after-ms). */
static void worker_test_stall(void)
{
	long ms = 0;

	if (!tlshd_test_hook("stall-after-filter", &ms) || ms <= 0)
		return;
	tlshd_notice("test hook: worker %d stalls for %ld ms under its system call filter",
		     (int)getpid(), ms);
	tlshd_util_sleep_ms(ms);
}

/* Test hook linger-after-served=MS: a served worker that takes its time
 * to exit (its DONE must not wait for it, nor STATUS= count it, nor
 * anyone's copy of the consumer's socket stay open). */
static void worker_test_linger(void)
{
	long ms = 0;

	if (!tlshd_test_hook("linger-after-served", &ms) || ms <= 0)
		return;
	tlshd_notice("test hook: worker %d lingers for %ld ms after its DONE", (int)getpid(), ms);
	tlshd_util_sleep_ms(ms);
}

/* Served and reported: the exit waits until the parent closes its end
 * of @go_fd (or dies). */
static void worker_park(int go_fd)
{
	char c;

	if (go_fd < 0)
		return;
	while (recv(go_fd, &c, sizeof(c), 0) < 0 && errno == EINTR)
		;
}

/* How far a worker got in step 3 before its request came. */
struct worker_arming {
	bool armed;			/* all of it: only the handshake is left */
	char failed[256];		/* or what failed past the point of no
					 * return (root dropped): the request
					 * fails with EIO and this reason */
};

/* Root dropped and the filter installed; 0 or a negative errno, with
 * the reason in @a. */
static int worker_confine(const struct tlshd_worker_env *env, struct worker_arming *a)
{
	int r = tlshd_privs_drop_all(&env->ids);

	if (r < 0) {
		snprintf(a->failed, sizeof(a->failed), "cannot drop privileges: %s", strerror(-r));
		return r;
	}
	r = tlshd_seccomp_install(TLSHD_SECCOMP_WORKER);
	if (r < 0)
		snprintf(a->failed, sizeof(a->failed),
			 "cannot install the system call filter: %s", strerror(-r));
	return r;
}

/* A spare, before its request: step 3 up to the handshake, given its job
 * keyring (where the parent links the request's keyrings at dispatch).
 * Without it, nothing is done: all of it waits for the request. */
static void worker_arm(const struct tlshd_worker_env *env, key_serial_t job_ring,
		       struct worker_arming *a)
{
	int r;

	if (job_ring <= 0)
		return;
	r = tlshd_keyring_adopt(job_ring);
	if (r < 0) {
		tlshd_log_errno(LOG_DEBUG, r, "spare worker: cannot link its job keyring %d, "
				"it waits as root", job_ring);
		return;
	}
	tlshd_tls_prepare_config(env->ctx);
	a->armed = worker_confine(env, a) == 0;
}

/* Steps 2 and 3 for a request that parsed. */
static void worker_handshake(const struct tlshd_worker_env *env, const struct tlshd_job *job,
			     const char *peer, const struct worker_arming *a,
			     struct tlshd_tls_outcome *out)
{
	const struct tlshd_request *req = &job->req;
	long long t = tlshd_util_now_us();
	struct worker_arming now = { 0 };
	unsigned int prep_us;
	int r;

	tlshd_log_set_prefix("%s %s %s: ", tlshd_role_name(req->role),
			     tlshd_auth_name(req->auth), peer);
	if (a->failed[0]) {
		worker_fail(out, -EIO, "%s", a->failed);
		return;
	}
	if (!a->armed) {
		r = job->kernel_ring ? tlshd_keyring_adopt(job->kernel_ring) : 0;
		if (r < 0)
			tlshd_log_errno(LOG_WARNING, r, "cannot link the consumer's keyring %d: "
					"its keys are out of reach", job->kernel_ring);
		tlshd_tls_prepare(env->ctx, req);
		if (worker_confine(env, &now) < 0) {
			worker_fail(out, -EIO, "%s", now.failed);
			return;
		}
	}
	worker_test_escape();
	worker_test_stall();
	prep_us = tlshd_util_now_us() - t;
	tlshd_tls_run(env->ctx, req, 0, out);
	out->setup_us += prep_us;
}

/* Step 4: the outcome and the one entry each request leaves in the log
 * to the parent (@req is NULL when the kernel's request could not be
 * parsed). Returns whether they went: the parent then sends DONE, and
 * knows this worker is finishing. If not, the entry is logged here, and
 * the parent answers the request when this worker ends (or already has:
 * a stopping daemon). */
static bool worker_report(const struct tlshd_worker_env *env, const struct tlshd_request *req,
			  const char *peer, const struct tlshd_tls_outcome *out, long long ms,
			  const unsigned int *phase_us)
{
	struct tlshd_log_handshake h = {
		.role = req ? tlshd_role_name(req->role) : "?",
		.auth = req ? tlshd_auth_name(req->auth) : "?",
		.peer = peer,
		.peername = req && req->has_peername ? req->peername : NULL,
		.status = out->result.status,
		.cipher = out->cipher,
		.reason = out->reason,
		.identity = out->identity,
		.duration_ms = ms,
	};
	int r;

	memcpy(h.phase_us, phase_us, sizeof(h.phase_us));
	h.phase_us[TLSHD_PHASE_SETUP] = out->setup_us;
	h.phase_us[TLSHD_PHASE_HANDSHAKE] = out->handshake_us;
	h.phase_us[TLSHD_PHASE_KTLS] = out->ktls_us;
	tlshd_log_set_prefix(NULL);
	r = tlshd_report_send(&env->report, &out->result, &h);
	if (!r)
		return true;
	tlshd_log_errno(LOG_ERR, r, "cannot report the outcome to the daemon, which answers "
			"the request without it");
	tlshd_log_handshake(&h);
	return false;
}

/* Microseconds from @from to @to, 0 when either is unknown. */
static unsigned int worker_span(long long from, long long to)
{
	return from > 0 && to > from ? (unsigned int)(to - from) : 0;
}

/* Steps 2 to 5 for @job; @a: what was done before the request came;
 * @go_fd: where the parent gives leave to exit, or -1. */
static int worker_serve(const struct tlshd_worker_env *env, struct tlshd_job *job,
			const struct worker_arming *a, int go_fd)
{
	struct tlshd_request *req = &job->req;
	struct tlshd_tls_outcome out;
	char peer[TLSHD_PEER_LABEL_MAX];
	unsigned int phase_us[TLSHD_PHASE_COUNT] = { 0 };
	long long waited_ms, t = tlshd_util_now_us();

	phase_us[TLSHD_PHASE_ACCEPT] = worker_span(job->ready_us, job->accepted_us);
	phase_us[TLSHD_PHASE_START] = worker_span(job->accepted_us, t);
	/* The kernel's time-out runs from its request, not from us. */
	waited_ms = worker_span(job->accepted_us, t) / 1000;
	tlshd_util_peer_label(req->sockfd, peer, sizeof(peer));
	if (job->parse_err) {
		worker_fail(&out, -EINVAL, "kernel sent an unusable handshake request: %s",
			    strerror(-job->parse_err));
	} else if (req->timeout_ms && waited_ms >= req->timeout_ms) {
		worker_fail(&out, -ETIMEDOUT, "the request waited %lld ms for a worker, past "
			    "the kernel's time-out of %u ms", waited_ms, req->timeout_ms);
	} else {
		if (req->timeout_ms)
			req->timeout_ms -= waited_ms;
		worker_handshake(env, job, peer, a, &out);
	}

	/* The socket goes before the report that lets the parent DONE the
	 * request (it then lets its copy go): a connection the consumer
	 * drops is not kept open by our exit. */
	close(req->sockfd);
	if (!worker_report(env, job->parse_err ? NULL : req, peer, &out,
			   worker_span(job->accepted_us, tlshd_util_now_us()) / 1000, phase_us))
		return TLSHD_WORKER_ERROR;
	worker_test_linger();
	worker_park(go_fd);
	return out.result.status ? TLSHD_WORKER_FAILED : TLSHD_WORKER_SUCCEEDED;
}

static void worker_forward(const struct tlshd_worker_env *env)
{
	if (env->report.journal)
		tlshd_log_set_forward(tlshd_report_line, (void *)&env->report);
}

int tlshd_worker_run(const struct tlshd_worker_env *env, struct tlshd_job *job, int go_fd)
{
	const struct worker_arming none = { 0 };

	worker_forward(env);
	return worker_serve(env, job, &none, go_fd);
}

/* The one descriptor a job message carries. */
union worker_cmsg {
	struct cmsghdr h;
	char buf[CMSG_SPACE(sizeof(int))];
};

/* Parent: the request's keyrings into the spare's job keyring. */
static void worker_give_rings(key_serial_t job_ring, const struct tlshd_job *job)
{
	int r;

	if (job->kernel_ring) {
		r = tlshd_keyring_job_give(job_ring, job->kernel_ring);
		if (r < 0)
			tlshd_log_errno(LOG_WARNING, r, "cannot link the consumer's keyring %d for "
					"its worker: its keys are out of reach", job->kernel_ring);
	}
	if (!job->parse_err)
		tlshd_keyring_link_named(tlshd_tls_consumer_rings(&job->req), job_ring);
}

int tlshd_worker_hand(int go_fd, key_serial_t job_ring, const struct tlshd_job *job)
{
	union worker_cmsg c;
	struct iovec iov = { .iov_base = (void *)job, .iov_len = sizeof(*job) };
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = c.buf, .msg_controllen = sizeof(c.buf),
	};
	struct cmsghdr *cm;
	ssize_t n;

	if (job_ring > 0)
		worker_give_rings(job_ring, job);
	memset(&c, 0, sizeof(c));
	cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &job->req.sockfd, sizeof(int));
	n = sendmsg(go_fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (n < 0)
		return -errno;
	return n == sizeof(*job) ? 0 : -EIO;
}

/* Spare: the parent's job and its socket into *job. Returns 1, 0 when the
 * parent retired us (closed @go_fd), or a negative errno. */
static int worker_take(int go_fd, struct tlshd_job *job)
{
	union worker_cmsg c;
	struct iovec iov = { .iov_base = job, .iov_len = sizeof(*job) };
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = c.buf, .msg_controllen = sizeof(c.buf),
	};
	struct cmsghdr *cm;
	int fd = -1;
	ssize_t n;

	do {
		n = recvmsg(go_fd, &mh, MSG_CMSG_CLOEXEC);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	cm = CMSG_FIRSTHDR(&mh);
	if (cm && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS &&
	    cm->cmsg_len == CMSG_LEN(sizeof(int)))
		memcpy(&fd, CMSG_DATA(cm), sizeof(fd));
	if (n == 0 && fd < 0)
		return 0;
	if (n != sizeof(*job) || fd < 0 || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
		if (fd >= 0)
			close(fd);
		tlshd_err("spare worker: unusable job from the daemon (%zd bytes, %s)", n,
			  fd < 0 ? "no socket" : "truncated");
		return -EBADMSG;
	}
	job->req.sockfd = fd;
	return 1;
}

int tlshd_worker_run_spare(const struct tlshd_worker_env *env, int go_fd, key_serial_t job_ring)
{
	struct worker_arming a = { 0 };
	struct tlshd_job job;
	int r;

	worker_forward(env);
	worker_arm(env, job_ring, &a);
	r = worker_take(go_fd, &job);
	if (r <= 0)
		return r == 0 ? TLSHD_WORKER_RETIRED : TLSHD_WORKER_ERROR;
	prctl(PR_SET_NAME, program_invocation_short_name);
	return worker_serve(env, &job, &a, go_fd);
}
