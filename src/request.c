// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * READY and ACCEPT reply parsers, and the DONE builder.
 *
 * The parser trusts nothing: every attribute's length is checked against
 * its type before the value is read, strings must be NUL-terminated
 * within their attribute, and nothing is written to the caller's request
 * until the whole message has been accepted.
 */
#include "build-config.h"

#include <errno.h>
#include <string.h>

#include <netlink/attr.h>
#include <netlink/genl/genl.h>
#include <netlink/msg.h>

#include "handshake-abi.h"
#include "request.h"

#define ATTR_SEEN(type)		(1u << (type))

const char *tlshd_role_name(enum tlshd_role role)
{
	switch (role) {
	case TLSHD_ROLE_CLIENT:
		return "client";
	case TLSHD_ROLE_SERVER:
		return "server";
	}
	return "?";
}

const char *tlshd_auth_name(enum tlshd_auth auth)
{
	switch (auth) {
	case TLSHD_AUTH_UNAUTH:
		return "unauth";
	case TLSHD_AUTH_PSK:
		return "psk";
	case TLSHD_AUTH_X509:
		return "x509";
	}
	return "?";
}

static int attr_u32(const struct nlattr *a, uint32_t *val)
{
	if (nla_len(a) != sizeof(uint32_t))
		return -EINVAL;
	memcpy(val, nla_data(a), sizeof(*val));
	return 0;
}

static int attr_s32(const struct nlattr *a, int32_t *val)
{
	if (nla_len(a) != sizeof(int32_t))
		return -EINVAL;
	memcpy(val, nla_data(a), sizeof(*val));
	return 0;
}

/* A non-empty string, NUL-terminated inside the attribute, with no
 * embedded NUL before the end and no control characters. */
static int attr_string(const struct nlattr *a, char *buf, size_t size)
{
	const char *s = nla_data(a);
	int len = nla_len(a);

	if (len < 2 || s[len - 1] != '\0')
		return -EINVAL;
	if (strlen(s) != (size_t)len - 1 || (size_t)len > size)
		return -EINVAL;
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return -EINVAL;
	memcpy(buf, s, len);
	return 0;
}

static int parse_role(uint32_t v, enum tlshd_role *role)
{
	switch (v) {
	case TLSHD_HS_MSG_CLIENTHELLO:
		*role = TLSHD_ROLE_CLIENT;
		return 0;
	case TLSHD_HS_MSG_SERVERHELLO:
		*role = TLSHD_ROLE_SERVER;
		return 0;
	}
	return -EINVAL;
}

static int parse_auth(uint32_t v, enum tlshd_auth *auth)
{
	switch (v) {
	case TLSHD_HS_AUTH_UNAUTH:
		*auth = TLSHD_AUTH_UNAUTH;
		return 0;
	case TLSHD_HS_AUTH_PSK:
		*auth = TLSHD_AUTH_PSK;
		return 0;
	case TLSHD_HS_AUTH_X509:
		*auth = TLSHD_AUTH_X509;
		return 0;
	}
	return -EINVAL;
}

static int parse_certificate(const struct nlattr *nest, struct tlshd_request *req)
{
	unsigned int seen = 0;
	const struct nlattr *a;
	int rem, r;

	if (nla_len(nest) < 0)
		return -EINVAL;
	nla_for_each_nested(a, nest, rem) {
		int type = nla_type(a);
		int32_t v;

		if (type != TLSHD_HS_A_X509_CERT && type != TLSHD_HS_A_X509_PRIVKEY)
			continue;
		if (seen & ATTR_SEEN(type))
			return -EALREADY;
		seen |= ATTR_SEEN(type);
		r = attr_s32(a, &v);
		if (r < 0)
			return r;
		if (type == TLSHD_HS_A_X509_CERT)
			req->cert = v;
		else
			req->privkey = v;
	}
	/* rem < 0 only means the last attribute lacks its alignment pad. */
	return rem > 0 ? -EINVAL : 0;
}

