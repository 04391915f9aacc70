// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests of report.c: a worker process hands its outcome, its
 * handshake entry and its messages to the parent, which logs them with
 * the pid and uid the kernel stamped on them (not what the worker
 * claims), and drops or repairs what a misbehaving worker sends (short
 * datagrams, bad magic, unterminated strings, out-of-range values, a
 * peer named on failure or by a bad key serial); each outcome goes to
 * the parent's DONE callback before its entry is logged, which says when
 * the kernel rejected DONE, and is dropped when its sender holds no
 * request; under the journal, entries of successes wait for a quiet
 * moment (or a second, or 32 of them, or a failure), none lost.
 * The parent's log goes to a file here and is read back.
 */
#include "build-config.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "report.h"
#include "tap.h"
#include "util.h"

/* The first bytes of report.c's message: a forged one starts like it. */
struct forged {
	uint32_t magic;
	uint32_t kind;
	int32_t status;
	int64_t duration_ms;
	char rest[2400];
};

/* The size of report.c's message: its header, its strings (role, auth,
 * peer, peername, cipher, reason, identity), the phases and the peer's
 * key serials (a count, then TLSHD_MAX_PEERIDS), which end it. */
#define REPORT_PEER_SIZE	(4 + 4 * TLSHD_MAX_PEERIDS)
#define REPORT_SIZE	(offsetof(struct forged, rest) + 8 + 8 + 96 + 256 + 64 + 1200 + \
			 TLSHD_LOG_IDENTITY_MAX + 8 + 4 * TLSHD_PHASE_COUNT + REPORT_PEER_SIZE)

/* The forged message's peer: @n serials, each @serial. */
static void forge_peer(struct forged *f, uint32_t n, int32_t serial)
{
	char *at = (char *)f + REPORT_SIZE - REPORT_PEER_SIZE;

	memcpy(at, &n, 4);
	for (int i = 0; i < TLSHD_MAX_PEERIDS; i++)
		memcpy(at + 4 + 4 * i, &serial, 4);
}

static void worker(struct tlshd_report *rep, bool drop_root)
{
	struct tlshd_log_handshake h = {
		.role = "server", .auth = "psk", .peer = "192.0.2.7:4420",
		.cipher = "TLS_AES_128_GCM_SHA256", .duration_ms = 12,
		.identity = "psk=123 identity='NVMe0R01 host sub'",
	};
	struct tlshd_result res = { .num_remote_auth = 2, .remote_auth = { 123, TLSHD_PEERID_CERT_VERIFIED } };
	struct forged f;

	tlshd_report_worker_init(rep);
	if (drop_root && setresgid(65534, 65534, 65534) == 0)
		setresuid(65534, 65534, 65534);
	tlshd_report_send(rep, &res, &h);
	tlshd_report_line(rep, LOG_WARNING, "a worker's warning");
	send(rep->worker_fd, "short", 5, 0);
	memset(&f, 'A', sizeof(f));
	f.magic = 0x746c7372u;
	f.kind = 1;
	f.status = 0;
	f.duration_ms = 1;
	/* Every string unterminated: the parent must cut them, not overrun. */
	forge_peer(&f, 0, 0);
	send(rep->worker_fd, &f, REPORT_SIZE, 0);
	/* Then four the parent must drop: a status out of range, too many
	 * serials, a serial that is no key's, a peer named on failure. */
	f.status = 99999;
	send(rep->worker_fd, &f, REPORT_SIZE, 0);
	f.status = 0;
	forge_peer(&f, TLSHD_MAX_PEERIDS + 1, 7);
	send(rep->worker_fd, &f, REPORT_SIZE, 0);
	forge_peer(&f, 1, -2);
	send(rep->worker_fd, &f, REPORT_SIZE, 0);
	f.status = EACCES;
	forge_peer(&f, 1, 7);
	send(rep->worker_fd, &f, REPORT_SIZE, 0);
	_exit(0);
}

/* A worker that sends @ok entries of handshakes that succeeded (peers
 * 198.51.100.I:1), then, if @fail, one of a failure. */
static void worker_burst(struct tlshd_report *rep, int ok, bool fail)
{
	char peer[32];
	struct tlshd_log_handshake h = {
		.role = "client", .auth = "psk", .peer = peer,
		.cipher = "TLS_AES_128_GCM_SHA256", .duration_ms = 5,
	};

	struct tlshd_result res = { 0 };

	tlshd_report_worker_init(rep);
	for (int i = 0; i < ok; i++) {
		snprintf(peer, sizeof(peer), "198.51.100.%d:1", i);
		tlshd_report_send(rep, &res, &h);
	}
	if (fail) {
		snprintf(peer, sizeof(peer), "198.51.100.99:1");
		res.status = h.status = ECONNRESET;
		h.reason = "peer reset";
		tlshd_report_send(rep, &res, &h);
	}
	_exit(0);
}

