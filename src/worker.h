/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The worker: one forked process per kernel request, forked for it or
 * ahead of it (a spare). It gets a request the parent ACCEPTed, runs the
 * handshake with no capability, reports its outcome and its log entry to
 * the parent (which sends DONE), and exits.
 */
#pragma once

#include "privs.h"
#include "report.h"
#include "request.h"

struct tlshd_context;

/* Worker exit statuses, read by the supervisor. */
enum tlshd_worker_exit {
	TLSHD_WORKER_SUCCEEDED	= 0,	/* reported: handshake done */
	TLSHD_WORKER_FAILED	= 1,	/* reported: an error status */
	TLSHD_WORKER_ERROR	= 3,	/* could not report its outcome */
	TLSHD_WORKER_RETIRED	= 4,	/* a spare told to exit unused */
};

/* What a worker gets from the parent. */
struct tlshd_worker_env {
	const struct tlshd_context *ctx;
	struct tlshd_privs_ids ids;	/* uid and gid after ACCEPT */
	struct tlshd_report report;	/* where its outcome and entry go */
};

/*
 * A request the parent ACCEPTed, on its way to a worker. The parent keeps
 * its copy of the consumer's socket until the worker has reported its
 * outcome or ended: DONE names that socket, and the parent sends it
 * (supervisor.h).
 */
struct tlshd_job {
	struct tlshd_request req;	/* req.sockfd: this process's copy, -1 none */
	int parse_err;			/* 0, or why the request is unusable */
	key_serial_t kernel_ring;	/* linked by the kernel at ACCEPT, or 0 */
	long long ready_us;		/* CLOCK_MONOTONIC: the parent read a READY */
	long long accepted_us;		/* and had the kernel's answer to its ACCEPT */
};

/* Serves @job, forked for it (the socket inherited); returns a
 * tlshd_worker_exit value. Once it has reported its outcome to the
 * parent, it waits for the parent to close the other end of @go_fd
 * (-1: no wait), as a spare does on its own. */
int tlshd_worker_run(const struct tlshd_worker_env *env, struct tlshd_job *job, int go_fd);

/*
 * A spare: gets ready, waits on @go_fd for a job and its socket
 * (tlshd_worker_hand()), then serves it as above; returns
 * TLSHD_WORKER_RETIRED if the parent closes @go_fd instead.
 * Ready means, given a job keyring @job_ring
 * (tlshd_keyring_job_new(), 0: none), armed as a worker is before its
 * handshake: the job keyring and the configured keyrings linked, root
 * dropped, the system call filter installed. What is left when the
 * request comes is its handshake. A spare that could not link @job_ring
 * waits as root and does all of it then, as a forked worker does.
 */
int tlshd_worker_run_spare(const struct tlshd_worker_env *env, int go_fd, key_serial_t job_ring);

/* Parent: hands @job and a copy of its socket to the spare at @go_fd (a
 * SOCK_SEQPACKET socket), after linking the request's keyrings into the
 * spare's job keyring @job_ring (0: none). Returns 0 or a negative errno
 * (-EPIPE: the spare is gone). */
int tlshd_worker_hand(int go_fd, key_serial_t job_ring, const struct tlshd_job *job);
