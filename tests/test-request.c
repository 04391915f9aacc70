// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests of request.c: the ACCEPT reply parser on well-formed and
 * malformed messages built in memory, and the DONE builder byte by byte.
 */
#include "build-config.h"

#include <errno.h>
#include <string.h>

#include <netlink/attr.h>
#include <netlink/genl/genl.h>
#include <netlink/msg.h>

#include "handshake-abi.h"
#include "request.h"
#include "tap.h"

#define FAMILY 0x1c

static struct nl_msg *accept_msg(void)
{
	struct nl_msg *msg = nlmsg_alloc();

	genlmsg_put(msg, 0, 1, FAMILY, 0, 0, TLSHD_HS_CMD_ACCEPT, 1);
	return msg;
}

static int parse(struct nl_msg *msg, struct tlshd_request *req)
{
	struct nlmsghdr *nlh = nlmsg_hdr(msg);

	return tlshd_request_parse(nlh, nlh->nlmsg_len, req);
}

/* Appends a raw attribute with arbitrary payload bytes. */
static void put_raw(struct nl_msg *msg, int type, const void *data, int len)
{
	nla_put(msg, type, len, data);
}

static void test_client_psk(void)
{
	struct nl_msg *msg = accept_msg();
	struct tlshd_request req;

	nla_put_s32(msg, TLSHD_HS_A_ACCEPT_SOCKFD, 7);
	nla_put_u32(msg, TLSHD_HS_A_ACCEPT_MESSAGE_TYPE, TLSHD_HS_MSG_CLIENTHELLO);
	nla_put_u32(msg, TLSHD_HS_A_ACCEPT_TIMEOUT, 10000);
	nla_put_u32(msg, TLSHD_HS_A_ACCEPT_AUTH_MODE, TLSHD_HS_AUTH_PSK);
	nla_put_u32(msg, TLSHD_HS_A_ACCEPT_PEER_IDENTITY, 1111);
	nla_put_u32(msg, TLSHD_HS_A_ACCEPT_PEER_IDENTITY, 2222);
	nla_put_u32(msg, TLSHD_HS_A_ACCEPT_PEER_IDENTITY, 3333);
	nla_put_u32(msg, TLSHD_HS_A_ACCEPT_KEYRING, 0x2a);
	nla_put_string(msg, TLSHD_HS_A_ACCEPT_PEERNAME, "nfs.example.net");

	is_int(parse(msg, &req), 0, "client PSK request parses");
	is_int(req.sockfd, 7, "sockfd");
	is_int(req.role, TLSHD_ROLE_CLIENT, "CLIENTHELLO means client role");
	is_int(req.auth, TLSHD_AUTH_PSK, "auth mode PSK");
	is_int(req.timeout_ms, 10000, "timeout in ms");
	is_int(req.keyring, 0x2a, "keyring serial");
	is_int(req.num_peerids, 3, "every PEER_IDENTITY occurrence is kept");
	ok(req.peerids[0] == 1111 && req.peerids[1] == 2222 && req.peerids[2] == 3333,
	   "peer identities in kernel order");
	ok(req.has_peername && !strcmp(req.peername, "nfs.example.net"), "peername");
	is_int(req.cert, 0, "no certificate without the nest");
	nlmsg_free(msg);
}

static void test_server_x509_any_order(void)
{
	struct nl_msg *msg = accept_msg();
	struct tlshd_request req;
	struct nlattr *nest;

	nla_put_u32(msg, 42, 99);			/* unknown: ignored */
	nla_put_u32(msg, TLSHD_HS_A_ACCEPT_AUTH_MODE, TLSHD_HS_AUTH_X509);
	nest = nla_nest_start(msg, TLSHD_HS_A_ACCEPT_CERTIFICATE);
	nla_put_s32(msg, TLSHD_HS_A_X509_PRIVKEY, 12);
	nla_put_u32(msg, 9, 1);				/* unknown inside nest */
	nla_put_s32(msg, TLSHD_HS_A_X509_CERT, 11);
	nla_nest_end(msg, nest);
	nla_put_u32(msg, TLSHD_HS_A_ACCEPT_MESSAGE_TYPE, TLSHD_HS_MSG_SERVERHELLO);
	nla_put_u32(msg, TLSHD_HS_A_ACCEPT_HANDLER_CLASS, 1);	/* READY-only attr */
	nla_put_s32(msg, TLSHD_HS_A_ACCEPT_SOCKFD, 0);

	is_int(parse(msg, &req), 0, "server x509 request in odd order parses");
	is_int(req.sockfd, 0, "fd 0 is a valid fd");
	is_int(req.role, TLSHD_ROLE_SERVER, "SERVERHELLO means server role");
	is_int(req.auth, TLSHD_AUTH_X509, "auth mode x509");
	ok(req.cert == 11 && req.privkey == 12, "certificate nest serials");
	is_int(req.timeout_ms, 0, "no timeout attribute");
	ok(!req.has_peername, "no peername attribute");
	is_int(req.num_peerids, 0, "no identities");
	nlmsg_free(msg);
}

