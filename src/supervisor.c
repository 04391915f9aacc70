// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Worker supervision. Every READY notification means one request is
 * queued in the kernel; the parent ACCEPTs it at once, so that the
 * kernel's small pending cap (it refuses requests past it) is not spent
 * on requests waiting for a fork, and keeps it here until a worker takes
 * it, at most max_workers waiting or running at a time. Requests beyond
 * that stay in the kernel, counted in "announced", and are ACCEPTed as
 * workers end: a burst is served late but never dropped.
 *
 * Spares take the fork out of a request's path: while nothing waits,
 * min_spares workers are forked ahead and wait on a socket each; a
 * request goes to an idle spare first, and only when none is left is a
 * worker forked for it. While the daemon is busy (since start-up, and
 * until a quiet minute), more spares, up to burst_spares, are forked
 * once no request has run for a moment (TLSHD_SPARE_QUIET_MS) and no
 * worker exits: on one CPU a fork made beside a handshake slows it as
 * much as a fork made for it, and a fork the parent is in delays the
 * ACCEPT of the next request, so the pool grows only in the gaps between
 * bursts, and the next burst's requests find workers ready. A worker
 * finishes once it has reported its outcome (the parent DONEs it then):
 * what is left is its exit, counted apart. Exits too wait for a gap: a served
 * worker is parked on its socket until nothing has run for a moment and
 * the spares are there (tlshd_supervisor_idle).
 *
 * The parent keeps its copy of each request's socket until the worker
 * has reported its outcome or ended: DONE names the socket, so the
 * parent sends it, for the outcome reported, or through the orphan
 * function for a worker that ended without one (a crash, a kill).
 */
#include "build-config.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "keyring.h"
#include "log.h"
#include "supervisor.h"
#include "util.h"
#include "worker.h"

int tlshd_supervisor_init(struct tlshd_supervisor *sv, unsigned int max_workers)
{
	memset(sv, 0, sizeof(*sv));
	sv->max_workers = max_workers;
	sv->kill_after_ms = TLSHD_WORKER_KILL_AFTER_S * 1000LL;
	sv->exit_quiet_ms = TLSHD_EXIT_QUIET_MS;
	sv->park_max_ms = TLSHD_EXIT_PARK_MAX_MS;
	sv->slots = calloc(max_workers, sizeof(*sv->slots));
	sv->queue = calloc(max_workers, sizeof(*sv->queue));
	if (!sv->slots || !sv->queue) {
		free(sv->slots);
		free(sv->queue);
		return -ENOMEM;
	}
	for (unsigned int i = 0; i < max_workers; i++)
		sv->slots[i].go_fd = -1;
	return 0;
}

void tlshd_supervisor_set_spares(struct tlshd_supervisor *sv, unsigned int min,
				 unsigned int burst, long long now)
{
	sv->min_spares = min < sv->max_workers ? min : sv->max_workers;
	sv->burst_spares = burst < sv->max_workers ? burst : sv->max_workers;
	if (sv->burst_spares < sv->min_spares)
		sv->burst_spares = sv->min_spares;
	/* Start-up counts as busy: consumers connect at boot. */
	sv->busy_until_ms = now + TLSHD_SPARE_BURST_IDLE_MS;
}

/* A request went to a worker at @now. */
static void supervisor_busy(struct tlshd_supervisor *sv, long long now)
{
	sv->busy_until_ms = now + TLSHD_SPARE_BURST_IDLE_MS;
}

/* The end of a request's stay here: DONE with @status first when its
 * worker could not send one (0: it did). */
static void supervisor_release(struct tlshd_supervisor *sv, pid_t pid, struct tlshd_job *job,
			       int status)
{
	if (status && sv->orphan)
		sv->orphan(sv->orphan_data, pid, job, status);
	if (job->req.sockfd >= 0)
		close(job->req.sockfd);
	free(job);
}

/* Removes and returns the oldest waiting request. */
static struct tlshd_job *supervisor_pop(struct tlshd_supervisor *sv)
{
	struct tlshd_job *job;

