/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The worker: one forked process per kernel request, forked for it or
 * ahead of it (a spare). It ACCEPTs, runs the handshake, sends DONE, logs
 * one line, and exits.
 */
#pragma once

#include "privs.h"
#include "report.h"

struct tlshd_context;

/* Worker exit statuses, read by the supervisor. */
enum tlshd_worker_exit {
	TLSHD_WORKER_SUCCEEDED	= 0,	/* handshake done, DONE status 0 */
	TLSHD_WORKER_FAILED	= 1,	/* DONE sent with an error status */
	TLSHD_WORKER_IDLE	= 2,	/* ACCEPT found no pending request */
	TLSHD_WORKER_ERROR	= 3,	/* could not complete the request */
	TLSHD_WORKER_RETIRED	= 4,	/* a spare told to exit unused */
};

/* What a worker gets from the parent. */
struct tlshd_worker_env {
	const struct tlshd_context *ctx;
	struct tlshd_privs_ids ids;	/* uid and gid after ACCEPT */
	struct tlshd_report report;	/* where its handshake entry goes */
	int family;			/* the handshake netlink family */
	long long ready_us;		/* when the parent read the READY it forks for */
};

/* Serves one request; returns a tlshd_worker_exit value. */
int tlshd_worker_run(const struct tlshd_worker_env *env);

/* A spare: gets ready (its netlink socket), waits for the parent's word
 * on @go_fd (the time of the READY, see supervisor.h), then serves one
 * request as above; returns TLSHD_WORKER_RETIRED if the parent closes
 * @go_fd instead. */
int tlshd_worker_run_spare(const struct tlshd_worker_env *env, int go_fd);