/* A parent whose DONE always gets through. */
static int done_ok(void *data, pid_t pid, const struct tlshd_result *res)
{
	(void)data, (void)pid, (void)res;
	return 0;
}

/* The log so far (malloc'd), stderr being the log file at @path. */
static char *log_now(const char *path)
{
	size_t len = 0;
	char *log = NULL;

	fflush(stderr);
	tlshd_util_read_file(path, 1 << 20, &log, &len, NULL);
	return log;
}

/* Runs worker_burst() in a child and drains its reports; returns the
 * log so far. */
static char *burst(struct tlshd_report *rep, int ok, bool fail, const char *path)
{
	int status;
	pid_t pid = fork();

	if (pid == 0)
		worker_burst(rep, ok, fail);
	waitpid(pid, &status, 0);
	tlshd_report_drain(rep, done_ok, NULL);
	return log_now(path);
}

/* Where the last line of @log holding @what starts, or NULL. */
static const char *last(const char *log, const char *what)
{
	const char *at = NULL;

	for (const char *p = log; p && (p = strstr(p, what)); p += strlen(what))
		at = p;
	return at;
}

/* Counts the lines of @log holding @what. */
static int count(const char *log, const char *what)
{
	int n = 0;

	for (const char *p = log; p && (p = strstr(p, what)); p += strlen(what))
		n++;
	return n;
}

/* Successes wait for a quiet moment or their time, in order; a failure
 * goes out at once, after what came before it; 32 at most wait. */
static void test_hold(int fd, const char *path)
{
	const char *ok_line = "handshake succeeded: role=client";
	int saved = dup(2), n;
	struct tlshd_report rep;
	long long now;
	char *log;

	fflush(stderr);
	dup2(fd, 2);
	tlshd_report_open(&rep, true);
	log = burst(&rep, 2, false, path);
	ok(count(log, ok_line) == 0 && rep.held,
	   "the entries of handshakes that succeeded are held back");
	free(log);
	now = tlshd_util_now_ms();
	n = tlshd_report_release(&rep, false, now);
	ok(n > 0 && n <= TLSHD_REPORT_HOLD_MS, "while handshakes run, for up to %d ms (%d left)",
	   TLSHD_REPORT_HOLD_MS, n);
	tlshd_report_release(&rep, false, now + TLSHD_REPORT_HOLD_MS);
	log = log_now(path);
	ok(count(log, ok_line) == 2 && !rep.held &&
	   strstr(log, "198.51.100.0:1") < strstr(log, "198.51.100.1:1"),
	   "then logged, in the order they came");
	free(log);

	log = burst(&rep, 1, true, path);
	ok(count(log, ok_line) == 3 && count(log, "handshake failed: role=client") == 1 &&
	   last(log, ok_line) < last(log, "handshake failed: role=client") && !rep.held,
	   "a failure is logged at once, after the success held before it");
	free(log);

	log = burst(&rep, TLSHD_REPORT_HOLD_MAX + 1, false, path);
	ok(count(log, ok_line) == 3 + TLSHD_REPORT_HOLD_MAX,
	   "at most %d wait: the next one sends them", TLSHD_REPORT_HOLD_MAX);
	free(log);
	is_int(tlshd_report_release(&rep, true, tlshd_util_now_ms()), -1,
	       "a quiet moment sends the rest");
	log = log_now(path);
	n = count(log, ok_line);
	ok(n == 4 + TLSHD_REPORT_HOLD_MAX, "and nothing is lost (%d)", n);
	free(log);
	free(burst(&rep, 1, false, path));
	tlshd_report_close(&rep);
	log = log_now(path);
	ok(count(log, ok_line) == 5 + TLSHD_REPORT_HOLD_MAX, "closing the channel sends what is held");
	free(log);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
}

/* What the parent's DONE callback saw. */
static unsigned int served_n, served_other, served_peer;
static pid_t served_want;

static int on_served(void *data, pid_t pid, const struct tlshd_result *res)
{
	(void)data;
	served_n++;
	served_other += pid != served_want || res->status != 0;
	served_peer += res->num_remote_auth == 2 && res->remote_auth[0] == 123 &&
		       res->remote_auth[1] == TLSHD_PEERID_CERT_VERIFIED;
	return 0;
}

/* What a DONE callback answers in test_done(). */
static int done_answer;

static int done_as_told(void *data, pid_t pid, const struct tlshd_result *res)
{
	(void)data, (void)pid, (void)res;
	return done_answer;
}

/* One success from a child, drained with the DONE callback answering
 * @answer; returns the log so far. */
