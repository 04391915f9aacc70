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
	if (sv->draining)
		return;
	sv->draining = true;
	sv->wanted++;
}

bool tlshd_supervisor_should_fork(const struct tlshd_supervisor *sv)
{
	return sv->wanted > 0 && sv->running < sv->max_workers;
}

void tlshd_supervisor_started(struct tlshd_supervisor *sv, pid_t pid)
{
	for (unsigned int i = 0; i < sv->max_workers; i++) {
		if (sv->slots[i].pid)
			continue;
		sv->slots[i].pid = pid;
		sv->slots[i].killed = false;
		sv->slots[i].started_ms = tlshd_util_now_ms();
		break;
	}
	sv->running++;
	sv->wanted--;
}

static void supervisor_account(struct tlshd_supervisor *sv, pid_t pid, int status)
{
	if (WIFSIGNALED(status)) {
		sv->crashed++;
		tlshd_err("worker %d died of signal %d (%s); its request gets no DONE",
			  (int)pid, WTERMSIG(status), strsignal(WTERMSIG(status)));
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
		return;
	default:
		sv->crashed++;
		tlshd_err("worker %d could not complete its request (exit %d)",
			  (int)pid, WEXITSTATUS(status));
		break;
	}
	if (sv->draining)
		sv->wanted++;
}

void tlshd_supervisor_reap(struct tlshd_supervisor *sv)
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
		supervisor_account(sv, pid, status);
	}
}

int tlshd_supervisor_police(struct tlshd_supervisor *sv)
{
	long long next = -1, now = tlshd_util_now_ms();

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
	return (int)next;
}
