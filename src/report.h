/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Worker reports. Under the journal a worker's handshake entry and its
 * other messages go to the parent over a datagram socket, and the parent
 * writes them to the journal: the parent is long-lived, so journald always attributes the
 * entry to the unit (a worker exits right after logging, and as an
 * unprivileged uid its OBJECT_PID is ignored), and the kernel stamps
 * each report with the worker's real pid and uid (SCM_CREDENTIALS).
 */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

struct tlshd_log_handshake;

/* Entries of handshakes that succeeded wait in the parent for a moment
 * when no handshake runs (journald's work on them would slow the ones in
 * flight), at most TLSHD_REPORT_HOLD_MS and TLSHD_REPORT_HOLD_MAX of
 * them. Failures and other messages are logged at once. */
#define TLSHD_REPORT_HOLD_MS	1000
#define TLSHD_REPORT_HOLD_MAX	32

struct report_held;

struct tlshd_report {
	int parent_fd;		/* parent reads here, -1: reports off */
	int worker_fd;		/* workers send here */
	struct report_held *held;	/* parent: entries held back, or NULL */
};

/* Parent, at start-up: the socket pair. Returns 0 or a negative errno
 * (then workers log their entries themselves). */
int tlshd_report_open(struct tlshd_report *rep);
/* Logs what is held back, closes both ends. */
void tlshd_report_close(struct tlshd_report *rep);

/* Worker, right after fork: drops the parent's end and its entries. */
void tlshd_report_worker_init(struct tlshd_report *rep);

/* Worker: hands @h to the parent. False when it could not (no channel,
 * or the parent is behind): the caller then logs it itself. */
bool tlshd_report_send(const struct tlshd_report *rep, const struct tlshd_log_handshake *h);

/* Worker: forwards one log message (a tlshd_log_forward_fn, @data the
 * struct tlshd_report). False when it could not. */
bool tlshd_report_line(void *data, int prio, const char *msg);

/* Parent: logs every queued report, each checked before use (the entry
 * of a handshake that succeeded is held back, see above); @served
 * (unless NULL) is told the pid of each worker whose handshake entry
 * came, which it sends last, after its DONE, and its status (0 or a
 * positive errno). */
typedef void (*tlshd_report_served_fn)(void *data, pid_t pid, int status);
void tlshd_report_drain(struct tlshd_report *rep, tlshd_report_served_fn served,
			void *data);

/* Parent: logs the entries held back if @quiet (no request has run for
 * a moment: tlshd_supervisor_settled()) or
 * the oldest has waited TLSHD_REPORT_HOLD_MS at @now (CLOCK_MONOTONIC
 * ms); returns the ms until that is due, or -1 when none is held. */
int tlshd_report_release(struct tlshd_report *rep, bool quiet, long long now);