	if (!sv->queued)
		return NULL;
	job = sv->queue[sv->queue_head];
	sv->queue[sv->queue_head] = NULL;
	sv->queue_head = (sv->queue_head + 1) % sv->max_workers;
	sv->queued--;
	return job;
}

/* A worker with a request no longer waits on its socket for leave to
 * exit (it may not have asked yet: it will not wait then). */
static void supervisor_let_go(struct tlshd_supervisor *sv, struct tlshd_worker_slot *w)
{
	if ((w->state != TLSHD_SLOT_RUNNING && w->state != TLSHD_SLOT_FINISHING) || w->go_fd < 0)
		return;
	close(w->go_fd);
	w->go_fd = -1;
	if (w->state == TLSHD_SLOT_FINISHING)
		sv->parked--;
}

void tlshd_supervisor_done(struct tlshd_supervisor *sv)
{
	struct tlshd_job *job;

	tlshd_supervisor_retire_spares(sv);
	while ((job = supervisor_pop(sv)))
		supervisor_release(sv, 0, job, ESHUTDOWN);
	/* Requests still being served get their DONE here (their workers
	 * could not report to us any more), and parked workers exit. */
	for (unsigned int i = 0; i < sv->max_workers; i++) {
		if (sv->slots[i].job)
			supervisor_release(sv, 0, sv->slots[i].job, ESHUTDOWN);
		sv->slots[i].job = NULL;
		supervisor_let_go(sv, &sv->slots[i]);
	}
	free(sv->queue);
	free(sv->slots);
	sv->queue = NULL;
	sv->slots = NULL;
}

static void supervisor_close_job(const struct tlshd_job *job, const struct tlshd_job *keep)
{
	if (job && job != keep && job->req.sockfd >= 0)
		close(job->req.sockfd);
}

void tlshd_supervisor_child(struct tlshd_supervisor *sv, const struct tlshd_job *keep)
{
	for (unsigned int i = 0; i < sv->max_workers; i++) {
		if (sv->slots[i].go_fd >= 0)
			close(sv->slots[i].go_fd);
		sv->slots[i].go_fd = -1;
		supervisor_close_job(sv->slots[i].job, keep);
		supervisor_close_job(sv->queue[i], keep);
	}
}

const struct tlshd_job *tlshd_supervisor_job(const struct tlshd_supervisor *sv, pid_t pid)
{
	for (unsigned int i = 0; i < sv->max_workers; i++)
		if (pid > 0 && sv->slots[i].pid == pid && sv->slots[i].state == TLSHD_SLOT_RUNNING)
			return sv->slots[i].job;
	return NULL;
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

/* The slot of an idle spare, marked retired, its socket closed. */
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
	sv->announced += n;
}

void tlshd_supervisor_drain(struct tlshd_supervisor *sv)
{
	sv->draining = true;
}

bool tlshd_supervisor_should_accept(const struct tlshd_supervisor *sv, long long now)
{
	return (sv->announced > 0 || sv->draining) &&
	       sv->queued + sv->running < sv->max_workers && now >= sv->hold_until_ms;
}

void tlshd_supervisor_accepted(struct tlshd_supervisor *sv, struct tlshd_job *job)
{
	/* (Never full: should_accept checked queued + running.) */
	if (sv->queued >= sv->max_workers) {
		supervisor_release(sv, 0, job, EBUSY);
		return;
	}
	sv->queue[(sv->queue_head + sv->queued) % sv->max_workers] = job;
	sv->queued++;
	if (sv->announced > 0)
		sv->announced--;
}

struct tlshd_job *tlshd_supervisor_next(const struct tlshd_supervisor *sv)
{
	return sv->queued ? sv->queue[sv->queue_head] : NULL;
}

/* A worker got through to its report. */
static void supervisor_served(struct tlshd_supervisor *sv)
{
	if (sv->failing >= TLSHD_SUPERVISOR_FAILING_WARN)
		tlshd_notice("workers are serving requests again");
	sv->failing = 0;
	sv->hold_until_ms = 0;
}

