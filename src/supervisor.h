/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The parent's bookkeeping of workers: how many requests are waiting for
 * one, how many run, when each started, and how they ended; and of spare
 * workers, forked ahead of requests and waiting for one each.
 */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include <keyutils.h>

#define TLSHD_MAX_WORKERS_DEFAULT	256
/* Spares kept ready at all times: a request that finds one skips the
 * fork. */
#define TLSHD_SPARE_WORKERS_DEFAULT	2
/* Spares kept ready while the daemon is busy: since start-up and until
 * TLSHD_SPARE_BURST_IDLE_MS pass without a request. The ones beyond
 * TLSHD_SPARE_WORKERS_DEFAULT are forked only while no worker runs or
 * finishes, so that a burst of requests (a reconnect storm, the connects
 * at boot) finds them ready without their forks taking CPU from
 * handshakes, and are retired once the burst is over. */
#define TLSHD_SPARE_BURST_DEFAULT	16
#define TLSHD_SPARE_BURST_IDLE_MS	60000
/* ... and only once no request has run or waited for this long: the
 * gaps between the handshakes of one consumer's connect are shorter. */
#define TLSHD_SPARE_QUIET_MS		20
/* A worker's handshake deadline is at most TLSHD_MAX_TIMEOUT_MS; past
 * this, it is stuck outside the handshake and is killed. */
#define TLSHD_WORKER_KILL_AFTER_S	330

enum tlshd_slot_state {
	TLSHD_SLOT_FREE,
	TLSHD_SLOT_RUNNING,		/* serving a request */
	TLSHD_SLOT_SPARE,		/* forked ahead, waiting on go_fd */
	TLSHD_SLOT_RETIRED,		/* a spare told to exit, not yet reaped */
	TLSHD_SLOT_FINISHING,		/* reported its outcome (DONE sent),
					 * parked (go_fd >= 0) or exiting, not
					 * yet reaped */
};

/* A served worker waits (parked) to exit until the parent closes its
 * go_fd: once no request has run or waited for EXIT_QUIET_MS and the
 * burst's spares are forked (one at a time, each after the one before
 * has been reaped), when more than EXIT_PARK_MAX wait (the oldest), when
 * one has waited EXIT_PARK_MAX_MS, or when a request needs its slot. An
 * exit is a process's whole address space torn down: on a busy CPU it is
 * taken from the handshakes of the moment, in a quiet one from nobody. */
#define TLSHD_EXIT_QUIET_MS		50
#define TLSHD_EXIT_PARK_MAX		32
#define TLSHD_EXIT_PARK_MAX_MS		2000

struct tlshd_job;

struct tlshd_worker_slot {
	pid_t pid;
	enum tlshd_slot_state state;
	int go_fd;			/* the parent's end of its socket: a SPARE
					 * waits there for its request, a
					 * RUNNING or FINISHING worker for
					 * leave to exit; -1: none */
	key_serial_t job_ring;		/* SPARE: its job keyring, or 0 */
	struct tlshd_job *job;		/* RUNNING: the request it serves */
	long long started_ms;		/* CLOCK_MONOTONIC; RUNNING: since dispatch */
	long long served_ms;		/* FINISHING: since its report */
	bool killed;
};

/* After a worker or ACCEPT that failed (a worker ended unreported, a
 * spare could not get ready, the kernel refused ACCEPT), the next ACCEPT
 * and fork wait: BACKOFF_MIN_MS, doubling up to BACKOFF_MAX_MS, until a
 * worker gets through again. */
#define TLSHD_SUPERVISOR_BACKOFF_MIN_MS	100
#define TLSHD_SUPERVISOR_BACKOFF_MAX_MS	30000
/* Consecutive such failures before the supervisor says so in the log. */
#define TLSHD_SUPERVISOR_FAILING_WARN	3

/* A request whose worker ended without a report, or that is still being
 * served when the daemon stops: the caller sends DONE with
 * @status (a positive errno) on the job's socket. The supervisor closes
 * the socket and frees the job afterwards. */
