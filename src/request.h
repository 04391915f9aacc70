/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * One kernel handshake request: the ACCEPT reply parsed into a struct,
 * and the DONE message built from a result. Pure code, no I/O, so that
 * both directions are unit-tested on messages built in memory.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <keyutils.h>
#include <linux/netlink.h>

struct nl_msg;

/* The kernel offers at most five PSK identities (ta_my_peerids[5]) and
 * keeps at most five remote peer ids. */
#define TLSHD_MAX_PEERIDS	5
#define TLSHD_PEERNAME_MAX	1024

enum tlshd_role {
	TLSHD_ROLE_CLIENT,
	TLSHD_ROLE_SERVER,
};

enum tlshd_auth {
	TLSHD_AUTH_UNAUTH,
	TLSHD_AUTH_PSK,
	TLSHD_AUTH_X509,
};

struct tlshd_request {
	int sockfd;			/* installed in our fd table by ACCEPT */
	enum tlshd_role role;
	enum tlshd_auth auth;
	unsigned int timeout_ms;	/* 0: the kernel sent none */
	key_serial_t keyring;		/* 0: none named */
	key_serial_t cert;		/* x509 nest, 0 when absent */
	key_serial_t privkey;
	unsigned int num_peerids;
	key_serial_t peerids[TLSHD_MAX_PEERIDS];
	bool has_peername;
	char peername[TLSHD_PEERNAME_MAX];
};

/*
 * Parses an ACCEPT reply of @len bytes at @nlh into *ret.
 *
 * Returns 0 on success. On failure returns
 *   -EBADMSG  not a well-formed generic netlink ACCEPT message,
 *   -EINVAL   an attribute with a bad length, type or value,
 *   -EALREADY a single-valued attribute repeated,
 *   -E2BIG    more PEER_IDENTITY attributes than the kernel can send,
 *   -ENOENT   SOCKFD, MESSAGE_TYPE or AUTH_MODE missing,
 * and *ret holds only a valid sockfd (or -1 if none was found), so that
 * the caller can still complete the request with DONE. Attributes this
 * version does not know are skipped.
 */
int tlshd_request_parse(const struct nlmsghdr *nlh, size_t len, struct tlshd_request *ret);

/*
 * Classifies the kernel's answer to our ACCEPT (@nlh, @len bytes, already
 * matched by sequence number): an NLMSG_ERROR carries the kernel's
 * verdict (-EAGAIN: no request pending; an ack, error 0, carries no
 * request and is -EBADMSG); a message of @family is the reply, parsed
 * with tlshd_request_parse(). Returns 0 for a parsed request, a negative
 * errno, or 1 for anything else (not the answer: keep reading).
 */
/* The verdict of an NLMSG_ERROR message: 0 for an ack, a negative errno,
 * or -EBADMSG when it is malformed. */
int tlshd_request_error_of(const struct nlmsghdr *nlh, size_t len);

int tlshd_request_parse_answer(const struct nlmsghdr *nlh, size_t len, int family,
			       struct tlshd_request *ret);

/*
 * Whether the @len bytes at @nlh are a READY notification of @family for
 * our handler class (tlshd). Anything else on the multicast group, and
 * anything malformed, is not.
 */
bool tlshd_request_is_ready(const struct nlmsghdr *nlh, size_t len, int family);

const char *tlshd_role_name(enum tlshd_role role);
const char *tlshd_auth_name(enum tlshd_auth auth);

/* REMOTE_AUTH for a verified client certificate. nfsd only tests it
 * against TLS_NO_PEERID (0) to mark the session peer-authenticated;
 * ktls-utils' tlshd sends the same value. */
#define TLSHD_PEERID_CERT_VERIFIED	((key_serial_t)0xffffffff)

/* A request's outcome, which DONE reports to the kernel. */
struct tlshd_result {
	int status;			/* 0 or a positive errno */
	unsigned int num_remote_auth;
	key_serial_t remote_auth[TLSHD_MAX_PEERIDS];
};

/*
 * Fills @msg (fresh from nlmsg_alloc) with a DONE request for @family.
 * REMOTE_AUTH is only sent on success. Returns 0 or -ENOMEM/-EINVAL.
 */
int tlshd_request_build_done(struct nl_msg *msg, int family, int sockfd,
			     const struct tlshd_result *res);

/* Fills @msg with an ACCEPT request for handler class tlshd. */
int tlshd_request_build_accept(struct nl_msg *msg, int family);
