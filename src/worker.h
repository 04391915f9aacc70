/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The worker: one forked process per kernel request. It ACCEPTs, runs
 * the handshake, sends DONE, logs one line, and exits.
 */
#pragma once

struct tlshd_context;

/* Worker exit statuses, read by the supervisor. */
enum tlshd_worker_exit {
	TLSHD_WORKER_SUCCEEDED	= 0,	/* handshake done, DONE status 0 */
	TLSHD_WORKER_FAILED	= 1,	/* DONE sent with an error status */
	TLSHD_WORKER_IDLE	= 2,	/* ACCEPT found no pending request */
	TLSHD_WORKER_ERROR	= 3,	/* could not complete the request */
};

/* Serves one request; returns a tlshd_worker_exit value. */
int tlshd_worker_run(const struct tlshd_context *ctx, int family);
