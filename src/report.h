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

struct tlshd_report {
	int parent_fd;		/* parent reads here, -1: reports off */
	int worker_fd;		/* workers send here */
};

/* Parent, at start-up: the socket pair. Returns 0 or a negative errno
 * (then workers log their entries themselves). */
int tlshd_report_open(struct tlshd_report *rep);
void tlshd_report_close(struct tlshd_report *rep);

/* Worker, right after fork: drops the parent's end. */
void tlshd_report_worker_init(struct tlshd_report *rep);

/* Worker: hands @h to the parent. False when it could not (no channel,
 * or the parent is behind): the caller then logs it itself. */
bool tlshd_report_send(const struct tlshd_report *rep, const struct tlshd_log_handshake *h);

/* Worker: forwards one log message (a tlshd_log_forward_fn, @data the
 * struct tlshd_report). False when it could not. */
bool tlshd_report_line(void *data, int prio, const char *msg);

/* Parent: logs every queued report, each checked before use; @served
 * (unless NULL) is told the pid of each worker whose handshake entry
 * came, which it sends last, after its DONE, and its status (0 or a
 * positive errno). */
typedef void (*tlshd_report_served_fn)(void *data, pid_t pid, int status);
void tlshd_report_drain(const struct tlshd_report *rep, tlshd_report_served_fn served,
			void *data);