static char *one_outcome(struct tlshd_report *rep, int answer, const char *path)
{
	int status;
	pid_t pid = fork();

	if (pid == 0)
		worker_burst(rep, 1, false);
	waitpid(pid, &status, 0);
	done_answer = answer;
	tlshd_report_drain(rep, done_as_told, NULL);
	tlshd_report_release(rep, true, tlshd_util_now_ms());
	return log_now(path);
}

/* The kernel rejects DONE: the entry says so. The sender holds no
 * request (a spare, a second report, the daemon stopping): dropped. */
static void test_done(int fd, const char *path)
{
	int saved = dup(2);
	struct tlshd_report rep;
	char *log;
	int n;

	fflush(stderr);
	dup2(fd, 2);
	tlshd_report_open(&rep, true);
	log = one_outcome(&rep, -EBUSY, path);
	n = count(log, "handshake ");
	ok(log && strstr(log, "handshake failed: role=client auth=psk peer=198.51.100.0:1 ") &&
	   strstr(log, "the kernel rejected DONE"),
	   "a success whose DONE the kernel rejected is logged as a failure, saying why");
	free(log);
	log = one_outcome(&rep, -ESRCH, path);
	ok(log && count(log, "handshake ") == n && strstr(log, "dropped the outcome reported by pid"),
	   "an outcome from a process that holds no request is dropped and said");
	free(log);
	tlshd_report_close(&rep);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
}

/* Not under the journal: workers log their other messages themselves,
 * and no entry waits. */
static void test_no_journal(int fd, const char *path)
{
	const char *line = "handshake succeeded: role=client auth=psk peer=198.51.100.0:1 ";
	int saved = dup(2), n;
	struct tlshd_report rep;
	char *log;

	fflush(stderr);
	dup2(fd, 2);
	log = log_now(path);
	n = count(log, line);
	free(log);
	is_int(tlshd_report_open(&rep, false), 0, "the channel opens without the journal too");
	ok(!tlshd_report_line(&rep, LOG_INFO, "x"), "it takes no other message then");
	/* (No quiet moment: one_outcome() releases what is held.) */
	log = burst(&rep, 1, false, path);
	ok(log && count(log, line) == n + 1 && !rep.held, "and a success is logged at once");
	free(log);
	tlshd_report_close(&rep);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
}

int main(void)
{
	char path[] = "/tmp/tlshd-test-report.XXXXXX", want[128], *log = NULL;
	struct tlshd_report rep;
	int fd = mkstemp(path), saved = dup(2), status;
	bool root = geteuid() == 0;
	size_t len = 0;
	pid_t pid;

	tlshd_log_open(TLSHD_LOG_STDERR);
	is_int(tlshd_report_open(&rep, true), 0, "the report channel opens");
	pid = fork();
	if (pid == 0)
		worker(&rep, root);
	waitpid(pid, &status, 0);
	fflush(stderr);
	dup2(fd, 2);
	served_want = pid;
	tlshd_report_drain(&rep, on_served, NULL);
	tlshd_report_release(&rep, true, tlshd_util_now_ms());
	fflush(stderr);
	dup2(saved, 2);
	tlshd_util_read_file(path, 1 << 20, &log, &len, NULL);
	ok(log && strstr(log, "handshake succeeded: role=server auth=psk peer=192.0.2.7:4420 "
			 "cipher=TLS_AES_128_GCM_SHA256 duration_ms=12 "
			 "psk=123 identity='NVMe0R01 host sub'\n"),
	   "the parent logs the worker's handshake entry, with what authenticated it");
	snprintf(want, sizeof(want), "worker %d (uid %u): a worker's warning", (int)pid,
		 root ? 65534u : (unsigned int)getuid());
	ok(log && strstr(log, want), "and its message, with the pid and uid the kernel gave: %s",
	   want);
	ok(log && strstr(log, "dropped a malformed worker report (5 bytes)"),
	   "a short datagram is dropped and said so");
	ok(log && strstr(log, "handshake succeeded: role=AAAAAAA auth=AAAAAAA"),
	   "unterminated strings are cut at their field's end");
	snprintf(want, sizeof(want), "dropped a malformed worker report (%zu bytes)",
		 (size_t)REPORT_SIZE);
	is_int(count(log, want), 4, "a status out of range, too many serials, a bad serial and "
	       "a peer named on failure are dropped");
	ok(served_n == 2 && served_other == 0,
	   "the DONE callback gets the sender's pid and status from each outcome it took, "
	   "not from its other messages or what was dropped (%u, %u other)", served_n,
	   served_other);
	is_int(served_peer, 1, "and the authenticated peer: key serials, and the mark of a "
	       "verified certificate");
	tlshd_report_close(&rep);
	ok(!tlshd_report_line(&rep, LOG_INFO, "x"), "a closed channel refuses: the worker logs itself");
	free(log);
	test_hold(fd, path);
	test_done(fd, path);
	test_no_journal(fd, path);
	close(fd);
	unlink(path);
	return tap_done();
}