typedef void (*tlshd_supervisor_orphan_fn)(void *data, pid_t pid, struct tlshd_job *job,
					   int status);

struct tlshd_supervisor {
	unsigned int max_workers;	/* processes, spares included */
	unsigned int min_spares;	/* spares kept ready (0: none) */
	unsigned int burst_spares;	/* ... while busy (>= min_spares) */
	long long busy_until_ms;	/* busy until then: see set_spares */
	long long kill_after_ms;	/* a worker's time to serve, then SIGKILL */
	long long exit_quiet_ms;	/* TLSHD_EXIT_QUIET_MS unless changed */
	long long park_max_ms;		/* TLSHD_EXIT_PARK_MAX_MS unless changed */
	unsigned int procs;		/* children not yet reaped */
	unsigned int spares;		/* idle spares */
	unsigned int running;		/* workers serving a request */
	unsigned int finishing;		/* served, exiting (not running) */
	unsigned int parked;		/* ... of which waiting to exit */
	bool quiet;			/* no request runs or waits, */
	long long quiet_since_ms;	/* ... since then */
	unsigned int announced;		/* READY seen, not yet ACCEPTed */
	bool draining;			/* ACCEPT until the kernel has none left */
	unsigned int queued;		/* ACCEPTed, waiting for a worker */
	unsigned int queue_head;
	struct tlshd_job **queue;	/* a ring of max_workers */
	unsigned int failing;		/* consecutive failures (above) */
	long long hold_until_ms;	/* no ACCEPT or fork before this (backoff) */
	struct tlshd_worker_slot *slots;
	tlshd_supervisor_orphan_fn orphan;
	void *orphan_data;
	unsigned long long succeeded, failed, crashed;
};

/* Times are CLOCK_MONOTONIC milliseconds (tlshd_util_now_ms()), passed
 * in so that tests can drive the clock. */

int tlshd_supervisor_init(struct tlshd_supervisor *sv, unsigned int max_workers);
/* Keep @min spares ready (default 0), and up to @burst (forked only
 * while no worker runs or finishes) from @now until
 * TLSHD_SPARE_BURST_IDLE_MS pass without a request; idle spares beyond
 * @min are then retired. */
void tlshd_supervisor_set_spares(struct tlshd_supervisor *sv, unsigned int min,
				 unsigned int burst, long long now);
/* Closes the spares' sockets (spares exit when they see that); waiting
 * requests, and those still being served, go to the orphan function
 * with ESHUTDOWN. */
void tlshd_supervisor_done(struct tlshd_supervisor *sv);

/*
 * Requests. The kernel queues each one and says READY; the parent ACCEPTs
 * it at once, as long as fewer than max_workers are waiting or running
 * (the rest wait in the kernel, whose pending cap then refuses new
 * ones), and queues it here until a spare or a forked worker takes it.
 */
/* @n READY notifications arrived. */
void tlshd_supervisor_ready(struct tlshd_supervisor *sv, unsigned int n);
/* Requests may be queued that we were not told about (start-up, lost
 * notifications): ACCEPT until the kernel has none left. */
void tlshd_supervisor_drain(struct tlshd_supervisor *sv);
/* Whether to ACCEPT now. */
bool tlshd_supervisor_should_accept(const struct tlshd_supervisor *sv, long long now);
/* ACCEPT gave @job (allocated with malloc; the supervisor owns it now). */
void tlshd_supervisor_accepted(struct tlshd_supervisor *sv, struct tlshd_job *job);
/* ACCEPT failed with @err: -EAGAIN means the kernel had no request left;
 * anything else holds the next ACCEPT back (backoff, as above). */
void tlshd_supervisor_accept_failed(struct tlshd_supervisor *sv, int err, long long now);
/* The oldest waiting request, or NULL. */
struct tlshd_job *tlshd_supervisor_next(const struct tlshd_supervisor *sv);

