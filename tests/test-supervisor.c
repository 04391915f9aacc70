// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests of supervisor.c with real child processes: the worker cap,
 * requests beyond it waiting instead of being dropped, draining at
 * start-up until a worker finds the queue empty, and exit accounting.
 */
#include "build-config.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "supervisor.h"
#include "tap.h"
#include "worker.h"

/* Forks a child that exits with @code (or dies of SIGKILL if code < 0). */
static void spawn(struct tlshd_supervisor *sv, int code)
{
	pid_t pid = fork();

	if (pid == 0) {
		if (code < 0)
			raise(SIGKILL);
		_exit(code);
	}
	tlshd_supervisor_started(sv, pid);
}

/* Waits for every child to have exited, then reaps through the
 * supervisor. */
static void settle(struct tlshd_supervisor *sv)
{
	siginfo_t si;

	while (sv->running) {
		if (waitid(P_ALL, 0, &si, WEXITED | WNOWAIT) < 0)
			break;
		tlshd_supervisor_reap(sv);
	}
}

static void test_cap_and_burst(void)
{
	struct tlshd_supervisor sv;
	unsigned int forked = 0;

	tlshd_supervisor_init(&sv, 2);
	tlshd_supervisor_ready(&sv, 5);
	while (tlshd_supervisor_should_fork(&sv)) {
		spawn(&sv, TLSHD_WORKER_SUCCEEDED);
		forked++;
	}
	is_int(forked, 2, "a burst of 5 READY forks only up to the cap of 2");
	is_int(sv.wanted, 3, "the other 3 requests wait, none dropped");
	settle(&sv);
	while (sv.wanted || sv.running) {
		while (tlshd_supervisor_should_fork(&sv)) {
			spawn(&sv, TLSHD_WORKER_SUCCEEDED);
			forked++;
		}
		settle(&sv);
	}
	is_int(forked, 5, "every request of the burst got a worker");
	is_int(sv.succeeded, 5, "five successes counted");
	tlshd_supervisor_done(&sv);
}

static void test_drain(void)
{
	struct tlshd_supervisor sv;

	tlshd_supervisor_init(&sv, 4);
	tlshd_supervisor_drain(&sv);
	tlshd_supervisor_drain(&sv);
	is_int(sv.wanted, 1, "draining forks one worker at a time");
	spawn(&sv, TLSHD_WORKER_FAILED);
	settle(&sv);
	ok(sv.draining && sv.wanted == 1, "a worker that found a request keeps the drain going");
	spawn(&sv, TLSHD_WORKER_IDLE);
	settle(&sv);
	ok(!sv.draining && sv.wanted == 0, "a worker that found the queue empty ends it");
	is_int(sv.failed, 1, "failure counted");
	is_int(sv.idle, 1, "idle worker counted");
	tlshd_supervisor_done(&sv);
}

static void test_crash(void)
{
	struct tlshd_supervisor sv;

	tlshd_supervisor_init(&sv, 1);
	tlshd_supervisor_ready(&sv, 1);
	spawn(&sv, -1);
	settle(&sv);
	is_int(sv.crashed, 1, "a worker killed by a signal is counted as crashed");
	is_int(sv.running, 0, "and its slot is free again");
	ok(tlshd_supervisor_police(&sv) == -1, "no worker left to police");
	tlshd_supervisor_done(&sv);
}

int main(void)
{
	tlshd_log_open(TLSHD_LOG_STDERR);
	test_cap_and_burst();
	test_drain();
	test_crash();
	return tap_done();
}
