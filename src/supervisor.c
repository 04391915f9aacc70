// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Worker supervision. Every READY notification means one request is
 * queued in the kernel; each gets a worker, at most max_workers at a
 * time. Requests beyond the cap stay counted in "wanted" and get a worker
 * as soon as one exits, so a burst is served late but never dropped (the
 * kernel keeps them queued until ACCEPT).
 *
 * Spares take the fork out of a request's path: while nothing waits, up
 * to max_spares workers are forked ahead and wait on a pipe each; a READY
 * goes to an idle spare first, and only when none is left is a worker
 * forked for it.
 */
#include "build-config.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "supervisor.h"
#include "util.h"
#include "worker.h"

int tlshd_supervisor_init(struct tlshd_supervisor *sv, unsigned int max_workers)
{
	memset(sv, 0, sizeof(*sv));
	sv->max_workers = max_workers;
	sv->kill_after_ms = TLSHD_WORKER_KILL_AFTER_S * 1000LL;
	sv->slots = calloc(max_workers, sizeof(*sv->slots));
	if (!sv->slots)
		return -ENOMEM;
	for (unsigned int i = 0; i < max_workers; i++)
		sv->slots[i].go_fd = -1;
	return 0;
}

void tlshd_supervisor_set_spares(struct tlshd_supervisor *sv, unsigned int n)
{
	sv->max_spares = n < sv->max_workers ? n : sv->max_workers;
}

void tlshd_supervisor_done(struct tlshd_supervisor *sv)
{
	tlshd_supervisor_retire_spares(sv);
	free(sv->slots);
	sv->slots = NULL;
}

void tlshd_supervisor_child(struct tlshd_supervisor *sv)
{
	for (unsigned int i = 0; i < sv->max_workers; i++) {
		if (sv->slots[i].go_fd >= 0)
			close(sv->slots[i].go_fd);
		sv->slots[i].go_fd = -1;
	}
}

bool tlshd_supervisor_has(const struct tlshd_supervisor *sv, pid_t pid)
{
	for (unsigned int i = 0; i < sv->max_workers; i++)
		if (pid > 0 && sv->slots[i].pid == pid && sv->slots[i].state != TLSHD_SLOT_FREE)
			return true;
	return false;
}

static struct tlshd_worker_slot *supervisor_free_slot(struct tlshd_supervisor *sv)
{
	for (unsigned int i = 0; i < sv->max_workers; i++)
		if (!sv->slots[i].pid)
			return &sv->slots[i];
	return NULL;
}

/* The slot of an idle spare, marked retired, its pipe closed. */
static void supervisor_retire(struct tlshd_supervisor *sv, struct tlshd_worker_slot *w)
{
	close(w->go_fd);
	w->go_fd = -1;
	w->state = TLSHD_SLOT_RETIRED;
	sv->spares--;
}

void tlshd_supervisor_retire_spares(struct tlshd_supervisor *sv)
{
	for (unsigned int i = 0; i < sv->max_workers; i++)
		if (sv->slots[i].state == TLSHD_SLOT_SPARE)
			supervisor_retire(sv, &sv->slots[i]);
}

void tlshd_supervisor_ready(struct tlshd_supervisor *sv, unsigned int n)
{
	sv->wanted += n;
}

void tlshd_supervisor_drain(struct tlshd_supervisor *sv)
{
	/* A drain already under way has a worker wanted or running; one
	 * that lost its worker (killed, crashed) gets a new one. */
	if (sv->draining && sv->wanted > 0)
		return;
	sv->draining = true;
	sv->wanted++;
}

bool tlshd_supervisor_should_fork(const struct tlshd_supervisor *sv, long long now)
{
	/* (An idle spare is dispatched instead, see tlshd_supervisor_dispatch.) */
	return sv->wanted > 0 && sv->spares == 0 && sv->procs < sv->max_workers &&
	       now >= sv->hold_until_ms;
}

