// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Logging backends. The state here is set once by main() (sink, debug
 * switch) and once per worker (prefix); nothing else writes it.
 */
#include "build-config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <systemd/sd-journal.h>

#include "log.h"

static enum tlshd_log_sink log_sink = TLSHD_LOG_STDERR;
static bool log_debug;
static char log_prefix[160];

enum tlshd_log_sink tlshd_log_default_sink(void)
{
	/* systemd sets JOURNAL_STREAM for services whose output it
	 * connects to the journal. */
	if (getenv("JOURNAL_STREAM"))
		return TLSHD_LOG_JOURNAL;
	return TLSHD_LOG_SYSLOG;
}

void tlshd_log_open(enum tlshd_log_sink sink)
{
	log_sink = sink;
	if (sink == TLSHD_LOG_SYSLOG)
		openlog("tlshd", LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void tlshd_log_set_debug(bool on)
{
	log_debug = on;
}

bool tlshd_log_debug_enabled(void)
{
	return log_debug;
}

void tlshd_log_set_prefix(const char *fmt, ...)
{
	va_list ap;

	if (!fmt) {
		log_prefix[0] = '\0';
		return;
	}
	va_start(ap, fmt);
	vsnprintf(log_prefix, sizeof(log_prefix), fmt, ap);
	va_end(ap);
}

static void log_emit(int prio, const char *msg)
{
	switch (log_sink) {
	case TLSHD_LOG_JOURNAL:
		sd_journal_send("MESSAGE=%s%s", log_prefix, msg,
				"PRIORITY=%d", prio,
				"SYSLOG_IDENTIFIER=tlshd",
				NULL);
		break;
	case TLSHD_LOG_SYSLOG:
		syslog(prio, "%s%s", log_prefix, msg);
		break;
	case TLSHD_LOG_STDERR:
		fprintf(stderr, "tlshd[%d]: %s%s\n", (int)getpid(), log_prefix, msg);
		break;
	}
}

static void log_vemit(int prio, const char *fmt, va_list ap, const char *suffix)
{
	char buf[1024];
	int n;

	if (prio == LOG_DEBUG && !log_debug)
		return;
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	if (n >= 0 && suffix && (size_t)n < sizeof(buf))
		snprintf(buf + n, sizeof(buf) - n, ": %s", suffix);
	log_emit(prio, buf);
}

void tlshd_log(int prio, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vemit(prio, fmt, ap, NULL);
	va_end(ap);
}

int tlshd_log_errno(int prio, int err, const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	log_vemit(prio, fmt, ap, strerror(err < 0 ? -err : err));
	va_end(ap);
	errno = saved;
	return err;
}

void tlshd_log_handshake(const struct tlshd_log_handshake *h)
{
	const char *result = h->status ? "failed" : "succeeded";
	const char *err = h->status ? tlshd_errno_name(h->status) : "0";
	int prio = h->status ? LOG_ERR : LOG_INFO;
	char line[1024];

	if (h->status)
		snprintf(line, sizeof(line),
			 "handshake failed: role=%s auth=%s peer=%s errno=%s reason=%s duration_ms=%ld",
			 h->role, h->auth, h->peer, err, h->reason && *h->reason ? h->reason : "unknown",
			 h->duration_ms);
	else
		snprintf(line, sizeof(line),
			 "handshake succeeded: role=%s auth=%s peer=%s cipher=%s duration_ms=%ld",
			 h->role, h->auth, h->peer, h->cipher, h->duration_ms);
	if (log_sink != TLSHD_LOG_JOURNAL) {
		log_emit(prio, line);
		return;
	}
	sd_journal_send("MESSAGE=%s", line,
			"PRIORITY=%d", prio,
			"SYSLOG_IDENTIFIER=tlshd",
			"MESSAGE_ID=%s", h->status ? TLSHD_MESSAGE_ID_FAILED : TLSHD_MESSAGE_ID_SUCCEEDED,
			"TLSHD_ROLE=%s", h->role,
			"TLSHD_AUTH=%s", h->auth,
			"TLSHD_PEER=%s", h->peer,
			"TLSHD_PEERNAME=%s", h->peername ? h->peername : "",
			"TLSHD_RESULT=%s", result,
			"TLSHD_ERRNO=%s", err,
			"TLSHD_CIPHER=%s", h->cipher ? h->cipher : "",
			"TLSHD_REASON=%s", h->status && h->reason ? h->reason : "",
			"TLSHD_DURATION_MS=%ld", h->duration_ms,
			NULL);
}

const char *tlshd_errno_name(int err)
{
	const char *name = strerrorname_np(err < 0 ? -err : err);

	return name ? name : "E?";
}
