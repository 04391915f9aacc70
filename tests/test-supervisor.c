// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests of supervisor.c with real child processes and a clock the
 * test drives: the worker cap, requests beyond it waiting instead of being
 * dropped, draining at start-up until a worker finds the queue empty,
 * exit accounting, the back-off after workers that cannot serve, and
 * spares: forked ahead, dispatched before any fork, retired on reload,
 * and a spare that dies unused; overdue workers killed, and a kill that
 * fails (no CAP_KILL) said.
 */
#include "build-config.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "supervisor.h"
#include "tap.h"
#include "worker.h"

#define CRASH	(-1)

/* Forks a child that exits with @code (or dies of SIGKILL for CRASH). */
static void spawn(struct tlshd_supervisor *sv, int code, long long now)
{
	pid_t pid = fork();

	if (pid == 0) {
		if (code == CRASH)
			raise(SIGKILL);
		_exit(code);
	}
	tlshd_supervisor_started(sv, pid, now);
}

/* Reaps until no child of the supervisor is left, or only @keep. */
static void settle_procs(struct tlshd_supervisor *sv, unsigned int keep, long long now)
{
	siginfo_t si;

	while (sv->procs > keep) {
		if (waitid(P_ALL, 0, &si, WEXITED | WNOWAIT) < 0)
			break;
		tlshd_supervisor_reap(sv, now);
	}
}

/* Waits for every child to have exited, then reaps through the
 * supervisor at @now. */
static void settle(struct tlshd_supervisor *sv, long long now)
{
	settle_procs(sv, 0, now);
}

