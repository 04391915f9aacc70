/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The parent's bookkeeping of workers: how many requests are waiting for
 * one, how many run, when each started, and how they ended; and of spare
 * workers, forked ahead of requests and waiting for one each.
 */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#define TLSHD_MAX_WORKERS_DEFAULT	256
/* Spares kept ready: a request that finds one skips the fork. */
#define TLSHD_SPARE_WORKERS_DEFAULT	2
/* A worker's handshake deadline is at most TLSHD_MAX_TIMEOUT_MS; past
 * this, it is stuck outside the handshake and is killed. */
#define TLSHD_WORKER_KILL_AFTER_S	330

enum tlshd_slot_state {
	TLSHD_SLOT_FREE,
	TLSHD_SLOT_RUNNING,		/* serving a request */
	TLSHD_SLOT_SPARE,		/* forked ahead, waiting on go_fd */
	TLSHD_SLOT_RETIRED,		/* a spare told to exit, not yet reaped */
};

struct tlshd_worker_slot {
	pid_t pid;
	enum tlshd_slot_state state;
	int go_fd;			/* SPARE: the write end of its pipe */
	long long started_ms;		/* CLOCK_MONOTONIC; RUNNING: since dispatch */
	bool killed;
};

/* After a worker that could not serve (it failed before DONE, or died of
 * a signal), the next fork waits: BACKOFF_MIN_MS, doubling up to
 * BACKOFF_MAX_MS, until a worker gets through again. */
#define TLSHD_SUPERVISOR_BACKOFF_MIN_MS	100
#define TLSHD_SUPERVISOR_BACKOFF_MAX_MS	30000
/* Consecutive such workers before the supervisor says so in the log. */
#define TLSHD_SUPERVISOR_FAILING_WARN	3

struct tlshd_supervisor {
	unsigned int max_workers;	/* processes, spares included */
	unsigned int max_spares;	/* spares kept ready (0: none) */
	long long kill_after_ms;	/* a worker's time to serve, then SIGKILL */
	unsigned int procs;		/* children not yet reaped */
	unsigned int spares;		/* idle spares */
	unsigned int running;		/* workers serving a request */
	unsigned int wanted;		/* READY seen but no worker forked yet */
	bool draining;			/* fork until a worker finds the queue empty */
	unsigned int failing;		/* consecutive workers that could not serve */
	long long hold_until_ms;	/* no fork before this (backoff) */
	struct tlshd_worker_slot *slots;
	unsigned long long succeeded, failed, idle, crashed;
};

/* Times are CLOCK_MONOTONIC milliseconds (tlshd_util_now_ms()), passed
 * in so that tests can drive the clock. */

int tlshd_supervisor_init(struct tlshd_supervisor *sv, unsigned int max_workers);
/* Keep @n spares ready (default 0). */
void tlshd_supervisor_set_spares(struct tlshd_supervisor *sv, unsigned int n);
/* Closes the go pipes of the spares; spares exit when they see that. */
void tlshd_supervisor_done(struct tlshd_supervisor *sv);

/* @n READY notifications arrived. */
void tlshd_supervisor_ready(struct tlshd_supervisor *sv, unsigned int n);

/* Requests may be queued that we were not told about (start-up, lost
 * notifications): keep forking one worker at a time until one of them
 * finds the kernel's queue empty. */
void tlshd_supervisor_drain(struct tlshd_supervisor *sv);

/* Whether a worker should be forked at @now; if so, the caller forks and
 * records the child with tlshd_supervisor_started(). */
bool tlshd_supervisor_should_fork(const struct tlshd_supervisor *sv, long long now);
void tlshd_supervisor_started(struct tlshd_supervisor *sv, pid_t pid, long long now);

/*
 * Spares. A spare is forked while no request waits, and blocks on a pipe;
 * dispatching it writes the time of the READY it serves (CLOCK_MONOTONIC
 * microseconds, for its log entry) and closes the pipe, and it goes on as
 * any worker; closing the pipe without a write retires it. Each spare
 * serves one request at most, like every worker.
 */
/* Whether a spare should be forked at @now; if so, the caller forks and
 * records it with tlshd_supervisor_spare_started(). */
bool tlshd_supervisor_should_spare(const struct tlshd_supervisor *sv, long long now);
void tlshd_supervisor_spare_started(struct tlshd_supervisor *sv, pid_t pid, int go_fd,
				    long long now);
/* Hands one waiting request to an idle spare; false when there is no
 * request or no spare. */
bool tlshd_supervisor_dispatch(struct tlshd_supervisor *sv, long long ready_us, long long now);
/* Tells every idle spare to exit (they hold the old configuration). */
void tlshd_supervisor_retire_spares(struct tlshd_supervisor *sv);
/* In a child just forked: closes the parent's ends of the spares' pipes. */
void tlshd_supervisor_child(struct tlshd_supervisor *sv);

/* Whether @pid is one of our workers or spares, not yet reaped. */
bool tlshd_supervisor_has(const struct tlshd_supervisor *sv, pid_t pid);

/* Reaps every exited worker (waitpid WNOHANG) and accounts for it. */
void tlshd_supervisor_reap(struct tlshd_supervisor *sv, long long now);

/* Kills workers that have served longer than sv->kill_after_ms
 * (TLSHD_WORKER_KILL_AFTER_S unless changed); returns the poll()
 * timeout in ms until the next kill or held-back fork could be due, or
 * -1 for none. */
int tlshd_supervisor_police(struct tlshd_supervisor *sv, long long now);