/* A minimal valid request with one attribute replaced or left out. */
enum { OMIT_NONE, OMIT_SOCKFD, OMIT_TYPE, OMIT_AUTH };

static struct nl_msg *base_msg(int omit, uint32_t type, uint32_t auth)
{
	struct nl_msg *msg = accept_msg();

	if (omit != OMIT_SOCKFD)
		nla_put_s32(msg, TLSHD_HS_A_ACCEPT_SOCKFD, 5);
	if (omit != OMIT_TYPE)
		nla_put_u32(msg, TLSHD_HS_A_ACCEPT_MESSAGE_TYPE, type);
	if (omit != OMIT_AUTH)
		nla_put_u32(msg, TLSHD_HS_A_ACCEPT_AUTH_MODE, auth);
	return msg;
}

static void expect(struct nl_msg *msg, int err, int fd, const char *what)
{
	struct tlshd_request req;
	int r = parse(msg, &req);

	is_int(r, err, "%s: error", what);
	is_int(req.sockfd, fd, "%s: sockfd left for DONE", what);
	nlmsg_free(msg);
}

static void test_missing_and_unknown(void)
{
	expect(base_msg(OMIT_SOCKFD, 1, 2), -ENOENT, -1, "missing sockfd");
	expect(base_msg(OMIT_TYPE, 1, 2), -ENOENT, 5, "missing message type");
	expect(base_msg(OMIT_AUTH, 1, 2), -ENOENT, 5, "missing auth mode");
	expect(base_msg(OMIT_NONE, 3, 2), -EINVAL, 5, "unknown message type 3");
	expect(base_msg(OMIT_NONE, 0, 2), -EINVAL, 5, "message type 0 (unspec)");
	expect(base_msg(OMIT_NONE, 1, 0), -EINVAL, 5, "auth mode 0 (unspec)");
	expect(base_msg(OMIT_NONE, 1, 4), -EINVAL, 5, "unknown auth mode 4");
}

static void test_wrong_types(void)
{
	struct nl_msg *msg;
	uint64_t big = 10000;
	uint16_t small = 5;
	int32_t neg = -3;

	msg = base_msg(OMIT_SOCKFD, 1, 2);
	put_raw(msg, TLSHD_HS_A_ACCEPT_SOCKFD, &small, sizeof(small));
	expect(msg, -EINVAL, -1, "2-byte sockfd");

	msg = base_msg(OMIT_SOCKFD, 1, 2);
	put_raw(msg, TLSHD_HS_A_ACCEPT_SOCKFD, &neg, sizeof(neg));
	expect(msg, -EINVAL, -1, "negative sockfd");

	msg = base_msg(OMIT_NONE, 1, 2);
	put_raw(msg, TLSHD_HS_A_ACCEPT_TIMEOUT, &big, sizeof(big));
	expect(msg, -EINVAL, 5, "8-byte timeout");

	msg = base_msg(OMIT_NONE, 1, 2);
	put_raw(msg, TLSHD_HS_A_ACCEPT_PEER_IDENTITY, &small, sizeof(small));
	expect(msg, -EINVAL, 5, "2-byte peer identity");

	msg = base_msg(OMIT_NONE, 1, 2);
	put_raw(msg, TLSHD_HS_A_ACCEPT_PEERNAME, "abc", 3);
	expect(msg, -EINVAL, 5, "peername without NUL");

	msg = base_msg(OMIT_NONE, 1, 2);
	put_raw(msg, TLSHD_HS_A_ACCEPT_PEERNAME, "", 1);
	expect(msg, -EINVAL, 5, "empty peername");

	msg = base_msg(OMIT_NONE, 1, 2);
	put_raw(msg, TLSHD_HS_A_ACCEPT_PEERNAME, "a\0b", 4);
	expect(msg, -EINVAL, 5, "peername with embedded NUL");

	msg = base_msg(OMIT_NONE, 1, 2);
	put_raw(msg, TLSHD_HS_A_ACCEPT_PEERNAME, "evil\nname", 10);
	expect(msg, -EINVAL, 5, "peername with a newline");

	msg = base_msg(OMIT_NONE, 1, 3);
	put_raw(msg, TLSHD_HS_A_ACCEPT_CERTIFICATE, &small, sizeof(small));
	expect(msg, -EINVAL, 5, "certificate nest holding garbage");
}