static void test_cap_and_burst(void)
{
	struct tlshd_supervisor sv;
	unsigned int forked = 0;

	tlshd_supervisor_init(&sv, 2);
	tlshd_supervisor_ready(&sv, 5);
	while (tlshd_supervisor_should_fork(&sv, 0)) {
		spawn(&sv, TLSHD_WORKER_SUCCEEDED, 0);
		forked++;
	}
	is_int(forked, 2, "a burst of 5 READY forks only up to the cap of 2");
	is_int(sv.wanted, 3, "the other 3 requests wait, none dropped");
	settle(&sv, 0);
	while (sv.wanted || sv.running) {
		while (tlshd_supervisor_should_fork(&sv, 0)) {
			spawn(&sv, TLSHD_WORKER_SUCCEEDED, 0);
			forked++;
		}
		settle(&sv, 0);
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
	spawn(&sv, TLSHD_WORKER_FAILED, 0);
	settle(&sv, 0);
	ok(sv.draining && sv.wanted == 1, "a worker that found a request keeps the drain going");
	spawn(&sv, TLSHD_WORKER_IDLE, 0);
	settle(&sv, 0);
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
	spawn(&sv, CRASH, 0);
	settle(&sv, 0);
	is_int(sv.crashed, 1, "a worker killed by a signal is counted as crashed");
	is_int(sv.running, 0, "and its slot is free again");
	is_int(sv.wanted, 1, "its request, maybe still queued, gets another worker");
	tlshd_supervisor_done(&sv);
}

/* A drain worker killed (overdue kill, OOM killer, crash) must not leave
 * the drain stuck: the drain goes on, and a later one is not ignored. */
static void test_drain_worker_killed(void)
{
	struct tlshd_supervisor sv;

	tlshd_supervisor_init(&sv, 4);
	tlshd_supervisor_drain(&sv);
	spawn(&sv, CRASH, 0);
	settle(&sv, 0);
	ok(sv.draining && sv.wanted == 1, "a killed drain worker is replaced (wanted %u)",
	   sv.wanted);
	ok(!tlshd_supervisor_should_fork(&sv, 0), "after the back-off");
	ok(tlshd_supervisor_should_fork(&sv, TLSHD_SUPERVISOR_BACKOFF_MIN_MS), "not later");
	spawn(&sv, TLSHD_WORKER_IDLE, TLSHD_SUPERVISOR_BACKOFF_MIN_MS);
	settle(&sv, TLSHD_SUPERVISOR_BACKOFF_MIN_MS);
	ok(!sv.draining && sv.wanted == 0, "its replacement ends the drain");

	/* Stuck state of old: draining set, nothing wanted or running. */
	sv.draining = true;
	tlshd_supervisor_drain(&sv);
	is_int(sv.wanted, 1, "a drain requested while a dead one is marked still forks");
	tlshd_supervisor_done(&sv);
}

/*
 * Workers that cannot serve (no CAP_NET_ADMIN: exit ERROR before ACCEPT)
 * during the start-up drain: before, each failure re-armed the drain at
 * once and the daemon forked without bound. Over 150 simulated seconds
 * the forks now stay few, the delays grow, and a served request resets.
 */
static void test_failure_loop_backs_off(void)
{
	struct tlshd_supervisor sv;
	long long now = 0, first_gap = -1, last_gap = 0, last_fork = 0;
	unsigned int forks = 0;

	tlshd_supervisor_init(&sv, 8);
	tlshd_supervisor_drain(&sv);
	for (now = 0; now < 150000; now += 10) {
		if (!tlshd_supervisor_should_fork(&sv, now))
			continue;
		if (forks) {
			last_gap = now - last_fork;
			if (first_gap < 0)
				first_gap = last_gap;
		}
		last_fork = now;
		spawn(&sv, TLSHD_WORKER_ERROR, now);
		settle(&sv, now);
		forks++;
	}
	ok(forks >= 8 && forks <= 16, "150 s of failing workers: %u forks, not thousands", forks);
	ok(first_gap >= TLSHD_SUPERVISOR_BACKOFF_MIN_MS && last_gap > first_gap,
	   "the delay grows (first %lld ms, last %lld ms)", first_gap, last_gap);
	ok(last_gap >= TLSHD_SUPERVISOR_BACKOFF_MAX_MS &&
	   last_gap <= TLSHD_SUPERVISOR_BACKOFF_MAX_MS + 10, "and is capped at %d ms",
	   TLSHD_SUPERVISOR_BACKOFF_MAX_MS);
	ok(sv.draining && sv.wanted == 1, "the drain is still pending, not dropped");
	ok(tlshd_supervisor_police(&sv, now) > 0, "poll() wakes for the held-back fork");

	now = sv.hold_until_ms;
	spawn(&sv, TLSHD_WORKER_IDLE, now);
	settle(&sv, now);
	ok(sv.failing == 0 && sv.hold_until_ms == 0, "a worker that reaches the kernel resets it");
	tlshd_supervisor_ready(&sv, 1);
	ok(tlshd_supervisor_should_fork(&sv, now), "the next request is forked at once");
	tlshd_supervisor_done(&sv);
}

#define READY_US	123456789LL

/* Forks a spare that waits on its pipe as a real one does: the parent's
 * word (READY_US) makes it exit SUCCEEDED, anything else ERROR, a closed
 * pipe RETIRED. Returns its pid. */
static pid_t spawn_spare(struct tlshd_supervisor *sv, long long now)
{
	int go[2];
	pid_t pid;

	if (pipe2(go, O_CLOEXEC) < 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		long long v = 0;
		ssize_t n;

		tlshd_supervisor_child(sv);
		close(go[1]);
		n = read(go[0], &v, sizeof(v));
		if (n == 0)
			_exit(TLSHD_WORKER_RETIRED);
		_exit(n == sizeof(v) && v == READY_US ? TLSHD_WORKER_SUCCEEDED : TLSHD_WORKER_ERROR);
	}
	close(go[0]);
	tlshd_supervisor_spare_started(sv, pid, go[1], now);
	return pid;
}

static void test_spares(void)
{
	struct tlshd_supervisor sv;
	unsigned int n = 0;

	tlshd_supervisor_init(&sv, 4);
	ok(!tlshd_supervisor_should_spare(&sv, 0), "no spares unless asked for");
	tlshd_supervisor_set_spares(&sv, 2);
	while (tlshd_supervisor_should_spare(&sv, 0) && n < 10) {
		spawn_spare(&sv, 0);
		n++;
	}
	is_int(n, 2, "two spares are forked while nothing waits");
	is_int(sv.spares, 2, "and counted idle");
	is_int(sv.running, 0, "not in flight");

	tlshd_supervisor_ready(&sv, 1);
	ok(!tlshd_supervisor_should_spare(&sv, 0), "no spare is forked while a request waits");
	ok(!tlshd_supervisor_should_fork(&sv, 0), "nor a worker: a spare is idle");
	ok(tlshd_supervisor_dispatch(&sv, READY_US, 0), "the request goes to a spare");
	ok(!tlshd_supervisor_dispatch(&sv, READY_US, 0), "once");
	is_int(sv.spares, 1, "one spare left idle");
	is_int(sv.running, 1, "one in flight");
	settle_procs(&sv, 1, 0);
	is_int(sv.succeeded, 1, "the spare got the READY's time and served");
	is_int(sv.crashed, 0, "nothing counted as crashed");

	/* An idle spare must outlive the kill-after of busy workers. */
	tlshd_supervisor_police(&sv, TLSHD_WORKER_KILL_AFTER_S * 2000LL);
	is_int(sv.spares, 1, "an idle spare is not killed for its age");

	tlshd_supervisor_retire_spares(&sv);
	is_int(sv.spares, 0, "reload: idle spares are retired");
	settle_procs(&sv, 0, 0);
	ok(sv.crashed == 0 && sv.failing == 0, "a retired spare exits quietly, no back-off");
	tlshd_supervisor_done(&sv);
}

/* Waits until @pid has exited, without reaping it. */
static void wait_dead(pid_t pid)
{
	siginfo_t si;

	while (waitid(P_PID, pid, &si, WEXITED | WNOWAIT) < 0 && errno == EINTR)
		;
}

static void test_spare_dies(void)
{
	struct tlshd_supervisor sv;
	pid_t a, c;

	signal(SIGPIPE, SIG_IGN);
	tlshd_supervisor_init(&sv, 4);
	tlshd_supervisor_set_spares(&sv, 2);
	a = spawn_spare(&sv, 0);
	spawn_spare(&sv, 0);
	kill(a, SIGKILL);
	wait_dead(a);
	/* Not reaped yet: the dispatch finds its pipe broken and hands the
	 * request to the other one. */
	tlshd_supervisor_ready(&sv, 1);
	ok(tlshd_supervisor_dispatch(&sv, READY_US, 0), "a request skips a dead spare");
	settle_procs(&sv, 0, 0);
	is_int(sv.succeeded, 1, "the live spare served it");
	is_int(sv.crashed, 1, "the dead one is counted");
	is_int(sv.wanted, 0, "and owes no request");

	c = spawn_spare(&sv, 0);
	kill(c, SIGKILL);
	wait_dead(c);
	tlshd_supervisor_reap(&sv, 1000);
	is_int(sv.spares, 0, "a spare that died idle is gone");
	is_int(sv.wanted, 0, "it owes no request either");
	ok(!tlshd_supervisor_should_spare(&sv, 1000), "the next spare is held back");
	ok(tlshd_supervisor_should_spare(&sv, 1000 + TLSHD_SUPERVISOR_BACKOFF_MIN_MS),
	   "until the back-off has passed");
	spawn_spare(&sv, 1000);
	tlshd_supervisor_ready(&sv, 1);
	ok(!tlshd_supervisor_dispatch(&sv, READY_US, 1000), "nor is a request dispatched");
	ok(tlshd_supervisor_dispatch(&sv, READY_US, 1000 + TLSHD_SUPERVISOR_BACKOFF_MIN_MS),
	   "until then");
	settle_procs(&sv, 0, 2000);
	is_int(sv.succeeded, 2, "and served");
	tlshd_supervisor_done(&sv);
}

/* Forks a worker that sleeps (2 s at most), as uid 65534 when @demote
 * (as a worker after ACCEPT), and records it started at @now once it
 * has switched. */
static pid_t spawn_sleeper(struct tlshd_supervisor *sv, bool demote, long long now)
{
	int p[2];
	char c = 0;
	pid_t pid;

	if (pipe(p) < 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		close(p[0]);
		if (demote && (setresgid(65534, 65534, 65534) < 0 ||
			       setresuid(65534, 65534, 65534) < 0))
			_exit(9);
		alarm(2);
		(void)!write(p[1], &c, 1);
		pause();
		_exit(0);
	}
	close(p[1]);
	(void)!read(p[0], &c, 1);
	close(p[0]);
	tlshd_supervisor_started(sv, pid, now);
	return pid;
}

/* Drops @cap from this process's effective and permitted sets. */
static int cap_drop(int cap)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2];

	if (syscall(SYS_capget, &hdr, data) < 0)
		return -1;
	data[cap / 32].effective &= ~CAP_TO_MASK(cap);
	data[cap / 32].permitted &= ~CAP_TO_MASK(cap);
	return syscall(SYS_capset, &hdr, data);
}