/* Whether a worker should be forked at @now for tlshd_supervisor_next();
 * if so, the caller forks and records the child with
 * tlshd_supervisor_started(), which hands it that request. */
bool tlshd_supervisor_should_fork(const struct tlshd_supervisor *sv, long long now);
/* @go_fd: the parent's end of a socket on which the worker waits for
 * leave to exit once served (see TLSHD_EXIT_QUIET_MS), or -1. */
void tlshd_supervisor_started(struct tlshd_supervisor *sv, pid_t pid, int go_fd, long long now);

/*
 * Spares. A spare is forked while no request waits, and blocks on a
 * socket; dispatching it sends the oldest waiting request and a copy of
 * its socket (tlshd_worker_hand()), and it goes on as any worker; closing
 * the socket without a message retires it. Each spare serves one request
 * at most, like every worker.
 */
/* Whether a spare should be forked at @now; if so, the caller forks and
 * records it with tlshd_supervisor_spare_started(). */
bool tlshd_supervisor_should_spare(const struct tlshd_supervisor *sv, long long now);
void tlshd_supervisor_spare_started(struct tlshd_supervisor *sv, pid_t pid, int go_fd,
				    key_serial_t job_ring, long long now);
/* Hands the oldest waiting request to an idle spare; false when there is
 * no request or no spare. */
bool tlshd_supervisor_dispatch(struct tlshd_supervisor *sv, long long now);
/* Tells every idle spare to exit (they hold the old configuration). */
void tlshd_supervisor_retire_spares(struct tlshd_supervisor *sv);
/* In a child just forked: closes the parent's ends of the spares'
 * sockets and the consumers' sockets of every request but @keep's (NULL:
 * all of them). */
void tlshd_supervisor_child(struct tlshd_supervisor *sv, const struct tlshd_job *keep);

/* The request worker @pid serves (it has it and has not reported), or
 * NULL: what the parent DONEs when the worker reports its outcome. */
const struct tlshd_job *tlshd_supervisor_job(const struct tlshd_supervisor *sv, pid_t pid);

/* Worker @pid reported its outcome (@status: 0 or a positive errno), and
 * the parent sent its DONE: it is counted as succeeded or failed, and no
 * longer as running, its request's socket is closed here, but it holds
 * its slot until reaped and is still killed past its time. One with a
 * go_fd is parked: it exits when tlshd_supervisor_idle() lets it. */
void tlshd_supervisor_served(struct tlshd_supervisor *sv, pid_t pid, int status,
			     long long now);

/* The work of the gaps between requests, called on every pass of the
 * event loop before spares are forked: keeps count of how long no
 * request has run or waited (burst spares wait TLSHD_SPARE_QUIET_MS of
 * it), and lets parked workers exit when due (TLSHD_EXIT_QUIET_MS, after
 * the spares). Returns the poll() timeout in ms until the next spare or
 * exit is due, or -1. */
int tlshd_supervisor_idle(struct tlshd_supervisor *sv, long long now);
/* Whether, as of the last tlshd_supervisor_idle(), no request has run or
 * waited for TLSHD_EXIT_QUIET_MS: what waits for a quiet moment may go. */
bool tlshd_supervisor_settled(const struct tlshd_supervisor *sv, long long now);

/* Whether @pid is one of our workers or spares, not yet reaped. */
bool tlshd_supervisor_has(const struct tlshd_supervisor *sv, pid_t pid);

/* Reaps every exited worker (waitpid WNOHANG) and accounts for it; the
 * request of one that ended without a report goes to the orphan function. */
void tlshd_supervisor_reap(struct tlshd_supervisor *sv, long long now);

/* Kills workers that have served longer than sv->kill_after_ms
 * (TLSHD_WORKER_KILL_AFTER_S unless changed); returns the poll()
 * timeout in ms until the next kill or held-back ACCEPT or fork could be
 * due, or -1 for none. */
int tlshd_supervisor_police(struct tlshd_supervisor *sv, long long now);
