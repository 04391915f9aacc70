// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The per-request path, top to bottom:
 *   1. ACCEPT: the kernel installs the consumer's socket in our fd table
 *      and links its keyring into our process keyring;
 *   2. parse the request, name the peer;
 *   3. link the keyrings it may read, drop root (an unprivileged uid with
 *      CAP_NET_ADMIN alone), confine itself to a system call allowlist,
 *      run the handshake engine (credentials, TLS 1.3, kTLS): one outcome;
 *   4. DONE with that outcome's status and authenticated peer, acked;
 *   5. one log entry (through the parent under the journal: report.c),
 *      close the socket, exit.
 * Once ACCEPT has handed us a socket, every path ends in exactly one DONE,
 * sent from one place.
 */
#include "build-config.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "genl.h"
#include "log.h"
#include "privs.h"
#include "seccomp.h"
#include "tls.h"
#include "util.h"
#include "worker.h"

#define WORKER_PEER_MAX		(NI_MAXHOST + NI_MAXSERV + 4)

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

/* Steps 2 and 3 for a request that parsed. */
static void worker_handshake(const struct tlshd_worker_env *env, const struct tlshd_request *req,
			     const char *peer, struct tlshd_tls_outcome *out)
{
	long long t = tlshd_util_now_us();
	unsigned int prep_us;
	int r;

	tlshd_log_set_prefix("%s %s %s: ", tlshd_role_name(req->role),
			     tlshd_auth_name(req->auth), peer);
	tlshd_tls_prepare(env->ctx, req);
	r = tlshd_privs_drop(&env->ids);
	if (r < 0) {
		worker_fail(out, -EIO, "cannot drop privileges: %s", strerror(-r));
		return;
	}
	r = tlshd_seccomp_install(TLSHD_SECCOMP_WORKER);
	if (r < 0) {
		worker_fail(out, -EIO, "cannot install the system call filter: %s", strerror(-r));
		return;
	}
	worker_test_escape();
	worker_test_stall();
	prep_us = tlshd_util_now_us() - t;
	tlshd_tls_run(env->ctx, req, 0, out);
	out->setup_us += prep_us;
}

/* The one line each request leaves in the log; @req is NULL when the
 * kernel's request could not be parsed. */
static void worker_log(const struct tlshd_worker_env *env, const struct tlshd_request *req,
		       const char *peer, const struct tlshd_tls_outcome *out, int done_err,
		       long long ms, const unsigned int *phase_us)
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

	memcpy(h.phase_us, phase_us, sizeof(h.phase_us));
	h.phase_us[TLSHD_PHASE_SETUP] = out->setup_us;
	h.phase_us[TLSHD_PHASE_HANDSHAKE] = out->handshake_us;
	h.phase_us[TLSHD_PHASE_KTLS] = out->ktls_us;

	/* The handshake worked, but the consumer was never told. */
	if (!h.status && done_err < 0) {
		h.status = -done_err;
		h.reason = "the kernel rejected DONE";
	}
	tlshd_log_set_prefix(NULL);
	if (!tlshd_report_send(&env->report, &h))
		tlshd_log_handshake(&h);
}

/* Steps 1 to 5 on the netlink socket @g (closed here); @ready_us is when
 * the parent read the READY this worker serves. */
static int worker_serve(const struct tlshd_worker_env *env, struct tlshd_genl *g,
			long long ready_us)
{
	struct tlshd_tls_outcome out;
	struct tlshd_request req;
	char peer[WORKER_PEER_MAX];
	unsigned int phase_us[TLSHD_PHASE_COUNT] = { 0 };
	long long start, t = tlshd_util_now_us();
	int r, done, ret;

	if (ready_us && t > ready_us)
		phase_us[TLSHD_PHASE_START] = t - ready_us;
	r = tlshd_genl_accept(g, &req);
	start = tlshd_util_now_us();	/* the entry's duration counts from here */
	phase_us[TLSHD_PHASE_ACCEPT] = start - t;
	if (r == -EAGAIN) {
		ret = TLSHD_WORKER_IDLE;
		goto out;
	}
	if (r == -EPERM) {
		tlshd_err("ACCEPT refused: the daemon lacks CAP_NET_ADMIN");
		ret = TLSHD_WORKER_ERROR;
		goto out;
	}
	if (r < 0 && req.sockfd < 0) {
		tlshd_log_errno(LOG_ERR, r, r == -ETIMEDOUT ? "the kernel did not answer ACCEPT" :
				"kernel sent an unusable handshake request with no socket, "
				"cannot answer it; the consumer will time out");
		ret = TLSHD_WORKER_ERROR;
		goto out;
	}

	tlshd_util_peer_label(req.sockfd, peer, sizeof(peer));
	if (r < 0)
		worker_fail(&out, -EINVAL, "kernel sent an unusable handshake request: %s",
			    strerror(-r));
	else
		worker_handshake(env, &req, peer, &out);

	t = tlshd_util_now_us();
	done = tlshd_genl_done(g, req.sockfd, &out.result);
	phase_us[TLSHD_PHASE_DONE] = tlshd_util_now_us() - t;
	if (done < 0)
		tlshd_log_errno(LOG_ERR, done, "kernel rejected DONE (status %s)",
				tlshd_errno_name(out.result.status));
	worker_log(env, r < 0 ? NULL : &req, peer, &out, done,
		   (tlshd_util_now_us() - start) / 1000, phase_us);
	ret = out.result.status || done < 0 ? TLSHD_WORKER_FAILED : TLSHD_WORKER_SUCCEEDED;
	close(req.sockfd);
out:
	tlshd_genl_close(g);
	return ret;
}

static int worker_connect(const struct tlshd_worker_env *env, struct tlshd_genl *g)
{
	int r;

	if (env->report.worker_fd >= 0)
		tlshd_log_set_forward(tlshd_report_line, (void *)&env->report);
	r = tlshd_genl_connect(g, env->family);
	if (r < 0)
		tlshd_log_errno(LOG_ERR, r, "cannot open a netlink socket for ACCEPT");
	return r;
}

int tlshd_worker_run(const struct tlshd_worker_env *env)
{
	struct tlshd_genl g = { 0 };

	if (worker_connect(env, &g) < 0)
		return TLSHD_WORKER_ERROR;
	return worker_serve(env, &g, env->ready_us);
}

int tlshd_worker_run_spare(const struct tlshd_worker_env *env, int go_fd)
{
	struct tlshd_genl g = { 0 };
	long long ready_us = 0;
	ssize_t n;

	/* ps and top tell idle spares from busy workers by name. */
	prctl(PR_SET_NAME, "tlshd-spare");
	if (worker_connect(env, &g) < 0) {
		close(go_fd);
		return TLSHD_WORKER_ERROR;
	}
	do {
		n = read(go_fd, &ready_us, sizeof(ready_us));
	} while (n < 0 && errno == EINTR);
	close(go_fd);
	if (n != sizeof(ready_us)) {
		tlshd_genl_close(&g);
		if (n == 0)
			return TLSHD_WORKER_RETIRED;
		tlshd_err("spare worker: unusable word from the daemon (%zd bytes)", n);
		return TLSHD_WORKER_ERROR;
	}
	prctl(PR_SET_NAME, program_invocation_short_name);
	return worker_serve(env, &g, ready_us);
}