/* Overdue workers: killed at sv->kill_after_ms, not before; one running
 * as another uid only with CAP_KILL, and a failure to kill is told, its
 * slot kept (checked in a child that gives up CAP_KILL). */
static void test_overdue(void)
{
	struct tlshd_supervisor sv;
	bool root = geteuid() == 0;
	pid_t pid;
	int status;

	tlshd_supervisor_init(&sv, 2);
	ok(sv.kill_after_ms == TLSHD_WORKER_KILL_AFTER_S * 1000LL, "kill-after defaults to %d s",
	   TLSHD_WORKER_KILL_AFTER_S);
	sv.kill_after_ms = 5000;
	tlshd_supervisor_ready(&sv, 1);
	pid = spawn_sleeper(&sv, root, 1000);
	is_int(tlshd_supervisor_police(&sv, 2000), 4000, "poll() wakes when the worker is due");
	ok(kill(pid, 0) == 0, "a worker is not killed before its time");
	tlshd_supervisor_police(&sv, 6000);
	waitpid(pid, &status, 0);
	ok(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
	   "an overdue worker is killed%s", root ? " (running as uid 65534)" : "");
	tlshd_supervisor_done(&sv);
	if (!root)
		return;

	/* Without CAP_KILL, a worker under another uid survives: said. */
	pid = fork();
	if (pid == 0) {
		struct tlshd_supervisor sv2;
		pid_t w;
		int r;

		tlshd_supervisor_init(&sv2, 2);
		sv2.kill_after_ms = 10;
		tlshd_supervisor_ready(&sv2, 1);
		w = spawn_sleeper(&sv2, true, 0);
		if (cap_drop(CAP_KILL) < 0)
			_exit(10);
		tlshd_supervisor_police(&sv2, 100);
		/* (It ends at its alarm.) */
		r = waitpid(w, NULL, WNOHANG) == 0 && sv2.procs == 1 && sv2.slots[0].killed ? 0 : 11;
		_exit(r);
	}
	waitpid(pid, &status, 0);
	ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	   "without CAP_KILL the kill fails, the worker keeps its slot (status %d)",
	   WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

int main(void)
{
	tlshd_log_open(TLSHD_LOG_STDERR);
	test_cap_and_burst();
	test_drain();
	test_crash();
	test_drain_worker_killed();
	test_failure_loop_backs_off();
	test_spares();
	test_spare_dies();
	test_overdue();
	return tap_done();
}
