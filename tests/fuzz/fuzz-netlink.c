// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer target: the kernel's netlink messages as request.c reads
 * them. The input is the bytes of a receive buffer, headers included, so
 * that nlmsg_len, attribute lengths and nesting are all the fuzzer's.
 * Each parser first gets the raw buffer (they check every length
 * themselves), then every message genl.c's receive loop would hand over.
 * Besides memory errors, a result that breaks the documented contract
 * (a bad field in a parsed request, a failure that writes more than the
 * sockfd, an errno out of the list) is a crash.
 */
#include "build-config.h"

#include <errno.h>
#include <string.h>

#include <netlink/msg.h>

#include "fuzz.h"
#include "request.h"

/* As in the seeds (tests/fuzz/make-seeds.sh) and tests/test-request.c. */
#define FUZZ_FAMILY	0x1c

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_quiet_log();
	return 0;
}

static void check_parsed(const struct tlshd_request *req)
{
	fuzz_assert(req->sockfd >= 0);
	fuzz_assert(req->role == TLSHD_ROLE_CLIENT || req->role == TLSHD_ROLE_SERVER);
	fuzz_assert(req->auth == TLSHD_AUTH_UNAUTH || req->auth == TLSHD_AUTH_PSK ||
		    req->auth == TLSHD_AUTH_X509);
	fuzz_assert(req->num_peerids <= TLSHD_MAX_PEERIDS);
	if (req->has_peername) {
		fuzz_assert(memchr(req->peername, '\0', sizeof(req->peername)));
		fuzz_assert(req->peername[0] != '\0');
	}
}

/* On failure the parser leaves all but the sockfd alone. */
static void check_failed(const struct tlshd_request *req, const struct tlshd_request *before)
{
	struct tlshd_request expect = *before;

	fuzz_assert(req->sockfd >= -1);
	expect.sockfd = req->sockfd;
	fuzz_assert(!memcmp(&expect, req, sizeof(expect)));
}

static void fuzz_parse(const struct nlmsghdr *nlh, size_t len)
{
	struct tlshd_request req, before;
	int r;

	memset(&before, 0xa5, sizeof(before));
	req = before;
	r = tlshd_request_parse(nlh, len, &req);
	fuzz_assert(r == 0 || r == -EBADMSG || r == -EINVAL || r == -EALREADY ||
		    r == -E2BIG || r == -ENOENT);
	if (r == 0)
		check_parsed(&req);
	else
		check_failed(&req, &before);
}

static void fuzz_answer(const struct nlmsghdr *nlh, size_t len)
{
	struct tlshd_request req, before;
	int r;

	memset(&before, 0xa5, sizeof(before));
	req = before;
	r = tlshd_request_parse_answer(nlh, len, FUZZ_FAMILY, &req);
	fuzz_assert(r <= 1 && r >= -4095);
	if (r == 0)
		check_parsed(&req);
	else
		check_failed(&req, &before);
	if (r == 1)
		fuzz_assert(req.sockfd == -1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct nlmsghdr *buf, *nlh;
	int r, len;

	/* A copy of the exact size, suitably aligned like the receive
	 * buffer: ASan then catches a read even one byte past the end. */
	buf = malloc(size ? size : 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);

	fuzz_parse(buf, size);
	(void)tlshd_request_is_ready(buf, size, FUZZ_FAMILY);
	r = tlshd_request_error_of(buf, size);
	fuzz_assert(r <= 0 && r >= -4095);

	/* genl.c's receive loop: nlmsg_ok() vouches for the header. */
	len = (int)size;
	for (nlh = buf; nlmsg_ok(nlh, len); nlh = nlmsg_next(nlh, &len)) {
		fuzz_answer(nlh, len);
		(void)tlshd_request_is_ready(nlh, len, FUZZ_FAMILY);
	}
	free(buf);
	return 0;
}
