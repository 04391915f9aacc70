// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Netlink I/O. Messages are built and parsed in request.c; this file only
 * moves them. Replies are read with recv() on the raw socket so that
 * kernel errors arrive as plain negative errno values.
 */
#include "build-config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <netlink/genl/ctrl.h>
#include <netlink/genl/genl.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/socket.h>

#include "genl.h"
#include "handshake-abi.h"
#include "log.h"

#define GENL_RECV_BUFSIZE	(32 * 1024)
#define GENL_LISTEN_RCVBUF	(1024 * 1024)
#define GENL_REPLY_TIMEOUT_MS	5000

static int genl_socket(struct nl_sock **ret)
{
	struct nl_sock *sk;
	int r;

	sk = nl_socket_alloc();
	if (!sk)
		return -ENOMEM;
	r = nl_connect(sk, NETLINK_GENERIC);
	if (r < 0) {
		nl_socket_free(sk);
		return -EPROTONOSUPPORT;
	}
	*ret = sk;
	return 0;
}

int tlshd_genl_resolve(int *ret_family, int *ret_group)
{
	struct nl_sock *sk;
	int family, group, r;

	r = genl_socket(&sk);
	if (r < 0)
		return r;
	family = genl_ctrl_resolve(sk, TLSHD_HS_FAMILY_NAME);
	if (family < 0) {
		r = family == -NLE_OBJ_NOTFOUND ? -ENOENT : -EIO;
		goto out;
	}
	group = genl_ctrl_resolve_grp(sk, TLSHD_HS_FAMILY_NAME, TLSHD_HS_MCGRP_TLSHD);
	if (group < 0) {
		r = group == -NLE_OBJ_NOTFOUND ? -ENOENT : -EIO;
		goto out;
	}
	*ret_family = family;
	*ret_group = group;
	r = 0;
out:
	nl_socket_free(sk);
	return r;
}

int tlshd_genl_listen(struct tlshd_genl *g, int family, int group)
{
	int r;

	r = genl_socket(&g->sk);
	if (r < 0)
		return r;
	g->family = family;
	nl_socket_disable_seq_check(g->sk);
	/* A large buffer makes a burst of READY less likely to overflow;
	 * when it does, the caller drains the kernel's queue anyway. */
	nl_socket_set_buffer_size(g->sk, GENL_LISTEN_RCVBUF, 0);
	if (nl_socket_add_membership(g->sk, group) < 0 ||
	    nl_socket_set_nonblocking(g->sk) < 0) {
		tlshd_genl_close(g);
		return -EIO;
	}
	return 0;
}

int tlshd_genl_fd(const struct tlshd_genl *g)
{
	return nl_socket_get_fd(g->sk);
}

void tlshd_genl_close(struct tlshd_genl *g)
{
	if (g->sk)
		nl_socket_free(g->sk);
	g->sk = NULL;
}