static void test_repeats(void)
{
	struct tlshd_request req;
	struct nl_msg *msg;
	struct nlattr *nest;

	msg = base_msg(OMIT_NONE, 1, 2);
	nla_put_u32(msg, TLSHD_HS_A_ACCEPT_MESSAGE_TYPE, 2);
	expect(msg, -EALREADY, 5, "repeated message type");

	msg = base_msg(OMIT_NONE, 1, 3);
	nest = nla_nest_start(msg, TLSHD_HS_A_ACCEPT_CERTIFICATE);
	nla_put_s32(msg, TLSHD_HS_A_X509_CERT, 1);
	nla_put_s32(msg, TLSHD_HS_A_X509_CERT, 2);
	nla_nest_end(msg, nest);
	expect(msg, -EALREADY, 5, "repeated certificate serial in the nest");

	msg = base_msg(OMIT_NONE, 1, 2);
	for (int i = 0; i < TLSHD_MAX_PEERIDS + 1; i++)
		nla_put_u32(msg, TLSHD_HS_A_ACCEPT_PEER_IDENTITY, 100 + i);
	expect(msg, -E2BIG, 5, "six peer identities");

	msg = base_msg(OMIT_NONE, 2, 2);
	nla_put_u32(msg, TLSHD_HS_A_ACCEPT_PEER_IDENTITY, 0);
	for (int i = 1; i < TLSHD_MAX_PEERIDS; i++)
		nla_put_u32(msg, TLSHD_HS_A_ACCEPT_PEER_IDENTITY, 500);
	is_int(parse(msg, &req), 0, "five identities, zeros and duplicates included");
	ok(req.num_peerids == 5 && req.peerids[0] == 0 && req.peerids[4] == 500,
	   "repeated identities are all kept, in order");
	nlmsg_free(msg);
}

static void test_truncation(void)
{
	struct nl_msg *msg = base_msg(OMIT_NONE, 1, 2);
	struct nlmsghdr *nlh;
	struct tlshd_request req;
	unsigned char buf[256];
	struct nlattr *last;
	size_t len;

	nla_put_u32(msg, TLSHD_HS_A_ACCEPT_TIMEOUT, 5000);
	nlh = nlmsg_hdr(msg);
	len = nlh->nlmsg_len;
	memcpy(buf, nlh, len);
	nlh = (struct nlmsghdr *)buf;

	/* The last attribute claims 4 more bytes than the message holds. */
	last = (struct nlattr *)(buf + len - 8);
	last->nla_len += 4;
	is_int(tlshd_request_parse(nlh, len, &req), -EINVAL, "attribute overrunning the message");
	last->nla_len -= 4;

	/* The message ends 2 bytes into the last attribute's header. */
	nlh->nlmsg_len = len - 6;
	is_int(tlshd_request_parse(nlh, len - 6, &req), -EINVAL, "message ending inside a header");

	nlh->nlmsg_len = len;
	is_int(tlshd_request_parse(nlh, len - 4, &req), -EBADMSG, "nlmsg_len beyond the buffer");
	is_int(tlshd_request_parse(nlh, NLMSG_HDRLEN + 2, &req), -EBADMSG, "no room for genl header");
	is_int(tlshd_request_parse(nlh, len, &req), 0, "the untouched message still parses");
	nlmsg_free(msg);

	msg = nlmsg_alloc();
	genlmsg_put(msg, 0, 0, FAMILY, 0, 0, TLSHD_HS_CMD_READY, 1);
	nla_put_s32(msg, TLSHD_HS_A_ACCEPT_SOCKFD, 5);
	expect(msg, -EBADMSG, -1, "a READY message is not an ACCEPT reply");
}

