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
	g->family = family;
	return genl_socket(&g->sk);
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

static bool genl_is_ready(const struct tlshd_genl *g, const struct nlmsghdr *nlh)
{
	const struct genlmsghdr *ghdr;
	const struct nlattr *a;
	int rem;

	if (nlh->nlmsg_type != g->family ||
	    nlh->nlmsg_len < NLMSG_HDRLEN + GENL_HDRLEN)
		return false;
	ghdr = nlmsg_data(nlh);
	if (ghdr->cmd != TLSHD_HS_CMD_READY)
		return false;
	nla_for_each_attr(a, genlmsg_attrdata(ghdr, 0), genlmsg_attrlen(ghdr, 0), rem) {
		uint32_t class;

		if (nla_type(a) != TLSHD_HS_A_ACCEPT_HANDLER_CLASS ||
		    nla_len(a) != sizeof(class))
			continue;
		memcpy(&class, nla_data(a), sizeof(class));
		return class == TLSHD_HS_HANDLER_CLASS_TLSHD;
	}
	return false;
}

int tlshd_genl_read_ready(struct tlshd_genl *g, unsigned int *count)
{
	char *buf = malloc(GENL_RECV_BUFSIZE);
	ssize_t n;
	int r = 0;

	if (!buf)
		return -ENOMEM;
	for (;;) {
		struct nlmsghdr *nlh;
		int len;

		n = genl_recv(g, buf, GENL_RECV_BUFSIZE, MSG_DONTWAIT);
		if (n == -EAGAIN)
			break;
		if (n == -ENOBUFS) {
			/* Keep reading: the socket is still usable. */
			r = -ENOBUFS;
			continue;
		}
		if (n < 0) {
			r = n;
			break;
		}
		len = n;
		for (nlh = (struct nlmsghdr *)buf; nlmsg_ok(nlh, len); nlh = nlmsg_next(nlh, &len))
			if (genl_is_ready(g, nlh))
				(*count)++;
	}
	free(buf);
	return r;
}

static int genl_send(struct tlshd_genl *g, struct nl_msg *msg, uint32_t *ret_seq)
{
	int r = nl_send_auto(g->sk, msg);

	if (r < 0)
		return -EIO;
	*ret_seq = nlmsg_hdr(msg)->nlmsg_seq;
	return 0;
}

/* NLMSG_ERROR carries the kernel's verdict as a negative errno (0 = ack). */
static int genl_error_of(const struct nlmsghdr *nlh)
{
	const struct nlmsgerr *e = nlmsg_data(nlh);

	if (nlh->nlmsg_len < NLMSG_HDRLEN + sizeof(*e))
		return -EBADMSG;
	return e->error;
}

/*
 * Reads until the answer to @seq arrives. With @req set, the answer is
 * an ACCEPT reply parsed into it; otherwise an ack is expected.
 */
static int genl_wait(struct tlshd_genl *g, uint32_t seq, struct tlshd_request *req)
{
	char *buf = malloc(GENL_RECV_BUFSIZE);
	int r = -EBADMSG;

	if (!buf)
		return -ENOMEM;
	for (;;) {
		struct nlmsghdr *nlh;
		ssize_t n;
		int len;

		n = genl_recv(g, buf, GENL_RECV_BUFSIZE, 0);
		if (n < 0) {
			r = n;
			break;
		}
		len = n;
		for (nlh = (struct nlmsghdr *)buf; nlmsg_ok(nlh, len); nlh = nlmsg_next(nlh, &len)) {
			if (nlh->nlmsg_seq != seq)
				continue;
			if (nlh->nlmsg_type == NLMSG_ERROR) {
				r = genl_error_of(nlh);
				goto out;
			}
			if (req && nlh->nlmsg_type == g->family) {
				r = tlshd_request_parse(nlh, len, req);
				goto out;
			}
		}
	}
out:
	free(buf);
	return r;
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
	/* A successful reply leaves no ack behind (none was asked for). */
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