int tlshd_genl_connect(struct tlshd_genl *g, int family)
{
	struct timeval tv = { .tv_sec = GENL_REPLY_TIMEOUT_MS / 1000,
			      .tv_usec = GENL_REPLY_TIMEOUT_MS % 1000 * 1000 };
	int r;

	g->family = family;
	r = genl_socket(&g->sk);
	if (r < 0)
		return r;
	/* libnl would ask for an ack on every message: ACCEPT is answered
	 * by its reply or an error, DONE asks for its ack itself. */
	nl_socket_disable_auto_ack(g->sk);
	/* The kernel answers ACCEPT and DONE at once; a worker never waits
	 * for it without bound. */
	if (setsockopt(nl_socket_get_fd(g->sk), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0) {
		r = -errno;
		tlshd_genl_close(g);
		return r;
	}
	return 0;
}

static ssize_t genl_recv(struct tlshd_genl *g, void *buf, size_t size, int flags)
{
	ssize_t n;

	do {
		n = recv(nl_socket_get_fd(g->sk), buf, size, flags | MSG_TRUNC);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if ((size_t)n > size)
		return -EMSGSIZE;
	return n;
}

/* Called for each message received; returns 0 to go on reading, or a
 * value that ends genl_receive() and is returned by it. */
typedef int (*genl_handler_t)(const struct nlmsghdr *nlh, size_t len, void *data);

/*
 * The one receive loop: hands every message to @fn until it says stop.
 * With MSG_DONTWAIT in @flags, an empty socket ends the loop (0, or
 * -ENOBUFS if the kernel dropped messages meanwhile; the socket stays
 * usable, so reading goes on after an overrun).
 */
static int genl_receive(struct tlshd_genl *g, int flags, genl_handler_t fn, void *data)
{
	char *buf = malloc(GENL_RECV_BUFSIZE);
	bool overrun = false;
	int r = 0;

	if (!buf)
		return -ENOMEM;
	while (r == 0) {
		struct nlmsghdr *nlh;
		ssize_t n = genl_recv(g, buf, GENL_RECV_BUFSIZE, flags);
		int len;

		if (n == -EAGAIN && (flags & MSG_DONTWAIT)) {
			r = overrun ? -ENOBUFS : 0;
			break;
		}
		if (n == -EAGAIN) {
			/* A blocking read past SO_RCVTIMEO. */
			r = -ETIMEDOUT;
			break;
		}
		if (n == -ENOBUFS) {
			overrun = true;
			continue;
		}
		if (n < 0) {
			r = n;
			break;
		}
		len = n;
		for (nlh = (struct nlmsghdr *)buf; r == 0 && nlmsg_ok(nlh, len);
		     nlh = nlmsg_next(nlh, &len))
			r = fn(nlh, len, data);
	}
	free(buf);
	return r;
}

struct genl_ready_count {
	int family;
	unsigned int *count;
};

static int genl_on_ready(const struct nlmsghdr *nlh, size_t len, void *data)
{
	struct genl_ready_count *c = data;

	if (tlshd_request_is_ready(nlh, len, c->family))
		(*c->count)++;
	return 0;
}

int tlshd_genl_read_ready(struct tlshd_genl *g, unsigned int *count)
{
	struct genl_ready_count c = { .family = g->family, .count = count };

	return genl_receive(g, MSG_DONTWAIT, genl_on_ready, &c);
}

static int genl_send(struct tlshd_genl *g, struct nl_msg *msg, uint32_t *ret_seq)
{
	int r = nl_send_auto(g->sk, msg);

	if (r < 0)
		return -EIO;
	*ret_seq = nlmsg_hdr(msg)->nlmsg_seq;
	return 0;
}

/* The answer to one request: an ack (req NULL) or an ACCEPT reply. */
struct genl_answer {
	int family;
	uint32_t seq;
	struct tlshd_request *req;
	int result;
};

/* Ends the wait (1) once the answer to our sequence number arrived. */
static int genl_on_answer(const struct nlmsghdr *nlh, size_t len, void *data)
{
	struct genl_answer *a = data;

	if (nlh->nlmsg_seq != a->seq)
		return 0;
	if (a->req) {
		a->result = tlshd_request_parse_answer(nlh, len, a->family, a->req);
		return a->result <= 0;
	}
	if (nlh->nlmsg_type != NLMSG_ERROR)
		return 0;
	a->result = tlshd_request_error_of(nlh, len);
	return 1;
}

/* Blocks until the answer to @seq arrives; returns the kernel's verdict
 * or the parser's. */
static int genl_wait(struct tlshd_genl *g, uint32_t seq, struct tlshd_request *req)
{
	struct genl_answer a = { .family = g->family, .seq = seq, .req = req };
	int r;

	r = genl_receive(g, 0, genl_on_answer, &a);
	return r < 0 ? r : a.result;
}

int tlshd_genl_accept(struct tlshd_genl *g, struct tlshd_request *req)
{
	struct nl_msg *msg = nlmsg_alloc();
	uint32_t seq = 0;
	int r;

	req->sockfd = -1;
	if (!msg)
		return -ENOMEM;
	r = tlshd_request_build_accept(msg, g->family);
	if (!r)
		r = genl_send(g, msg, &seq);
	nlmsg_free(msg);
	if (r < 0)
		return r;
	r = genl_wait(g, seq, req);
	return r;
}

int tlshd_genl_done(struct tlshd_genl *g, int sockfd, const struct tlshd_result *res)
{
	struct nl_msg *msg = nlmsg_alloc();
	uint32_t seq = 0;
	int r;

	if (!msg)
		return -ENOMEM;
	r = tlshd_request_build_done(msg, g->family, sockfd, res);
	if (!r)
		r = genl_send(g, msg, &seq);
	nlmsg_free(msg);
	if (r < 0)
		return r;
	return genl_wait(g, seq, NULL);
}