/* Expected DONE bytes, laid out by hand. */
struct raw_attr {
	uint16_t len, type;
	uint32_t val;
};

static void test_done(void)
{
	struct tlshd_result ok_res = { .status = 0, .num_remote_auth = 2,
				       .remote_auth = { 0x1234, 0x5678 } };
	struct tlshd_result bad_res = { .status = EKEYREJECTED, .num_remote_auth = 1,
					.remote_auth = { 0x1234 } };
	struct {
		struct nlmsghdr nlh;
		struct genlmsghdr g;
		struct raw_attr a[4];
	} __attribute__((packed)) want = {
		.nlh = { .nlmsg_len = sizeof(want), .nlmsg_type = FAMILY,
			 .nlmsg_flags = NLM_F_ACK },
		.g = { .cmd = TLSHD_HS_CMD_DONE },
		.a = {
			{ 8, TLSHD_HS_A_DONE_STATUS, 0 },
			{ 8, TLSHD_HS_A_DONE_SOCKFD, 9 },
			{ 8, TLSHD_HS_A_DONE_REMOTE_AUTH, 0x1234 },
			{ 8, TLSHD_HS_A_DONE_REMOTE_AUTH, 0x5678 },
		},
	};
	struct nl_msg *msg = nlmsg_alloc();
	struct nlmsghdr *nlh;

	is_int(tlshd_request_build_done(msg, FAMILY, 9, &ok_res), 0, "DONE builds");
	nlh = nlmsg_hdr(msg);
	is_int(nlh->nlmsg_len, sizeof(want), "DONE length");
	ok(!memcmp(nlh, &want, sizeof(want)), "DONE bytes: header, ack flag, status, fd, REMOTE_AUTH x2");
	nlmsg_free(msg);

	msg = nlmsg_alloc();
	is_int(tlshd_request_build_done(msg, FAMILY, 9, &bad_res), 0, "failed DONE builds");
	nlh = nlmsg_hdr(msg);
	want.nlh.nlmsg_len = sizeof(want) - 2 * sizeof(struct raw_attr);
	want.a[0].val = EKEYREJECTED;
	is_int(nlh->nlmsg_len, want.nlh.nlmsg_len, "failed DONE carries no REMOTE_AUTH");
	ok(!memcmp(nlh, &want, want.nlh.nlmsg_len), "failed DONE bytes: status, fd");
	nlmsg_free(msg);

	msg = nlmsg_alloc();
	bad_res.status = 4096;
	is_int(tlshd_request_build_done(msg, FAMILY, 9, &bad_res), -EINVAL,
	       "status above MAX_ERRNO is refused");
	nlmsg_free(msg);
}

/*
 * READY as the kernel multicasts it (net/handshake/netlink.c,
 * handshake_genl_notify): nlmsghdr with seq and pid 0, genlmsghdr with
 * cmd READY and version 1, and one u32 HANDLER_CLASS attribute. Family
 * id 0x1c, as in the other tests.
 */
static const unsigned char ready_tlshd[] = {
	0x1c, 0x00, 0x00, 0x00,  0x1c, 0x00,  0x00, 0x00,	/* len 28, type, flags */
	0x00, 0x00, 0x00, 0x00,  0x00, 0x00, 0x00, 0x00,	/* seq, pid */
	0x01, 0x01, 0x00, 0x00,					/* READY, version 1 */
	0x08, 0x00, 0x02, 0x00,  0x01, 0x00, 0x00, 0x00,	/* HANDLER_CLASS = tlshd */
};

static bool ready(const unsigned char *bytes, size_t len)
{
	unsigned char buf[64] __attribute__((aligned(4)));

	memcpy(buf, bytes, len);
	return tlshd_request_is_ready((const struct nlmsghdr *)buf, len, FAMILY);
}

