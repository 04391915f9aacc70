/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Logging: one sink chosen at start-up (journal under systemd, stderr
 * with -s, syslog otherwise), a level threshold from the configuration,
 * and a per-worker prefix naming the request being served.
 */
#pragma once

#include <stdbool.h>
#include <syslog.h>

enum tlshd_log_sink {
	TLSHD_LOG_SYSLOG,
	TLSHD_LOG_STDERR,
	TLSHD_LOG_JOURNAL,
};

void tlshd_log_open(enum tlshd_log_sink sink);
enum tlshd_log_sink tlshd_log_default_sink(void);
void tlshd_log_set_debug(bool on);
bool tlshd_log_debug_enabled(void);
void tlshd_log_set_prefix(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

void tlshd_log(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Logs "<message>: <strerror(-err)>" and returns err (a negative errno),
 * so that callers can log and fail in one statement. */
int tlshd_log_errno(int prio, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define tlshd_err(...)		tlshd_log(LOG_ERR, __VA_ARGS__)
#define tlshd_warn(...)		tlshd_log(LOG_WARNING, __VA_ARGS__)
#define tlshd_notice(...)	tlshd_log(LOG_NOTICE, __VA_ARGS__)
#define tlshd_info(...)		tlshd_log(LOG_INFO, __VA_ARGS__)
#define tlshd_debug(...)	tlshd_log(LOG_DEBUG, __VA_ARGS__)

/* "EKEYREJECTED" for EKEYREJECTED; positive or negative errno accepted. */
const char *tlshd_errno_name(int err);
