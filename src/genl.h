/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Netlink I/O with the kernel's handshake family: resolving it, listening
 * for READY notifications and ACCEPT (parent), and DONE (worker; the
 * parent's for a worker that died first).
 */
#pragma once

#include "request.h"

struct nl_sock;

struct tlshd_genl {
	struct nl_sock *sk;
	int family;
};

/*
 * Resolves the family and its "tlshd" multicast group. Returns -ENOENT
 * when the kernel has no handshake family (CONFIG_NET_HANDSHAKE).
 */
int tlshd_genl_resolve(int *ret_family, int *ret_group);

/* Parent: a non-blocking socket joined to the tlshd group. */
int tlshd_genl_listen(struct tlshd_genl *g, int family, int group);
int tlshd_genl_fd(const struct tlshd_genl *g);

/*
 * Parent: reads every queued notification and adds the number of READY
 * messages for our handler class to *count. Returns 0 when the socket is
 * drained, -ENOBUFS if the kernel dropped notifications (the caller must
 * then drain the kernel's queue with ACCEPT until EAGAIN), or another
 * negative errno on a socket error.
 */
int tlshd_genl_read_ready(struct tlshd_genl *g, unsigned int *count);

/* A blocking socket for ACCEPT and DONE; a reply that does not come
 * within 5 s makes them fail with -ETIMEDOUT. */
int tlshd_genl_connect(struct tlshd_genl *g, int family);

/*
 * Parent: asks the kernel for the oldest pending request. Returns 0 and
 * fills *req, -EAGAIN when no request is pending, a parse error from tlshd_request_parse() (req->sockfd is then
 * still set when known), or another negative errno.
 */
int tlshd_genl_accept(struct tlshd_genl *g, struct tlshd_request *req);

/* Sends DONE and waits for the kernel's ack; returns its verdict. */
int tlshd_genl_done(struct tlshd_genl *g, int sockfd, const struct tlshd_result *res);

void tlshd_genl_close(struct tlshd_genl *g);
