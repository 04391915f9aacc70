// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests of report.c: a worker process hands its handshake entry and
 * its messages to the parent, which logs them with the pid and uid the
 * kernel stamped on them (not what the worker claims), and drops or
 * repairs what a misbehaving worker sends (short datagrams, bad magic,
 * unterminated strings, out-of-range values); each handshake entry tells
 * the parent which worker has finished; entries of successes wait for a
 * quiet moment (or a second, or 32 of them, or a failure), none lost.
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
 * peer, peername, cipher, reason, identity) and the phases. */
#define REPORT_SIZE	(offsetof(struct forged, rest) + 8 + 8 + 96 + 256 + 64 + 1200 + \
			 TLSHD_LOG_IDENTITY_MAX + 8 + 4 * TLSHD_PHASE_COUNT)

static void worker(struct tlshd_report *rep, bool drop_root)
{
	struct tlshd_log_handshake h = {
		.role = "server", .auth = "psk", .peer = "192.0.2.7:4420",
		.cipher = "TLS_AES_128_GCM_SHA256", .duration_ms = 12,
		.identity = "psk=123 identity='NVMe0R01 host sub'",
	};
	struct forged f;

	tlshd_report_worker_init(rep);
	if (drop_root && setresgid(65534, 65534, 65534) == 0)
		setresuid(65534, 65534, 65534);
	tlshd_report_send(rep, &h);
	tlshd_report_line(rep, LOG_WARNING, "a worker's warning");
	send(rep->worker_fd, "short", 5, 0);
	memset(&f, 'A', sizeof(f));
	f.magic = 0x746c7372u;
	f.kind = 1;
	f.status = 0;
	f.duration_ms = 1;
	/* Every string unterminated: the parent must cut them, not overrun. */
	send(rep->worker_fd, &f, REPORT_SIZE, 0);
	f.status = 99999;
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

	tlshd_report_worker_init(rep);
	for (int i = 0; i < ok; i++) {
		snprintf(peer, sizeof(peer), "198.51.100.%d:1", i);
		tlshd_report_send(rep, &h);
	}
	if (fail) {
		snprintf(peer, sizeof(peer), "198.51.100.99:1");
		h.status = ECONNRESET;
		h.reason = "peer reset";
		tlshd_report_send(rep, &h);
	}
	_exit(0);
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
	tlshd_report_drain(rep, NULL, NULL);
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
	tlshd_report_open(&rep);
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

/* What the parent's served callback saw. */
static unsigned int served_n, served_other;
static pid_t served_want;

static void on_served(void *data, pid_t pid, int status)
{
	(void)data;
	served_n++;
	served_other += pid != served_want || status != 0;
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
	is_int(tlshd_report_open(&rep), 0, "the report channel opens");
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
	ok(log && strstr(log, want), "a status out of range is dropped");
	ok(served_n == 2 && served_other == 0,
	   "the parent learns the sender's pid and status from each handshake entry it took, "
	   "not from its other messages or what it dropped (%u, %u other)", served_n, served_other);
	tlshd_report_close(&rep);
	ok(!tlshd_report_line(&rep, LOG_INFO, "x"), "a closed channel refuses: the worker logs itself");
	free(log);
	test_hold(fd, path);
	close(fd);
	unlink(path);
	return tap_done();
}
