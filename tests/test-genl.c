// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit test of genl.c against the running kernel's netlink (no handshake
 * family needed): a worker never waits for the kernel without bound. An
 * ACCEPT sent as a message the kernel skips without answering (type
 * NLMSG_NOOP, no ack asked) must end in -ETIMEDOUT after the reply
 * timeout, not block until the supervisor kills the worker.
 */
#include "build-config.h"

#include <errno.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <linux/netlink.h>

#include "genl.h"
#include "log.h"
#include "tap.h"
#include "util.h"

static void on_alarm(int sig)
{
	printf("not ok 1 - ACCEPT still waiting after 20 s: no reply timeout\n1..1\n");
	_exit(1);
}

int main(void)
{
	struct tlshd_genl g = { 0 };
	struct tlshd_request req;
	long long t0, ms;
	int r;

	tlshd_log_open(TLSHD_LOG_STDERR);
	if (tlshd_genl_connect(&g, NLMSG_NOOP) < 0)
		return tap_skip_all("no generic netlink socket here");
	signal(SIGALRM, on_alarm);
	alarm(20);
	t0 = tlshd_util_now_ms();
	r = tlshd_genl_accept(&g, &req);
	ms = tlshd_util_now_ms() - t0;
	alarm(0);
	is_int(r, -ETIMEDOUT, "an ACCEPT nobody answers ends in ETIMEDOUT (%lld ms)", ms);
	ok(ms >= 4000 && ms < 10000, "after the 5 s reply timeout (%lld ms)", ms);
	is_int(req.sockfd, -1, "and leaves no socket behind");
	tlshd_genl_close(&g);
	return tap_done();
}