static int parse_one(const struct nlattr *a, struct tlshd_request *req)
{
	uint32_t u;
	int32_t s;
	int r;

	switch (nla_type(a)) {
	case TLSHD_HS_A_ACCEPT_SOCKFD:
		r = attr_s32(a, &s);
		if (!r && s < 0)
			r = -EINVAL;
		if (!r)
			req->sockfd = s;
		return r;
	case TLSHD_HS_A_ACCEPT_MESSAGE_TYPE:
		r = attr_u32(a, &u);
		return r ? r : parse_role(u, &req->role);
	case TLSHD_HS_A_ACCEPT_AUTH_MODE:
		r = attr_u32(a, &u);
		return r ? r : parse_auth(u, &req->auth);
	case TLSHD_HS_A_ACCEPT_TIMEOUT:
		r = attr_u32(a, &u);
		if (!r)
			req->timeout_ms = u;
		return r;
	case TLSHD_HS_A_ACCEPT_KEYRING:
		r = attr_u32(a, &u);
		if (!r)
			req->keyring = (key_serial_t)u;
		return r;
	case TLSHD_HS_A_ACCEPT_PEERNAME:
		r = attr_string(a, req->peername, sizeof(req->peername));
		if (!r)
			req->has_peername = true;
		return r;
	case TLSHD_HS_A_ACCEPT_CERTIFICATE:
		return parse_certificate(a, req);
	case TLSHD_HS_A_ACCEPT_PEER_IDENTITY:
		if (req->num_peerids == TLSHD_MAX_PEERIDS)
			return -E2BIG;
		r = attr_u32(a, &u);
		if (!r)
			req->peerids[req->num_peerids++] = (key_serial_t)u;
		return r;
	}
	return 0;
}

static bool attr_is_multi(int type)
{
	return type == TLSHD_HS_A_ACCEPT_PEER_IDENTITY;
}

static bool attr_is_known(int type)
{
	return type >= TLSHD_HS_A_ACCEPT_SOCKFD && type <= TLSHD_HS_A_ACCEPT_KEYRING;
}

static const struct nlattr *find_sockfd(const struct nlattr *head, int len)
{
	const struct nlattr *a;
	int rem;

	nla_for_each_attr(a, head, len, rem)
		if (nla_type(a) == TLSHD_HS_A_ACCEPT_SOCKFD)
			return a;
	return NULL;
}

/* The generic netlink header of a well-formed message, or NULL. */
static const struct genlmsghdr *genl_header(const struct nlmsghdr *nlh, size_t len)
{
	if (len < NLMSG_HDRLEN + GENL_HDRLEN || nlh->nlmsg_len > len ||
	    nlh->nlmsg_len < NLMSG_HDRLEN + GENL_HDRLEN)
		return NULL;
	return nlmsg_data(nlh);
}

static int check_header(const struct nlmsghdr *nlh, size_t len)
{
	const struct genlmsghdr *ghdr = genl_header(nlh, len);

	if (!ghdr || ghdr->cmd != TLSHD_HS_CMD_ACCEPT)
		return -EBADMSG;
	return 0;
}

int tlshd_request_parse(const struct nlmsghdr *nlh, size_t len, struct tlshd_request *ret)
{
	struct tlshd_request req = { .sockfd = -1 };
	const struct nlattr *head, *a;
	unsigned int seen = 0;
	int alen, rem, r;

	ret->sockfd = -1;
	r = check_header(nlh, len);
	if (r < 0)
		return r;
	head = genlmsg_attrdata(nlmsg_data(nlh), 0);
	alen = genlmsg_attrlen(nlmsg_data(nlh), 0);

	nla_for_each_attr(a, head, alen, rem) {
		int type = nla_type(a);

		if (!attr_is_known(type))
			continue;
		if (!attr_is_multi(type) && (seen & ATTR_SEEN(type))) {
			r = -EALREADY;
			goto fail;
		}
		seen |= ATTR_SEEN(type);
		r = parse_one(a, &req);
		if (r < 0)
			goto fail;
	}
	/* A trailing fragment shorter than an attribute header, or an
	 * attribute claiming more bytes than the message holds. */
	if (rem > 0) {
		r = -EINVAL;
		goto fail;
	}
	if (!(seen & ATTR_SEEN(TLSHD_HS_A_ACCEPT_SOCKFD)) ||
	    !(seen & ATTR_SEEN(TLSHD_HS_A_ACCEPT_MESSAGE_TYPE)) ||
	    !(seen & ATTR_SEEN(TLSHD_HS_A_ACCEPT_AUTH_MODE))) {
		r = -ENOENT;
		goto fail;
	}
	*ret = req;
	return 0;

fail:
	/* Give the caller the socket, if there is a sane one, so that it
	 * can answer the request with DONE instead of leaving it hanging. */
	a = find_sockfd(head, alen);
	if (a) {
		int32_t fd;

		if (!attr_s32(a, &fd) && fd >= 0)
			ret->sockfd = fd;
	}
	return r;
}

