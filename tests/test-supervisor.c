// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests of supervisor.c with real child processes and a clock the
 * test drives: requests ACCEPTed up to the worker cap and the rest left
 * in the kernel, none dropped; draining until the kernel has none left;
 * exit accounting; a request whose worker died gets its DONE from the
 * parent (the orphan function); the back-off after failing workers and
 * ACCEPTs; spares: forked ahead, handed a request and its socket before
 * any fork, retired on reload, and a spare that dies unused; a child
 * keeps only its own request's socket; overdue workers killed, and a
 * kill that fails (no CAP_KILL) said; a worker that reported its outcome
 * no longer counts as running, and waits to exit for a quiet moment.
 */
#include "build-config.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "supervisor.h"
#include "tap.h"
#include "worker.h"

#define CRASH	(-1)
#define READY_US	123456789LL

/* What the orphan function saw. */
static unsigned int orphans;
static int orphan_status;

static void on_orphan(void *data, pid_t pid, struct tlshd_job *job, int status)
{
	(void)data;
	(void)pid;
	/* The parent's copy of the socket is still open for its DONE. */
	if (fcntl(job->req.sockfd, F_GETFD) >= 0)
		orphans++;
	orphan_status = status;
}

static void sv_init(struct tlshd_supervisor *sv, unsigned int max)
{
	tlshd_supervisor_init(sv, max);
	sv->orphan = on_orphan;
	orphans = 0;
	orphan_status = 0;
}

/* Stands in for a successful ACCEPT: a request whose socket is one end
 * of a fresh socket pair. */
static struct tlshd_job *accept_one(struct tlshd_supervisor *sv)
{
	struct tlshd_job *job = calloc(1, sizeof(*job));
	int sp[2];

