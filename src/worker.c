// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The per-request path, top to bottom:
 *   1. ACCEPT: the kernel installs the consumer's socket in our fd table
 *      and links its keyring into our process keyring;
 *   2. parse the request, name the peer;
 *   3. run the handshake engine (credentials, TLS 1.3, kTLS);
 *   4. DONE with the status and the authenticated peer, acked;
 *   5. one log line, close the socket, exit.
 * Once ACCEPT has handed us a socket, every path ends in exactly one DONE.
 */
#include "build-config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "genl.h"
#include "log.h"
#include "privs.h"
#include "tls.h"
#include "worker.h"

/* "192.0.2.1:2049" or "[2001:db8::1]:4420", numeric: no DNS here. */
static void worker_peer_name(int fd, char *buf, size_t size)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char host[NI_MAXHOST], serv[NI_MAXSERV];

	if (getpeername(fd, (struct sockaddr *)&ss, &len) < 0 ||
	    getnameinfo((struct sockaddr *)&ss, len, host, sizeof(host), serv, sizeof(serv),
			NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
		snprintf(buf, size, "fd %d (no peer address)", fd);
		return;
	}
	if (ss.ss_family == AF_INET6)
		snprintf(buf, size, "[%s]:%s", host, serv);
	else
		snprintf(buf, size, "%s:%s", host, serv);
}

static long worker_ms_since(const struct timespec *start)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - start->tv_sec) * 1000L + (now.tv_nsec - start->tv_nsec) / 1000000;
}

static void worker_log_result(const struct tlshd_request *req, const char *peer,
			      const struct tlshd_handshake *hs, long ms)
{
	struct tlshd_log_handshake h = {
		.role = tlshd_role_name(req->role),
		.auth = tlshd_auth_name(req->auth),
		.peer = peer,
		.peername = req->has_peername ? req->peername : NULL,
		.status = hs->result.status,
		.cipher = hs->cipher,
		.reason = hs->reason,
		.duration_ms = ms,
	};

	tlshd_log_set_prefix(NULL);
	tlshd_log_handshake(&h);
}

/* The ACCEPT reply was unusable: answer EINVAL if we know the socket. */
static int worker_reject(struct tlshd_genl *g, const struct tlshd_request *req, int err)
{
	struct tlshd_result res = { .status = EINVAL };
	int r;

	tlshd_err("kernel sent an unusable handshake request: %s", strerror(-err));
	if (req->sockfd < 0) {
		tlshd_err("request has no socket, cannot answer it; the consumer will time out");
		return TLSHD_WORKER_ERROR;
	}
	r = tlshd_genl_done(g, req->sockfd, &res);
	if (r < 0)
		tlshd_log_errno(LOG_ERR, r, "kernel rejected DONE for fd %d", req->sockfd);
	close(req->sockfd);
	return TLSHD_WORKER_FAILED;
}

int tlshd_worker_run(const struct tlshd_context *ctx, int family)
{
	struct tlshd_handshake hs = { .ctx = ctx };
	struct tlshd_genl g = { 0 };
	struct tlshd_request req;
	struct timespec start;
	char peer[NI_MAXHOST + NI_MAXSERV + 4];
	int r, ret;

	r = tlshd_genl_connect(&g, family);
	if (r < 0) {
		tlshd_log_errno(LOG_ERR, r, "cannot open a netlink socket for ACCEPT");
		return TLSHD_WORKER_ERROR;
	}
	r = tlshd_genl_accept(&g, &req);
	clock_gettime(CLOCK_MONOTONIC, &start);
	if (r == -EAGAIN) {
		ret = TLSHD_WORKER_IDLE;
		goto out;
	}
	if (r == -EPERM) {
		tlshd_err("ACCEPT refused: the daemon lacks CAP_NET_ADMIN");
		ret = TLSHD_WORKER_ERROR;
		goto out;
	}
	if (r < 0) {
		ret = worker_reject(&g, &req, r);
		goto out;
	}

	worker_peer_name(req.sockfd, peer, sizeof(peer));
	tlshd_log_set_prefix("%s %s %s: ", tlshd_role_name(req.role),
			     tlshd_auth_name(req.auth), peer);
	hs.req = &req;
	hs.fd = req.sockfd;
	tlshd_handshake_set_deadline(&hs);
	r = tlshd_privs_drop();
	if (r < 0) {
		hs.result.status = EIO;
		snprintf(hs.reason, sizeof(hs.reason), "cannot drop privileges: %s",
			 strerror(-r));
	} else {
		tlshd_handshake_run(&hs);
	}

	r = tlshd_genl_done(&g, req.sockfd, &hs.result);
	if (r < 0) {
		tlshd_log_errno(LOG_ERR, r, "kernel rejected DONE (status %s)",
				tlshd_errno_name(hs.result.status));
		if (!hs.result.status) {
			hs.result.status = -r;
			snprintf(hs.reason, sizeof(hs.reason), "kernel rejected DONE");
		}
	}
	worker_log_result(&req, peer, &hs, worker_ms_since(&start));
	ret = hs.result.status ? TLSHD_WORKER_FAILED : TLSHD_WORKER_SUCCEEDED;
	close(req.sockfd);
out:
	tlshd_genl_close(&g);
	return ret;
}
