// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Worker supervision. Every READY notification means one request is
 * queued in the kernel; each gets a worker, at most max_workers at a
 * time. Requests beyond the cap stay counted in "wanted" and get a worker
 * as soon as one exits, so a burst is served late but never dropped (the
 * kernel keeps them queued until ACCEPT).
 */
#include "build-config.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "log.h"
#include "supervisor.h"
#include "util.h"
#include "worker.h"

int tlshd_supervisor_init(struct tlshd_supervisor *sv, unsigned int max_workers)
{
	memset(sv, 0, sizeof(*sv));
	sv->max_workers = max_workers;
	sv->slots = calloc(max_workers, sizeof(*sv->slots));
	return sv->slots ? 0 : -ENOMEM;
}

void tlshd_supervisor_done(struct tlshd_supervisor *sv)
{
	free(sv->slots);
	sv->slots = NULL;
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
	return sv->wanted > 0 && sv->running < sv->max_workers && now >= sv->hold_until_ms;
}

void tlshd_supervisor_started(struct tlshd_supervisor *sv, pid_t pid, long long now)
{
	for (unsigned int i = 0; i < sv->max_workers; i++) {
		if (sv->slots[i].pid)
			continue;
		sv->slots[i].pid = pid;
		sv->slots[i].killed = false;
		sv->slots[i].started_ms = now;
		break;
	}
	sv->running++;
	sv->wanted--;
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

void tlshd_supervisor_reap(struct tlshd_supervisor *sv, long long now)
{
	pid_t pid;
	int status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (unsigned int i = 0; i < sv->max_workers; i++) {
			if (sv->slots[i].pid != pid)
				continue;
			sv->slots[i].pid = 0;
			sv->running--;
			break;
		}
		supervisor_account(sv, pid, status, now);
	}
}

int tlshd_supervisor_police(struct tlshd_supervisor *sv, long long now)
{
	long long next = -1;

	for (unsigned int i = 0; i < sv->max_workers; i++) {
		struct tlshd_worker_slot *w = &sv->slots[i];
		long long left;

		if (!w->pid || w->killed)
			continue;
		left = TLSHD_WORKER_KILL_AFTER_S * 1000LL - (now - w->started_ms);
		if (left <= 0) {
			tlshd_err("worker %d still running after %d s, killing it",
				  (int)w->pid, TLSHD_WORKER_KILL_AFTER_S);
			kill(w->pid, SIGKILL);
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