/* The verdict an NLMSG_ERROR carries (0 = ack), or -EBADMSG if short. */
int tlshd_request_error_of(const struct nlmsghdr *nlh, size_t len)
{
	const struct nlmsgerr *e = nlmsg_data(nlh);

	if (len < NLMSG_HDRLEN + sizeof(*e) || nlh->nlmsg_len < NLMSG_HDRLEN + sizeof(*e) ||
	    nlh->nlmsg_len > len)
		return -EBADMSG;
	if (e->error > 0 || e->error < -4095)
		return -EBADMSG;
	return e->error;
}

int tlshd_request_parse_answer(const struct nlmsghdr *nlh, size_t len, int family,
			       struct tlshd_request *ret)
{
	int r;

	ret->sockfd = -1;
	if (len < NLMSG_HDRLEN || nlh->nlmsg_len < NLMSG_HDRLEN || nlh->nlmsg_len > len)
		return -EBADMSG;
	if (nlh->nlmsg_type == NLMSG_ERROR) {
		r = tlshd_request_error_of(nlh, len);
		return r == 0 ? -EBADMSG : r;
	}
	if (nlh->nlmsg_type == family)
		return tlshd_request_parse(nlh, len, ret);
	return 1;
}

bool tlshd_request_is_ready(const struct nlmsghdr *nlh, size_t len, int family)
{
	const struct genlmsghdr *ghdr = genl_header(nlh, len);
	const struct nlattr *a;
	int rem;

	if (!ghdr || nlh->nlmsg_type != family || ghdr->cmd != TLSHD_HS_CMD_READY)
		return false;
	nla_for_each_attr(a, genlmsg_attrdata(ghdr, 0), genlmsg_attrlen(ghdr, 0), rem) {
		uint32_t class;

		if (nla_type(a) != TLSHD_HS_A_ACCEPT_HANDLER_CLASS)
			continue;
		return attr_u32(a, &class) == 0 && class == TLSHD_HS_HANDLER_CLASS_TLSHD;
	}
	return false;
}

int tlshd_request_build_accept(struct nl_msg *msg, int family)
{
	if (!genlmsg_put(msg, NL_AUTO_PORT, NL_AUTO_SEQ, family, 0, 0,
			 TLSHD_HS_CMD_ACCEPT, 0))
		return -ENOMEM;
	if (nla_put_u32(msg, TLSHD_HS_A_ACCEPT_HANDLER_CLASS, TLSHD_HS_HANDLER_CLASS_TLSHD) < 0)
		return -ENOMEM;
	return 0;
}

int tlshd_request_build_done(struct nl_msg *msg, int family, int sockfd,
			     const struct tlshd_result *res)
{
	if (res->status < 0 || res->status > 4095 || sockfd < 0 ||
	    res->num_remote_auth > TLSHD_MAX_PEERIDS)
		return -EINVAL;
	/* Always ask for the ack: a DONE the kernel rejects is otherwise
	 * lost without a trace and the consumer waits for its timeout. */
	if (!genlmsg_put(msg, NL_AUTO_PORT, NL_AUTO_SEQ, family, 0, NLM_F_ACK,
			 TLSHD_HS_CMD_DONE, 0))
		return -ENOMEM;
	if (nla_put_u32(msg, TLSHD_HS_A_DONE_STATUS, res->status) < 0 ||
	    nla_put_s32(msg, TLSHD_HS_A_DONE_SOCKFD, sockfd) < 0)
		return -ENOMEM;
	if (res->status)
		return 0;
	for (unsigned int i = 0; i < res->num_remote_auth; i++)
		if (nla_put_u32(msg, TLSHD_HS_A_DONE_REMOTE_AUTH, res->remote_auth[i]) < 0)
			return -ENOMEM;
	return 0;
}