/* The captured message with byte @at replaced by @val. */
static bool ready_with(size_t at, unsigned char val)
{
	unsigned char b[sizeof(ready_tlshd)];

	memcpy(b, ready_tlshd, sizeof(b));
	b[at] = val;
	return ready(b, sizeof(b));
}

static void test_ready(void)
{
	unsigned char b[sizeof(ready_tlshd)];

	ok(ready(ready_tlshd, sizeof(ready_tlshd)), "READY for handler class tlshd is ours");
	ok(!ready_with(24, 2), "READY for another handler class is not");
	ok(!ready_with(4, 0x1d), "a message of another family is not");
	ok(!ready_with(16, TLSHD_HS_CMD_ACCEPT), "an ACCEPT is not a READY");
	ok(!ready(ready_tlshd, sizeof(ready_tlshd) - 1), "a message longer than the bytes read is not");
	ok(!ready_with(0, 16), "a header shorter than nlmsghdr + genlmsghdr is not");
	ok(!ready_with(22, 3), "without a HANDLER_CLASS attribute it is not");
	/* A 2-byte class attribute (nla_len 6): too short for a u32. */
	memcpy(b, ready_tlshd, sizeof(b));
	b[20] = 6;
	ok(!ready(b, sizeof(b)), "a HANDLER_CLASS of the wrong size is not");
	/* An attribute running past the message's end. */
	ok(!ready_with(20, 0x40), "an attribute longer than its message is not");
	ok(!ready(ready_tlshd, 8), "8 bytes are not a message");
}

/* An NLMSG_ERROR answer to ACCEPT with @error. */
static int answer_error(int error, size_t trim)
{
	struct {
		struct nlmsghdr nlh;
		struct nlmsgerr err;
	} m = {
		.nlh = { .nlmsg_len = sizeof(m), .nlmsg_type = NLMSG_ERROR, .nlmsg_seq = 7 },
		.err = { .error = error },
	};
	struct tlshd_request req = { .sockfd = 99 };
	int r;

	m.nlh.nlmsg_len -= trim;
	r = tlshd_request_parse_answer(&m.nlh, sizeof(m) - trim, FAMILY, &req);
	if (req.sockfd != -1)
		return -9999;	/* an answer without a request left a socket behind */
	return r;
}

static void test_answers(void)
{
	struct nl_msg *msg = accept_msg();
	struct nlmsghdr *nlh;
	struct tlshd_request req;

	is_int(answer_error(-EAGAIN, 0), -EAGAIN, "NLMSG_ERROR -EAGAIN: no request pending");
	is_int(answer_error(-EPERM, 0), -EPERM, "NLMSG_ERROR -EPERM is passed on");
	is_int(answer_error(0, 0), -EBADMSG, "an ack answering ACCEPT carries no request: EBADMSG");
	is_int(answer_error(5, 0), -EBADMSG, "a positive error is malformed");
	is_int(answer_error(-EAGAIN, 8), -EBADMSG, "a truncated NLMSG_ERROR is malformed");
	is_int(answer_error(-EAGAIN, 24), -EBADMSG, "fewer bytes than a netlink header: malformed");

	nla_put_s32(msg, TLSHD_HS_A_ACCEPT_SOCKFD, 5);
	nla_put_u32(msg, TLSHD_HS_A_ACCEPT_MESSAGE_TYPE, TLSHD_HS_MSG_SERVERHELLO);
	nla_put_u32(msg, TLSHD_HS_A_ACCEPT_AUTH_MODE, TLSHD_HS_AUTH_PSK);
	nlh = nlmsg_hdr(msg);
	is_int(tlshd_request_parse_answer(nlh, nlh->nlmsg_len, FAMILY, &req), 0,
	       "a reply of our family is the request");
	is_int(req.sockfd, 5, "parsed");
	nlh->nlmsg_type = FAMILY + 1;
	is_int(tlshd_request_parse_answer(nlh, nlh->nlmsg_len, FAMILY, &req), 1,
	       "a message of another type is not the answer");
	nlmsg_free(msg);
}

int main(void)
{
	test_client_psk();
	test_server_x509_any_order();
	test_missing_and_unknown();
	test_wrong_types();
	test_repeats();
	test_truncation();
	test_done();
	test_ready();
	test_answers();
	return tap_done();
}