static void supervisor_record(struct tlshd_supervisor *sv, pid_t pid, int go_fd, long long now)
{
	struct tlshd_worker_slot *w = supervisor_free_slot(sv);

	/* (Never NULL: procs < max_workers was checked before the fork.) */
	if (!w)
		return;
	w->pid = pid;
	w->go_fd = go_fd;
	w->state = go_fd >= 0 ? TLSHD_SLOT_SPARE : TLSHD_SLOT_RUNNING;
	w->killed = false;
	w->started_ms = now;
	sv->procs++;
}

void tlshd_supervisor_started(struct tlshd_supervisor *sv, pid_t pid, long long now)
{
	supervisor_record(sv, pid, -1, now);
	sv->running++;
	sv->wanted--;
}

bool tlshd_supervisor_should_spare(const struct tlshd_supervisor *sv, long long now)
{
	return sv->wanted == 0 && sv->spares < sv->max_spares && sv->procs < sv->max_workers &&
	       now >= sv->hold_until_ms;
}

void tlshd_supervisor_spare_started(struct tlshd_supervisor *sv, pid_t pid, int go_fd,
				    long long now)
{
	supervisor_record(sv, pid, go_fd, now);
	sv->spares++;
}

bool tlshd_supervisor_dispatch(struct tlshd_supervisor *sv, long long ready_us, long long now)
{
	/* After workers that could not serve, the next one waits, spare
	 * or not. */
	if (now < sv->hold_until_ms)
		return false;
	for (unsigned int i = 0; i < sv->max_workers && sv->wanted > 0; i++) {
		struct tlshd_worker_slot *w = &sv->slots[i];
		ssize_t n;

		if (w->state != TLSHD_SLOT_SPARE)
			continue;
		/* A spare that died meanwhile: EPIPE (SIGPIPE is ignored);
		 * it is reaped and accounted for later. */
		n = write(w->go_fd, &ready_us, sizeof(ready_us));
		supervisor_retire(sv, w);
		if (n != sizeof(ready_us))
			continue;
		w->state = TLSHD_SLOT_RUNNING;
		w->started_ms = now;
		sv->running++;
		sv->wanted--;
		return true;
	}
	return false;
}

/* A worker reached the kernel and answered (or found nothing to do). */
static void supervisor_served(struct tlshd_supervisor *sv)
{
	if (sv->failing >= TLSHD_SUPERVISOR_FAILING_WARN)
		tlshd_notice("workers are serving requests again");
	sv->failing = 0;
	sv->hold_until_ms = 0;
}

/*
 * A worker could not serve. Whatever made it fail (no CAP_NET_ADMIN, no
 * netlink socket, a crash) will likely hit the next one too: hold the
 * next fork back, longer each time, and say so once.
 */
static void supervisor_unserved(struct tlshd_supervisor *sv, long long now)
{
	long long backoff = TLSHD_SUPERVISOR_BACKOFF_MIN_MS;

	for (unsigned int i = 0; i < sv->failing && backoff < TLSHD_SUPERVISOR_BACKOFF_MAX_MS; i++)
		backoff *= 2;
	if (backoff > TLSHD_SUPERVISOR_BACKOFF_MAX_MS)
		backoff = TLSHD_SUPERVISOR_BACKOFF_MAX_MS;
	sv->failing++;
	sv->hold_until_ms = now + backoff;
	if (sv->failing == TLSHD_SUPERVISOR_FAILING_WARN)
		tlshd_warn("%u workers in a row could not serve their request (see above); "
			   "retrying with a growing delay, up to %d s", sv->failing,
			   TLSHD_SUPERVISOR_BACKOFF_MAX_MS / 1000);
	/* Its request may still be queued in the kernel, which sends no
	 * second READY for it (and a drain must go on until a worker finds
	 * the queue empty): another worker will look. */
	sv->wanted++;
}