	if (!job || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
		abort();
	close(sp[1]);
	job->req.sockfd = sp[0];
	job->ready_us = READY_US;
	tlshd_supervisor_accepted(sv, job);
	return job;
}

/* ACCEPTs while the supervisor wants to; returns how many. */
static unsigned int accept_all(struct tlshd_supervisor *sv, long long now)
{
	unsigned int n = 0;

	while (tlshd_supervisor_should_accept(sv, now) && n < 1000) {
		accept_one(sv);
		n++;
	}
	return n;
}

/* Forks a child for the oldest waiting request that exits with @code
 * (or dies of SIGKILL for CRASH). */
static void spawn(struct tlshd_supervisor *sv, int code, long long now)
{
	pid_t pid = fork();

	if (pid == 0) {
		if (code == CRASH)
			raise(SIGKILL);
		_exit(code);
	}
	tlshd_supervisor_started(sv, pid, -1, now);
}

/* Whether a child that exits SUCCEEDED or FAILED while it serves a
 * request has reported its outcome first, as worker.c does (then the
 * parent has DONEd the request): the stand-in for the report channel. */
static bool reports = true;

/* The reports of the running children that have exited so, at @now. */
static void emulate_reports(struct tlshd_supervisor *sv, long long now)
{
	for (unsigned int i = 0; reports && i < sv->max_workers; i++) {
		const struct tlshd_worker_slot *w = &sv->slots[i];
		siginfo_t si = { 0 };

		if (w->state != TLSHD_SLOT_RUNNING ||
		    waitid(P_PID, w->pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0 ||
		    si.si_pid != w->pid || si.si_code != CLD_EXITED)
			continue;
		if (si.si_status == TLSHD_WORKER_SUCCEEDED || si.si_status == TLSHD_WORKER_FAILED)
			tlshd_supervisor_served(sv, w->pid,
						si.si_status == TLSHD_WORKER_FAILED ? EIO : 0, now);
	}
}

/* Reaps until no child of the supervisor is left, or only @keep. */
static void settle_procs(struct tlshd_supervisor *sv, unsigned int keep, long long now)
{
	siginfo_t si;

	while (sv->procs > keep) {
		if (waitid(P_ALL, 0, &si, WEXITED | WNOWAIT) < 0)
			break;
		emulate_reports(sv, now);
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
	unsigned int forked = 0, accepted;

	sv_init(&sv, 2);
	tlshd_supervisor_ready(&sv, 5);
	accepted = accept_all(&sv, 0);
	is_int(accepted, 2, "a burst of 5 READY: ACCEPT up to the cap of 2");
	is_int(sv.announced, 3, "the other 3 requests wait in the kernel, none dropped");
	while (tlshd_supervisor_should_fork(&sv, 0)) {
		spawn(&sv, TLSHD_WORKER_SUCCEEDED, 0);
		forked++;
	}
	is_int(forked, 2, "a worker each");
	ok(!tlshd_supervisor_should_accept(&sv, 0), "no ACCEPT while both run");
	settle(&sv, 0);
	while (sv.announced || sv.queued || sv.running) {
		accepted += accept_all(&sv, 0);
		while (tlshd_supervisor_should_fork(&sv, 0)) {
			spawn(&sv, TLSHD_WORKER_SUCCEEDED, 0);
			forked++;
		}
		settle(&sv, 0);
	}
	is_int(accepted, 5, "every request of the burst was ACCEPTed");
	is_int(forked, 5, "and got a worker");
	is_int(sv.succeeded, 5, "five successes counted");
	is_int(orphans, 0, "no DONE from the parent");
	tlshd_supervisor_done(&sv);
}

static void test_drain(void)
{
	struct tlshd_supervisor sv;

	sv_init(&sv, 4);
	ok(!tlshd_supervisor_should_accept(&sv, 0), "no ACCEPT without a READY");
	tlshd_supervisor_drain(&sv);
	is_int(accept_all(&sv, 0), 4, "draining ACCEPTs up to the cap without READY");
	spawn(&sv, TLSHD_WORKER_FAILED, 0);
	settle(&sv, 0);
	ok(sv.draining && tlshd_supervisor_should_accept(&sv, 0),
	   "the drain goes on as a worker ends");
	accept_one(&sv);
	tlshd_supervisor_accept_failed(&sv, -EAGAIN, 0);
	ok(!sv.draining && !tlshd_supervisor_should_accept(&sv, 0),
	   "the kernel's EAGAIN ends it");
	ok(sv.hold_until_ms == 0, "with no back-off");
	is_int(sv.failed, 1, "failure counted");
	is_int(sv.queued, 4, "the requests ACCEPTed still wait for workers");
	tlshd_supervisor_done(&sv);
	is_int(orphans, 4, "shutting down: DONE for each, from the parent");
	is_int(orphan_status, ESHUTDOWN, "with ESHUTDOWN");
}

static void test_crash(void)
{
	struct tlshd_supervisor sv;

	sv_init(&sv, 1);
	tlshd_supervisor_ready(&sv, 1);
	accept_all(&sv, 0);
	spawn(&sv, CRASH, 0);
	settle(&sv, 0);
	is_int(sv.crashed, 1, "a worker killed by a signal is counted as crashed");
	is_int(sv.running, 0, "and its slot is free again");
	is_int(orphans, 1, "its request gets a DONE from the parent");
	is_int(orphan_status, EIO, "with EIO");
	is_int(sv.queued + sv.announced, 0, "and is not served twice");

	tlshd_supervisor_ready(&sv, 1);
	accept_all(&sv, TLSHD_SUPERVISOR_BACKOFF_MIN_MS);
	spawn(&sv, TLSHD_WORKER_ERROR, TLSHD_SUPERVISOR_BACKOFF_MIN_MS);
	settle(&sv, TLSHD_SUPERVISOR_BACKOFF_MIN_MS);
	is_int(orphans, 2, "a worker that exits without a report leaves it to the parent too");
	tlshd_supervisor_ready(&sv, 1);
	ok(!tlshd_supervisor_should_accept(&sv, TLSHD_SUPERVISOR_BACKOFF_MIN_MS),
	   "after two, the next ACCEPT waits");
	tlshd_supervisor_done(&sv);

	/* Its exit status claims nothing: only a report gets DONE. */
	sv_init(&sv, 1);
	tlshd_supervisor_ready(&sv, 1);
	accept_all(&sv, 0);
	reports = false;
	spawn(&sv, TLSHD_WORKER_SUCCEEDED, 0);
	settle(&sv, 0);
	reports = true;
	ok(sv.crashed == 1 && sv.succeeded == 0 && orphans == 1 && orphan_status == EIO,
	   "a worker that exits 0 without its report gets its request a DONE with EIO, "
	   "counted as crashed (crashed %llu, succeeded %llu, orphans %u)", sv.crashed,
	   sv.succeeded, orphans);
	tlshd_supervisor_done(&sv);
}

/*
 * ACCEPTs that fail (no CAP_NET_ADMIN) during the start-up drain: over
 * 150 simulated seconds the attempts stay few, the delays grow, and a
 * served request resets them.
 */
static void test_failure_loop_backs_off(void)
{
	struct tlshd_supervisor sv;
	long long now = 0, first_gap = -1, last_gap = 0, last_try = 0;
	unsigned int tries = 0;

	sv_init(&sv, 8);
	tlshd_supervisor_drain(&sv);
	for (now = 0; now < 150000; now += 10) {
		if (!tlshd_supervisor_should_accept(&sv, now))
			continue;
		if (tries) {
			last_gap = now - last_try;
			if (first_gap < 0)
				first_gap = last_gap;
		}
		last_try = now;
		tlshd_supervisor_accept_failed(&sv, -EPERM, now);
		tries++;
	}
	ok(tries >= 8 && tries <= 16, "150 s of failing ACCEPTs: %u tries, not thousands", tries);
	ok(first_gap >= TLSHD_SUPERVISOR_BACKOFF_MIN_MS && last_gap > first_gap,
	   "the delay grows (first %lld ms, last %lld ms)", first_gap, last_gap);
	ok(last_gap >= TLSHD_SUPERVISOR_BACKOFF_MAX_MS &&
	   last_gap <= TLSHD_SUPERVISOR_BACKOFF_MAX_MS + 10, "and is capped at %d ms",
	   TLSHD_SUPERVISOR_BACKOFF_MAX_MS);
	ok(sv.draining, "the drain is still pending, not dropped");
	ok(tlshd_supervisor_police(&sv, now) > 0, "poll() wakes for the held-back ACCEPT");

	now = sv.hold_until_ms;
	accept_all(&sv, now);
	spawn(&sv, TLSHD_WORKER_SUCCEEDED, now);
	settle(&sv, now);
	ok(sv.failing == 0 && sv.hold_until_ms == 0, "a worker that reaches the kernel resets it");
	ok(tlshd_supervisor_should_fork(&sv, now), "the next request is forked at once");
	tlshd_supervisor_done(&sv);
}

/* Forks a spare that waits on its socket as a real one does: a job with
 * READY_US and a socket makes it exit SUCCEEDED, anything else ERROR, a
 * closed socket RETIRED. Returns its pid. */
static pid_t spawn_spare(struct tlshd_supervisor *sv, long long now)
{
	int go[2];
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, go) < 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		char cbuf[CMSG_SPACE(sizeof(int))];
		struct tlshd_job job = { 0 };
		struct iovec iov = { .iov_base = &job, .iov_len = sizeof(job) };
		struct msghdr mh = {
			.msg_iov = &iov, .msg_iovlen = 1,
			.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
		};
		struct cmsghdr *cm;
		int fd = -1;
		ssize_t n;

		tlshd_supervisor_child(sv, NULL);
		close(go[1]);
		n = recvmsg(go[0], &mh, 0);
		if (n == 0)
			_exit(TLSHD_WORKER_RETIRED);
		cm = CMSG_FIRSTHDR(&mh);
		if (cm && cm->cmsg_type == SCM_RIGHTS)
			memcpy(&fd, CMSG_DATA(cm), sizeof(fd));
		_exit(n == sizeof(job) && job.ready_us == READY_US && fcntl(fd, F_GETFD) >= 0 ?
		      TLSHD_WORKER_SUCCEEDED : TLSHD_WORKER_ERROR);
	}
	close(go[0]);
	tlshd_supervisor_spare_started(sv, pid, go[1], 0, now);
	return pid;
}

static void test_spares(void)
{
	struct tlshd_supervisor sv;
	unsigned int n = 0;

	sv_init(&sv, 4);
	ok(!tlshd_supervisor_should_spare(&sv, 0), "no spares unless asked for");
	tlshd_supervisor_set_spares(&sv, 2, 2, 0);
	while (tlshd_supervisor_should_spare(&sv, 0) && n < 10) {
		spawn_spare(&sv, 0);
		n++;
	}
	is_int(n, 2, "two spares are forked while nothing waits");
	is_int(sv.spares, 2, "and counted idle");
	is_int(sv.running, 0, "not in flight");

	tlshd_supervisor_ready(&sv, 1);
	accept_all(&sv, 0);
	ok(!tlshd_supervisor_should_spare(&sv, 0), "no spare is forked while a request waits");
	ok(!tlshd_supervisor_should_fork(&sv, 0), "nor a worker: a spare is idle");
	ok(tlshd_supervisor_dispatch(&sv, 0), "the request goes to a spare");
	ok(!tlshd_supervisor_dispatch(&sv, 0), "once");
	is_int(sv.spares, 1, "one spare left idle");
	is_int(sv.running, 1, "one in flight");
	settle_procs(&sv, 1, 0);
	is_int(sv.succeeded, 1, "the spare got the request and its socket, and served");
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

/* A child keeps its own request's socket and none of the others'. */
static void test_child_sockets(void)
{
	struct tlshd_supervisor sv;
	struct tlshd_job *a, *b, *c;
	int status;
	pid_t pid;

	sv_init(&sv, 4);
	tlshd_supervisor_ready(&sv, 3);
	a = accept_one(&sv);
	b = accept_one(&sv);
	c = accept_one(&sv);
	spawn(&sv, TLSHD_WORKER_SUCCEEDED, 0);	/* a's, running */
	pid = fork();
	if (pid == 0) {
		tlshd_supervisor_child(&sv, b);
		_exit(fcntl(a->req.sockfd, F_GETFD) < 0 && fcntl(b->req.sockfd, F_GETFD) >= 0 &&
		      fcntl(c->req.sockfd, F_GETFD) < 0 ? 0 : 1);
	}
	waitpid(pid, &status, 0);
	ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	   "a child closes the sockets of the running and waiting requests but its own");
	settle(&sv, 0);
	tlshd_supervisor_done(&sv);
}

/* Waits until @pid has exited, without reaping it. */
static void wait_dead(pid_t pid)
{
	siginfo_t si;

	while (waitid(P_PID, pid, &si, WEXITED | WNOWAIT) < 0 && errno == EINTR)
		;
}

/* Forks spares while the supervisor wants them at @now, as the event
 * loop does (and, if nothing runs, as if that had lasted since before
 * TLSHD_SPARE_QUIET_MS); returns how many. */
static unsigned int fill_spares(struct tlshd_supervisor *sv, long long now)
{
	unsigned int n = 0;

	if (!sv->quiet)
		tlshd_supervisor_idle(sv, now - TLSHD_SPARE_QUIET_MS);
	tlshd_supervisor_idle(sv, now);

	while (tlshd_supervisor_should_spare(sv, now) && n < 100) {
		spawn_spare(sv, now);
		n++;
	}
	return n;
}

/* Waits for the workers serving requests to end, and reaps at @now
 * (idle spares stay). */
static void settle_running(struct tlshd_supervisor *sv, long long now)
{
	for (unsigned int i = 0; i < sv->max_workers; i++)
		if (sv->slots[i].state == TLSHD_SLOT_RUNNING)
			wait_dead(sv->slots[i].pid);
	emulate_reports(sv, now);
	tlshd_supervisor_reap(sv, now);
}

/* Beyond the minimum, spares are forked only while no worker runs, and
 * retired a quiet TLSHD_SPARE_BURST_IDLE_MS after the last request. */
static void test_spare_burst(void)
{
	const long long idle = TLSHD_SPARE_BURST_IDLE_MS;
	struct tlshd_supervisor sv;

	sv_init(&sv, 8);
	tlshd_supervisor_set_spares(&sv, 1, 3, 0);
	is_int(fill_spares(&sv, 0), 3, "start-up counts as busy: the burst's spares are forked");

	accept_one(&sv);
	ok(tlshd_supervisor_dispatch(&sv, 10), "a request goes to one of them");
	is_int(fill_spares(&sv, 10), 0,
	       "while it runs, no spare is forked: 2 idle, above the minimum of 1");
	settle_running(&sv, 20);
	is_int(sv.succeeded, 1, "it served");
	is_int(fill_spares(&sv, 20), 1, "once no worker runs, the pool grows back to 3");

	is_int(tlshd_supervisor_police(&sv, 10 + idle - 5), 5,
	       "police wakes up when the burst's spares are due to go");
	is_int(sv.spares, 3, "they stay until a quiet minute has passed since the request");
	tlshd_supervisor_police(&sv, 10 + idle);
	is_int(sv.spares, 1, "then idle spares beyond the minimum are retired");
	settle_procs(&sv, 1, 10 + idle);
	ok(sv.crashed == 0 && sv.failing == 0, "quietly, with no back-off");
	is_int(fill_spares(&sv, 10 + idle), 0, "and not forked again while nothing comes");
	is_int(tlshd_supervisor_police(&sv, 10 + idle), -1, "nor is police woken for them");

	accept_one(&sv);
	ok(tlshd_supervisor_dispatch(&sv, 2 * idle), "the next request takes the last spare");
	is_int(fill_spares(&sv, 2 * idle), 1, "the minimum is made up even while it runs");
	settle_running(&sv, 2 * idle);
	is_int(fill_spares(&sv, 2 * idle), 2, "and the burst's once it has ended");
	tlshd_supervisor_retire_spares(&sv);
	settle(&sv, 2 * idle);
	tlshd_supervisor_done(&sv);
}

static void test_spare_dies(void)
{
	struct tlshd_supervisor sv;
	pid_t a, c;

	signal(SIGPIPE, SIG_IGN);
	sv_init(&sv, 4);
	tlshd_supervisor_set_spares(&sv, 2, 2, 0);
	a = spawn_spare(&sv, 0);
	spawn_spare(&sv, 0);
	kill(a, SIGKILL);
	wait_dead(a);
	/* Not reaped yet: the dispatch finds its socket broken and hands
	 * the request to the other one. */
	accept_one(&sv);
	ok(tlshd_supervisor_dispatch(&sv, 0), "a request skips a dead spare");
	settle_procs(&sv, 0, 0);
	is_int(sv.succeeded, 1, "the live spare served it");
	is_int(sv.crashed, 1, "the dead one is counted");
	ok(sv.queued == 0 && orphans == 0, "and owes no request");
	/* (Its death may be reaped after the live one's report, which ends
	 * a run of failures: the next one starts from none.) */
	sv.failing = 0;
	sv.hold_until_ms = 0;

	c = spawn_spare(&sv, 0);
	kill(c, SIGKILL);
	wait_dead(c);
	tlshd_supervisor_reap(&sv, 1000);
	is_int(sv.spares, 0, "a spare that died idle is gone");
	ok(sv.queued == 0 && orphans == 0, "it owes no request either");
	ok(!tlshd_supervisor_should_spare(&sv, 1000), "the next spare is held back");
	ok(tlshd_supervisor_should_spare(&sv, 1000 + TLSHD_SUPERVISOR_BACKOFF_MIN_MS),
	   "until the back-off has passed");
	spawn_spare(&sv, 1000);
	accept_one(&sv);
	ok(!tlshd_supervisor_dispatch(&sv, 1000), "nor is a request dispatched");
	ok(tlshd_supervisor_dispatch(&sv, 1000 + TLSHD_SUPERVISOR_BACKOFF_MIN_MS),
	   "until then");
	settle_procs(&sv, 0, 2000);
	is_int(sv.succeeded, 2, "and served");
	tlshd_supervisor_done(&sv);
}

/* Forks a worker for a request that sleeps (2 s at most), as uid 65534
 * when @demote (as a worker does), and records it started at @now once
 * it has switched. */
static pid_t spawn_sleeper(struct tlshd_supervisor *sv, bool demote, long long now)
{
	int p[2];
	char c = 0;
	pid_t pid;

	if (pipe(p) < 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		/* (As a worker does: the others' go sockets are not its.) */
		tlshd_supervisor_child(sv, NULL);
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
	tlshd_supervisor_started(sv, pid, -1, now);
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

	sv_init(&sv, 2);
	ok(sv.kill_after_ms == TLSHD_WORKER_KILL_AFTER_S * 1000LL, "kill-after defaults to %d s",
	   TLSHD_WORKER_KILL_AFTER_S);
	sv.kill_after_ms = 5000;
	accept_one(&sv);
	pid = spawn_sleeper(&sv, root, 1000);
	is_int(tlshd_supervisor_police(&sv, 2000), 4000, "poll() wakes when the worker is due");
	ok(kill(pid, 0) == 0, "a worker is not killed before its time");
	tlshd_supervisor_police(&sv, 6000);
	settle(&sv, 6000);
	ok(sv.crashed == 1 && orphans == 1, "an overdue worker is killed%s",
	   root ? " (running as uid 65534)" : "");
	is_int(orphan_status, ETIMEDOUT, "its request gets DONE with ETIMEDOUT");
	/* Stopping with a request being served: its worker could not
	 * report to a parent that is gone. */
	accept_one(&sv);
	pid = spawn_sleeper(&sv, false, 7000);
	tlshd_supervisor_done(&sv);
	ok(orphans == 2 && orphan_status == ESHUTDOWN,
	   "stopping, the parent DONEs a request still being served with ESHUTDOWN");
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
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
		accept_one(&sv2);
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

/* A worker that reported its outcome (the parent DONEd it) is finishing: it
 * is counted by its report and no longer as running, keeps its slot
 * until reaped, is still killed past its time, and its request gets no
 * second DONE. */
static void test_served(void)
{
	struct tlshd_supervisor sv;
	pid_t pid;
	int fd;

	sv_init(&sv, 4);
	tlshd_supervisor_set_spares(&sv, 0, 2, 0);
	accept_one(&sv);
	pid = spawn_sleeper(&sv, false, 0);
	fd = sv.slots[0].job ? sv.slots[0].job->req.sockfd : -1;
	is_int(fill_spares(&sv, 10), 0, "while a worker runs, the burst's spares wait");
	tlshd_supervisor_served(&sv, pid, 0, 0);
	ok(sv.running == 0 && sv.procs == 1 && sv.succeeded == 1,
	   "once it reported success, it is counted, no longer runs, but keeps its slot "
	   "(succeeded %llu, running %u, procs %u)", sv.succeeded, sv.running, sv.procs);
	ok(fd >= 0 && fcntl(fd, F_GETFD) < 0 && !sv.slots[0].job,
	   "and the parent lets its copy of the request's socket go");
	is_int(fill_spares(&sv, 10), 0, "the burst's spares still wait for its exit");
	tlshd_supervisor_served(&sv, pid, 0, 0);
	tlshd_supervisor_served(&sv, 1, 0, 0);
	ok(sv.running == 0 && sv.finishing == 1 && sv.succeeded == 1,
	   "a second report, or a stranger's, changes nothing (running %u, finishing %u, "
	   "succeeded %llu)", sv.running, sv.finishing, sv.succeeded);

	sv.kill_after_ms = 5000;
	tlshd_supervisor_police(&sv, 6000);
	settle(&sv, 6000);
	ok(sv.crashed == 1 && sv.succeeded == 1 && orphans == 0 && sv.finishing == 0 &&
	   sv.failing == 0, "one that hangs in its exit is killed; no DONE from the parent, no "
	   "back-off (crashed %llu, orphans %u, finishing %u)", sv.crashed, orphans,
	   sv.finishing);
	is_int(fill_spares(&sv, 6000), 2, "once it is gone, the burst's spares are forked");
	for (unsigned int i = 0; i < sv.max_workers; i++)
		if (sv.slots[i].state == TLSHD_SLOT_SPARE)
			pid = sv.slots[i].pid;
	tlshd_supervisor_served(&sv, pid, 0, 0);
	ok(sv.finishing == 0 && sv.spares == 2 && sv.succeeded == 1,
	   "a spare's report changes nothing");

	accept_one(&sv);
	ok(tlshd_supervisor_dispatch(&sv, 7000), "the next request goes to a spare");
	for (unsigned int i = 0; i < sv.max_workers; i++)
		if (sv.slots[i].state == TLSHD_SLOT_RUNNING)
			pid = sv.slots[i].pid;
	tlshd_supervisor_served(&sv, pid, ECONNRESET, 0);
	is_int(sv.failed, 1, "a report of failure counts as failed");
	tlshd_supervisor_retire_spares(&sv);
	settle(&sv, 7000);
	ok(sv.succeeded == 1 && sv.failed == 1 && sv.crashed == 1 && orphans == 0 &&
	   sv.running == 0, "and its exit does not count it again (succeeded %llu, failed %llu, "
	   "crashed %llu, orphans %u, running %u)", sv.succeeded, sv.failed, sv.crashed, orphans,
	   sv.running);
	tlshd_supervisor_done(&sv);
}

/* A worker forked with a go socket for its request that, once served,
 * waits there for leave to exit, as worker.c does. */
static pid_t spawn_parker(struct tlshd_supervisor *sv, long long now)
{
	int go[2];
	pid_t pid;
	char c;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, go) < 0)
		abort();
	pid = fork();
	if (pid == 0) {
		tlshd_supervisor_child(sv, NULL);
		close(go[1]);
		alarm(10);
		while (recv(go[0], &c, 1, 0) < 0 && errno == EINTR)
			;
		_exit(TLSHD_WORKER_SUCCEEDED);
	}
	close(go[0]);
	tlshd_supervisor_started(sv, pid, go[1], now);
	return pid;
}

/* Whether @pid has not exited (it is not reaped here). */
static bool alive(pid_t pid)
{
	siginfo_t si = { 0 };

	usleep(20000);
	return waitid(P_PID, pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == 0;
}

/* Served workers wait to exit (parked) until nothing has run or waited
 * for TLSHD_EXIT_QUIET_MS, at most TLSHD_EXIT_PARK_MAX_MS, at most
 * TLSHD_EXIT_PARK_MAX of them, and not while a request needs a slot;
 * the burst's spares come before their exits. */
static void test_parked(void)
{
	const long long q = TLSHD_EXIT_QUIET_MS, max_ms = TLSHD_EXIT_PARK_MAX_MS;
	struct tlshd_supervisor sv;
	unsigned int n;
	pid_t pid, pid2, busy, oldest = 0;

	sv_init(&sv, TLSHD_EXIT_PARK_MAX + 4);
	tlshd_supervisor_set_spares(&sv, 0, 2, 0);
	accept_one(&sv);
	pid = spawn_parker(&sv, 0);
	accept_one(&sv);
	busy = spawn_sleeper(&sv, false, 0);
	tlshd_supervisor_served(&sv, pid, 0, 100);
	ok(sv.parked == 1 && sv.finishing == 1 && sv.succeeded == 1 && sv.running == 1,
	   "a served worker with a go socket is parked (parked %u, finishing %u)", sv.parked,
	   sv.finishing);
	is_int(tlshd_supervisor_idle(&sv, 100 + max_ms - 1), 1,
	   "while another request runs, it waits, at most TLSHD_EXIT_PARK_MAX_MS");
	ok(alive(pid) && sv.parked == 1, "and is alive");
	tlshd_supervisor_idle(&sv, 100 + max_ms);
	wait_dead(pid);
	tlshd_supervisor_reap(&sv, 100 + max_ms);
	ok(sv.parked == 0 && sv.finishing == 0 && sv.succeeded == 1 && sv.procs == 1,
	   "past that, it exits, counted once (succeeded %llu, procs %u)", sv.succeeded,
	   sv.procs);

	/* Quiet: the exits are let go TLSHD_EXIT_QUIET_MS after the last
	 * request ended, one at a time. */
	accept_one(&sv);
	pid = spawn_parker(&sv, 3000);
	tlshd_supervisor_served(&sv, pid, 0, 3000);
	accept_one(&sv);
	pid2 = spawn_parker(&sv, 3000);
	tlshd_supervisor_served(&sv, pid2, 0, 3001);
	tlshd_supervisor_idle(&sv, 3000);
	kill(busy, SIGKILL);
	settle_procs(&sv, 2, 3010);
	ok(sv.crashed == 1 && orphans == 1, "(the other worker ended, without DONE)");
	sv.failing = 0;
	sv.hold_until_ms = 0;
	is_int(tlshd_supervisor_idle(&sv, 3010), TLSHD_SPARE_QUIET_MS, "once no request "
	       "runs, poll() wakes TLSHD_SPARE_QUIET_MS later, for the burst's spares");
	ok(!tlshd_supervisor_should_spare(&sv, 3010 + TLSHD_SPARE_QUIET_MS - 1), "not before");
	tlshd_supervisor_idle(&sv, 3010 + q);
	ok(sv.parked == 2, "they come before the exits");
	is_int(fill_spares(&sv, 3010 + q), 2, "and are forked while the parked ones sleep");
	is_int(tlshd_supervisor_idle(&sv, 3010 + q - 1), 1, "poll() wakes for the exits "
	       "TLSHD_EXIT_QUIET_MS after the last request");
	ok(alive(pid) && alive(pid2) && sv.parked == 2, "not before");
	is_int(tlshd_supervisor_idle(&sv, 3010 + q), (int)(3001 + max_ms - 3010 - q),
	       "then the oldest is let go (the timer left is the other's age limit: the "
	       "reap wakes the loop)");
	ok(sv.parked == 1 && alive(pid2), "the other waits for its exit");
	wait_dead(pid);
	tlshd_supervisor_reap(&sv, 3010 + q);
	tlshd_supervisor_idle(&sv, 3010 + q);
	settle_procs(&sv, 2, 3010 + q);
	ok(sv.parked == 0 && sv.finishing == 0 && sv.procs == 2, "then the next goes");
	tlshd_supervisor_retire_spares(&sv);
	settle(&sv, 3010 + q);

	/* More than TLSHD_EXIT_PARK_MAX: the oldest go. */
	for (n = 0; n <= TLSHD_EXIT_PARK_MAX; n++) {
		accept_one(&sv);
		pid = spawn_parker(&sv, 4000);
		if (!n)
			oldest = pid;
		tlshd_supervisor_served(&sv, pid, 0, 4000 + n);
	}
	accept_one(&sv);
	busy = spawn_sleeper(&sv, false, 4100);
	tlshd_supervisor_idle(&sv, 4100);
	wait_dead(oldest);
	is_int(sv.parked, TLSHD_EXIT_PARK_MAX, "past TLSHD_EXIT_PARK_MAX parked, the oldest "
	       "exits");

	/* A request that needs a slot a parked worker holds. */
	while (sv.procs < sv.max_workers) {
		accept_one(&sv);
		spawn_parker(&sv, 4200);
	}
	accept_one(&sv);
	ok(!tlshd_supervisor_should_fork(&sv, 4200), "(every slot is taken)");
	tlshd_supervisor_idle(&sv, 4200);
	is_int(sv.parked, 0, "a request waits for a slot: every parked worker exits");
	kill(busy, SIGKILL);
	/* (The running ones exit when their go sockets close.) */
	tlshd_supervisor_done(&sv);
	while (waitpid(-1, NULL, 0) > 0)
		;
}

int main(void)
{
	/* A supervisor that never lets a child go would hang a wait here:
	 * fail instead. */
	alarm(120);
	tlshd_log_open(TLSHD_LOG_STDERR);
	test_cap_and_burst();
	test_drain();
	test_crash();
	test_child_sockets();
	test_failure_loop_backs_off();
	test_spares();
	test_spare_burst();
	test_spare_dies();
	test_overdue();
	test_served();
	test_parked();
	return tap_done();
}
