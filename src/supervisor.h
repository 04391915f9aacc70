/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The parent's bookkeeping of workers: how many requests are waiting for
 * one, how many run, when each started, and how they ended.
 */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#define TLSHD_MAX_WORKERS_DEFAULT	256
/* A worker's handshake deadline is at most TLSHD_MAX_TIMEOUT_MS; past
 * this, it is stuck outside the handshake and is killed. */
#define TLSHD_WORKER_KILL_AFTER_S	330

struct tlshd_worker_slot {
	pid_t pid;
	long long started_ms;		/* CLOCK_MONOTONIC */
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
	unsigned int max_workers;
	unsigned int running;
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

/* Reaps every exited worker (waitpid WNOHANG) and accounts for it. */
void tlshd_supervisor_reap(struct tlshd_supervisor *sv, long long now);

/* Kills workers past TLSHD_WORKER_KILL_AFTER_S; returns the poll()
 * timeout in ms until the next kill or held-back fork could be due, or
 * -1 for none. */
int tlshd_supervisor_police(struct tlshd_supervisor *sv, long long now);