/*
 * A worker or an ACCEPT failed. Whatever made it fail (no CAP_NET_ADMIN,
 * no netlink socket, a crash) will likely hit the next one too: hold the
 * next ACCEPT and fork back, longer each time, and say so once.
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
		tlshd_warn("%u workers or ACCEPTs in a row failed (see above); retrying with a "
			   "growing delay, up to %d s", sv->failing,
			   TLSHD_SUPERVISOR_BACKOFF_MAX_MS / 1000);
}

void tlshd_supervisor_accept_failed(struct tlshd_supervisor *sv, int err, long long now)
{
	if (err == -EAGAIN) {
		/* The kernel's queue is empty: anything we may have missed
		 * has been served. */
		sv->announced = 0;
		sv->draining = false;
		return;
	}
	/* The request, if any, is still announced: ACCEPT again later. */
	supervisor_unserved(sv, now);
}

bool tlshd_supervisor_should_fork(const struct tlshd_supervisor *sv, long long now)
{
	/* (An idle spare is dispatched instead, see tlshd_supervisor_dispatch.) */
	return sv->queued > 0 && sv->spares == 0 && sv->procs < sv->max_workers &&
	       now >= sv->hold_until_ms;
}

static struct tlshd_worker_slot *supervisor_record(struct tlshd_supervisor *sv, pid_t pid,
						   int go_fd, enum tlshd_slot_state state,
						   long long now)
{
	struct tlshd_worker_slot *w = supervisor_free_slot(sv);

	/* (Never NULL: procs < max_workers was checked before the fork.) */
	if (!w)
		return NULL;
	w->pid = pid;
	w->go_fd = go_fd;
	w->state = state;
	w->killed = false;
	w->started_ms = now;
	sv->procs++;
	return w;
}

void tlshd_supervisor_started(struct tlshd_supervisor *sv, pid_t pid, int go_fd, long long now)
{
	struct tlshd_worker_slot *w = supervisor_record(sv, pid, go_fd, TLSHD_SLOT_RUNNING, now);

	if (!w)
		return;
	w->job = supervisor_pop(sv);
	sv->running++;
	supervisor_busy(sv, now);
}

bool tlshd_supervisor_should_spare(const struct tlshd_supervisor *sv, long long now)
{
	if (sv->queued > 0 || sv->procs >= sv->max_workers || now < sv->hold_until_ms)
		return false;
	if (sv->spares < sv->min_spares)
		return true;
	/* The burst's: on idle CPU only, as far as we can tell: no request
	 * has run or waited for a moment (tlshd_supervisor_idle() keeps
	 * count), and no worker is exiting (parked ones sleep). */
	return sv->spares < sv->burst_spares && sv->quiet &&
	       now - sv->quiet_since_ms >= TLSHD_SPARE_QUIET_MS &&
	       sv->finishing == sv->parked && now < sv->busy_until_ms;
}

void tlshd_supervisor_spare_started(struct tlshd_supervisor *sv, pid_t pid, int go_fd,
				    key_serial_t job_ring, long long now)
{
	struct tlshd_worker_slot *w = supervisor_record(sv, pid, go_fd, TLSHD_SLOT_SPARE, now);

	if (!w)
		return;
	w->job_ring = job_ring;
	sv->spares++;
}

/* The parent lets a spare's job keyring go once the spare has its
 * request, or has ended: the spare holds its own link by then. */
static void supervisor_drop_ring(struct tlshd_worker_slot *w)
{
	tlshd_keyring_job_drop(w->job_ring);
	w->job_ring = 0;
}

bool tlshd_supervisor_dispatch(struct tlshd_supervisor *sv, long long now)
{
	/* After failures, the next worker waits, spare or not. */
	if (now < sv->hold_until_ms)
		return false;
	for (unsigned int i = 0; i < sv->max_workers && sv->queued > 0; i++) {
		struct tlshd_worker_slot *w = &sv->slots[i];
		int r;

		if (w->state != TLSHD_SLOT_SPARE)
			continue;
		/* A spare that died meanwhile: EPIPE; it is reaped and
		 * accounted for later. */
		r = tlshd_worker_hand(w->go_fd, w->job_ring, tlshd_supervisor_next(sv));
		supervisor_drop_ring(w);
		if (r < 0) {
			supervisor_retire(sv, w);
			continue;
		}
		/* Its socket stays: it waits there to exit once served. */
		sv->spares--;
		w->state = TLSHD_SLOT_RUNNING;
		w->started_ms = now;
		w->job = supervisor_pop(sv);
		sv->running++;
		supervisor_busy(sv, now);
		return true;
	}
	return false;
}

