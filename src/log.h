/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Logging: one sink chosen at start-up (journal under systemd, stderr
 * with -s, syslog otherwise), a level threshold from the configuration,
 * and a per-worker prefix naming the request being served.
 */
#pragma once

#include <stdbool.h>
#include <sys/types.h>
#include <syslog.h>

enum tlshd_log_sink {
	TLSHD_LOG_SYSLOG,
	TLSHD_LOG_STDERR,
	TLSHD_LOG_JOURNAL,
};

/* Opens @sink; a journal that cannot be reached falls back to stderr. */
void tlshd_log_open(enum tlshd_log_sink sink);
/* The sink in use. */
enum tlshd_log_sink tlshd_log_sink(void);
enum tlshd_log_sink tlshd_log_default_sink(void);
void tlshd_log_set_debug(bool on);
bool tlshd_log_debug_enabled(void);
void tlshd_log_set_prefix(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

void tlshd_log(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Under the journal, a worker hands its messages to @fn (the report
 * channel to the parent, which writes them, so that journald attributes
 * them to the unit however soon the worker exits); when @fn returns
 * false the worker writes the message itself.
 */
typedef bool (*tlshd_log_forward_fn)(void *data, int prio, const char *msg);
void tlshd_log_set_forward(tlshd_log_forward_fn fn, void *data);

/*
 * Parent: journal entries journald had no room for wait, at most
 * TLSHD_LOG_BACKLOG_MAX of them (then they are counted, and the count
 * logged). While some wait, tlshd_log_backlog_fd() is the journal's
 * socket (-1 otherwise): poll it for POLLOUT and call tlshd_log_flush().
 * tlshd_log_drain() flushes before exit, waiting up to @timeout_ms for
 * room each time.
 */
#define TLSHD_LOG_BACKLOG_MAX	1024
int tlshd_log_backlog_fd(void);
void tlshd_log_flush(void);
void tlshd_log_drain(int timeout_ms);

/* Parent: writes a message a worker forwarded, with its pid and uid. */
void tlshd_log_from_worker(int prio, const char *msg, pid_t pid, uid_t uid);

/* Logs "<message>: <strerror(-err)>" and returns err (a negative errno),
 * so that callers can log and fail in one statement. */
int tlshd_log_errno(int prio, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define tlshd_err(...)		tlshd_log(LOG_ERR, __VA_ARGS__)
#define tlshd_warn(...)		tlshd_log(LOG_WARNING, __VA_ARGS__)
#define tlshd_notice(...)	tlshd_log(LOG_NOTICE, __VA_ARGS__)
#define tlshd_info(...)		tlshd_log(LOG_INFO, __VA_ARGS__)
#define tlshd_debug(...)	tlshd_log(LOG_DEBUG, __VA_ARGS__)

/* Journal MESSAGE_IDs of the per-handshake entries (stable: filter with
 * journalctl MESSAGE_ID=...). */
#define TLSHD_MESSAGE_ID_SUCCEEDED	"d8e0246a3f204b8b8aa8cc5776ddf1b4"
#define TLSHD_MESSAGE_ID_FAILED		"a42ec55caf5c45138ad2aa65190ce1f4"

/* Where a request's time went, in microseconds (journal fields
 * TLSHD_US_START ... TLSHD_US_DONE); a phase the request never reached
 * is 0. */
enum tlshd_phase {
	TLSHD_PHASE_START,		/* READY read by the parent -> worker running */
	TLSHD_PHASE_ACCEPT,		/* netlink socket, ACCEPT and its reply */
	TLSHD_PHASE_SETUP,		/* keyrings, privileges, filter, credentials */
	TLSHD_PHASE_HANDSHAKE,		/* TLS 1.3 with the peer, and its checks */
	TLSHD_PHASE_KTLS,		/* the keys into the socket */
	TLSHD_PHASE_DONE,		/* DONE and its ack */
	TLSHD_PHASE_COUNT
};

/* The longest identity an entry names: an NVMe PSK identity (two NQNs
 * of at most 223 bytes and a digest), or a certificate's subject and
 * issuer; longer ones are cut. */
#define TLSHD_LOG_IDENTITY_MAX	640

/* One handshake's outcome, for the one line (and journal entry) each
 * handshake produces. */
struct tlshd_log_handshake {
	const char *role;		/* client | server */
	const char *auth;		/* unauth | psk | x509 */
	const char *peer;		/* numeric address:port */
	const char *peername;		/* the consumer's name for the peer, or NULL */
	int status;			/* 0 or the positive errno sent in DONE */
	const char *cipher;		/* on success */
	const char *reason;		/* on failure */
	const char *identity;		/* what authenticated it, or NULL (tls.h) */
	long duration_ms;		/* ACCEPT reply to DONE ack */
	pid_t worker_pid;		/* reported by a worker: its pid and uid */
	uid_t worker_uid;		/* (from the kernel), else 0 */
	unsigned int phase_us[TLSHD_PHASE_COUNT];
};

/* Success at LOG_INFO, failure at LOG_ERR, one line that ends with the
 * identity when there is one; in the journal with the fields
 * TLSHD_ROLE, TLSHD_AUTH, TLSHD_PEER, TLSHD_PEERNAME, TLSHD_RESULT,
 * TLSHD_ERRNO, TLSHD_CIPHER, TLSHD_REASON, TLSHD_IDENTITY, TLSHD_DURATION_MS, the phases
 * (TLSHD_US_START ... TLSHD_US_DONE), and for an entry a worker reported
 * to the parent TLSHD_WORKER_PID, TLSHD_WORKER_UID. */
void tlshd_log_handshake(const struct tlshd_log_handshake *h);

/* "EKEYREJECTED" for EKEYREJECTED; positive or negative errno accepted. */
const char *tlshd_errno_name(int err);