static void supervisor_account(struct tlshd_supervisor *sv, pid_t pid, int status,
			       long long now)
{
	if (WIFSIGNALED(status)) {
		sv->crashed++;
		tlshd_err("worker %d died of signal %d (%s); its request gets no DONE",
			  (int)pid, WTERMSIG(status), strsignal(WTERMSIG(status)));
		supervisor_unserved(sv, now);
		return;
	}
	switch (WEXITSTATUS(status)) {
	case TLSHD_WORKER_SUCCEEDED:
		sv->succeeded++;
		break;
	case TLSHD_WORKER_FAILED:
		sv->failed++;
		break;
	case TLSHD_WORKER_IDLE:
		/* The queue was empty at that instant: anything we may
		 * have missed has been served. */
		sv->idle++;
		sv->draining = false;
		supervisor_served(sv);
		return;
	default:
		sv->crashed++;
		tlshd_err("worker %d could not complete its request (exit %d)",
			  (int)pid, WEXITSTATUS(status));
		supervisor_unserved(sv, now);
		return;
	}
	supervisor_served(sv);
	if (sv->draining)
		sv->wanted++;
}

/* A spare exited before it had a request: as it was told (retired), or
 * it could not get ready, which the next one would likely not either. */
static void supervisor_spare_ended(struct tlshd_supervisor *sv, struct tlshd_worker_slot *w,
				   int status, long long now)
{
	if (w->state == TLSHD_SLOT_SPARE)
		supervisor_retire(sv, w);
	else if (WIFEXITED(status) && WEXITSTATUS(status) == TLSHD_WORKER_RETIRED)
		return;
	sv->crashed++;
	if (WIFSIGNALED(status))
		tlshd_err("spare worker %d died of signal %d (%s) before it had a request",
			  (int)w->pid, WTERMSIG(status), strsignal(WTERMSIG(status)));
	else
		tlshd_err("spare worker %d exited (%d) before it had a request", (int)w->pid,
			  WEXITSTATUS(status));
	/* As for a worker that could not serve, minus a request to redo. */
	supervisor_unserved(sv, now);
	sv->wanted--;
}

void tlshd_supervisor_reap(struct tlshd_supervisor *sv, long long now)
{
	pid_t pid;
	int status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		struct tlshd_worker_slot *w = NULL;

		for (unsigned int i = 0; i < sv->max_workers && !w; i++)
			if (sv->slots[i].pid == pid)
				w = &sv->slots[i];
		if (!w)
			continue;	/* not ours */
		sv->procs--;
		if (w->state == TLSHD_SLOT_RUNNING) {
			sv->running--;
			supervisor_account(sv, pid, status, now);
		} else {
			supervisor_spare_ended(sv, w, status, now);
		}
		w->pid = 0;
		w->state = TLSHD_SLOT_FREE;
	}
}

int tlshd_supervisor_police(struct tlshd_supervisor *sv, long long now)
{
	long long next = -1;

	for (unsigned int i = 0; i < sv->max_workers; i++) {
		struct tlshd_worker_slot *w = &sv->slots[i];
		long long left;

		if (w->state != TLSHD_SLOT_RUNNING || w->killed)
			continue;
		left = sv->kill_after_ms - (now - w->started_ms);
		if (left <= 0) {
			tlshd_err("worker %d still running after %lld ms, killing it",
				  (int)w->pid, now - w->started_ms);
			/* (It runs as another uid: this takes CAP_KILL.) */
			if (kill(w->pid, SIGKILL) < 0)
				tlshd_log_errno(LOG_ERR, -errno, "cannot kill worker %d, it keeps its "
						"slot until it ends", (int)w->pid);
			w->killed = true;
			continue;
		}
		if (next < 0 || left < next)
			next = left;
	}
	if (sv->wanted > 0 && sv->hold_until_ms > now &&
	    (next < 0 || sv->hold_until_ms - now < next))
		next = sv->hold_until_ms - now;
	return (int)next;
}