void tlshd_supervisor_served(struct tlshd_supervisor *sv, pid_t pid, int status,
			     long long now)
{
	for (unsigned int i = 0; i < sv->max_workers; i++) {
		struct tlshd_worker_slot *w = &sv->slots[i];

		if (pid > 0 && w->pid == pid && w->state == TLSHD_SLOT_RUNNING) {
			w->state = TLSHD_SLOT_FINISHING;
			w->served_ms = now;
			sv->running--;
			sv->finishing++;
			if (w->go_fd >= 0)
				sv->parked++;
			/* Its DONE is out: no copy of the socket is kept
			 * for it, and a connection the consumer drops
			 * closes now, not at the reap. */
			if (w->job)
				supervisor_release(sv, pid, w->job, 0);
			w->job = NULL;
			if (status)
				sv->failed++;
			else
				sv->succeeded++;
			supervisor_served(sv);
			return;
		}
	}
}

/* A worker that ended abnormally after its report, so after its DONE:
 * its request was served; the crash is still said. */
static void supervisor_finished_badly(struct tlshd_supervisor *sv,
				      const struct tlshd_worker_slot *w, int status)
{
	sv->crashed++;
	if (WIFSIGNALED(status))
		tlshd_err("worker %d died of signal %d (%s) after its report", (int)w->pid,
			  WTERMSIG(status), strsignal(WTERMSIG(status)));
	else
		tlshd_err("worker %d exited (%d) after its report", (int)w->pid,
			  WEXITSTATUS(status));
}

/* How worker @w ended; returns the DONE status its request still needs,
 * or 0 when its report had it sent. */
static int supervisor_account(struct tlshd_supervisor *sv, struct tlshd_worker_slot *w,
			      int status, long long now)
{
	/* (Its report counted it.) */
	if (w->state == TLSHD_SLOT_FINISHING) {
		if (!WIFEXITED(status) || (WEXITSTATUS(status) != TLSHD_WORKER_SUCCEEDED &&
					   WEXITSTATUS(status) != TLSHD_WORKER_FAILED))
			supervisor_finished_badly(sv, w, status);
		return 0;
	}
	/* Whatever it exited with, its request has no DONE yet. */
	sv->crashed++;
	supervisor_unserved(sv, now);
	if (WIFSIGNALED(status)) {
		tlshd_err("worker %d died of signal %d (%s) before its report", (int)w->pid,
			  WTERMSIG(status), strsignal(WTERMSIG(status)));
		return w->killed ? ETIMEDOUT : EIO;
	}
	tlshd_err("worker %d could not complete its request (exit %d, no report)", (int)w->pid,
		  WEXITSTATUS(status));
	return EIO;
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
	supervisor_unserved(sv, now);
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
		if (w->state == TLSHD_SLOT_RUNNING || w->state == TLSHD_SLOT_FINISHING) {
			int need = supervisor_account(sv, w, status, now);

			supervisor_let_go(sv, w);
			if (w->state == TLSHD_SLOT_RUNNING)
				sv->running--;
			else
				sv->finishing--;
			if (w->job)
				supervisor_release(sv, pid, w->job, need);
		} else {
			supervisor_spare_ended(sv, w, status, now);
		}
		supervisor_drop_ring(w);
		w->job = NULL;
		w->pid = 0;
		w->state = TLSHD_SLOT_FREE;
	}
}

/* Whether no request runs or waits; since when in sv->quiet_since_ms. */
static bool supervisor_quiet(struct tlshd_supervisor *sv, long long now)
{
	if (sv->running || sv->queued || sv->announced || sv->draining) {
		sv->quiet = false;
		return false;
	}
	if (!sv->quiet)
		sv->quiet_since_ms = now;
	sv->quiet = true;
	return true;
}

