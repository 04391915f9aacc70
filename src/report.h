/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Worker reports. A worker ends its request with one report to the
 * parent over a datagram socket: its outcome, which the parent turns into
 * the request's DONE (workers hold no capability, and DONE needs
 * CAP_NET_ADMIN), and its log entry, which the parent writes. Under the
 * journal a worker's other messages go the same way: the parent is
 * long-lived, so journald always attributes them to the unit (as an
 * unprivileged uid a worker's OBJECT_PID is ignored). The kernel stamps
 * each report with the sender's real pid and uid (SCM_CREDENTIALS), and
 * the parent trusts nothing else in it without a check.
 */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "request.h"

struct tlshd_log_handshake;

/* Under the journal, entries of handshakes that succeeded wait in the
 * parent for a moment when no handshake runs (journald's work on them
 * would slow the ones in flight), at most TLSHD_REPORT_HOLD_MS and
 * TLSHD_REPORT_HOLD_MAX of them. Failures and other messages are logged
 * at once. */
#define TLSHD_REPORT_HOLD_MS	1000
#define TLSHD_REPORT_HOLD_MAX	32

struct report_held;

struct tlshd_report {
	int parent_fd;		/* parent reads here, -1: closed */
	int worker_fd;		/* workers send here */
	bool journal;		/* other messages too; successes held back */
	struct report_held *held;	/* parent: entries held back, or NULL */
};

/* Parent, at start-up: the socket pair; @journal: the log is the
 * journal (see above). Returns 0 or a negative errno. */
int tlshd_report_open(struct tlshd_report *rep, bool journal);
/* Logs what is held back, closes both ends. */
void tlshd_report_close(struct tlshd_report *rep);

/* Worker, right after fork: drops the parent's end and its entries. */
void tlshd_report_worker_init(struct tlshd_report *rep);

/* Worker: hands its outcome @res (status and authenticated peer) and
 * its entry @h to the parent, waiting while the parent is behind.
 * Returns 0, or a negative errno when it could not (no channel, the
 * parent gone): the caller then logs @h itself, and the request's
 * DONE is the parent's once this worker ends. */
int tlshd_report_send(const struct tlshd_report *rep, const struct tlshd_result *res,
		      const struct tlshd_log_handshake *h);

/* Worker: forwards one log message (a tlshd_log_forward_fn, @data the
 * struct tlshd_report). False when it could not. */
bool tlshd_report_line(void *data, int prio, const char *msg);

/*
 * Parent: handles every queued report, each checked before use. For an
 * outcome, @served (unless NULL) is called first with the sender's pid
 * and the outcome: it sends the request's DONE and returns 0, a negative
 * errno when the kernel rejected DONE (the entry then says so), or
 * -ESRCH when the sender holds no request (the entry is dropped, and
 * said). The entry is logged next (a success's may be held back, see
 * above), with DONE's time as its last phase.
 */
typedef int (*tlshd_report_served_fn)(void *data, pid_t pid, const struct tlshd_result *res);
void tlshd_report_drain(struct tlshd_report *rep, tlshd_report_served_fn served,
			void *data);

/* Parent: logs the entries held back if @quiet (no request has run for
 * a moment: tlshd_supervisor_settled()) or
 * the oldest has waited TLSHD_REPORT_HOLD_MS at @now (CLOCK_MONOTONIC
 * ms); returns the ms until that is due, or -1 when none is held. */
int tlshd_report_release(struct tlshd_report *rep, bool quiet, long long now);