static struct tlshd_worker_slot *supervisor_oldest_parked(struct tlshd_supervisor *sv)
{
	struct tlshd_worker_slot *oldest = NULL;

	for (unsigned int i = 0; i < sv->max_workers; i++) {
		struct tlshd_worker_slot *w = &sv->slots[i];

		if (w->state == TLSHD_SLOT_FINISHING && w->go_fd >= 0 &&
		    (!oldest || w->served_ms < oldest->served_ms))
			oldest = w;
	}
	return oldest;
}

bool tlshd_supervisor_settled(const struct tlshd_supervisor *sv, long long now)
{
	return sv->quiet && now - sv->quiet_since_ms >= sv->exit_quiet_ms;
}

int tlshd_supervisor_idle(struct tlshd_supervisor *sv, long long now)
{
	bool quiet = supervisor_quiet(sv, now);
	long long next = -1, q;

	/* A request that waits for a slot a parked worker holds. */
	if (sv->queued && sv->procs >= sv->max_workers)
		while (sv->parked)
			supervisor_let_go(sv, supervisor_oldest_parked(sv));
	while (sv->parked > TLSHD_EXIT_PARK_MAX)
		supervisor_let_go(sv, supervisor_oldest_parked(sv));
	/* After the spares the next burst needs, one at a time: a request
	 * that comes meanwhile competes with one exit at most. (The next
	 * is let go once this one is reaped.) */
	if (tlshd_supervisor_settled(sv, now) && sv->parked && sv->finishing == sv->parked &&
	    !tlshd_supervisor_should_spare(sv, now))
		supervisor_let_go(sv, supervisor_oldest_parked(sv));
	for (unsigned int i = 0; i < sv->max_workers; i++) {
		struct tlshd_worker_slot *w = &sv->slots[i];
		long long left;

		if (w->state != TLSHD_SLOT_FINISHING || w->go_fd < 0)
			continue;
		left = w->served_ms + sv->park_max_ms - now;
		if (left <= 0) {
			supervisor_let_go(sv, w);
			continue;
		}
		/* (Once due, what it waits for wakes the loop: the reap of
		 * the one exiting, the fork of a spare.) */
		q = sv->quiet_since_ms + sv->exit_quiet_ms - now;
		if (quiet && q > 0 && q < left)
			left = q;
		if (next < 0 || left < next)
			next = left;
	}
	/* The next burst spare, once the moment has passed. */
	q = sv->quiet_since_ms + TLSHD_SPARE_QUIET_MS - now;
	if (quiet && q > 0 && sv->spares < sv->burst_spares && now < sv->busy_until_ms &&
	    (next < 0 || q < next))
		next = q;
	return (int)next;
}

/* Past a burst: idle spares beyond min_spares exit. Returns the ms until
 * that is due, or -1. */
static long long supervisor_trim(struct tlshd_supervisor *sv, long long now)
{
	if (sv->spares <= sv->min_spares)
		return -1;
	if (now < sv->busy_until_ms)
		return sv->busy_until_ms - now;
	for (unsigned int i = 0; i < sv->max_workers && sv->spares > sv->min_spares; i++)
		if (sv->slots[i].state == TLSHD_SLOT_SPARE)
			supervisor_retire(sv, &sv->slots[i]);
	return -1;
}

int tlshd_supervisor_police(struct tlshd_supervisor *sv, long long now)
{
	long long next = supervisor_trim(sv, now);

	for (unsigned int i = 0; i < sv->max_workers; i++) {
		struct tlshd_worker_slot *w = &sv->slots[i];
		long long left;

		if ((w->state != TLSHD_SLOT_RUNNING && w->state != TLSHD_SLOT_FINISHING) ||
		    w->killed)
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
	if ((sv->queued > 0 || sv->announced > 0 || sv->draining) && sv->hold_until_ms > now &&
	    (next < 0 || sv->hold_until_ms - now < next))
		next = sv->hold_until_ms - now;
	return (int)next;
}
