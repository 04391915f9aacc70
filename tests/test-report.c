// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests of report.c: a worker process hands its handshake entry and
 * its messages to the parent, which logs them with the pid and uid the
 * kernel stamped on them (not what the worker claims), and drops or
 * repairs what a misbehaving worker sends (short datagrams, bad magic,
 * unterminated strings, out-of-range values); each handshake entry tells
 * the parent which worker has finished. The parent's log goes to a file
 * here and is read back.
 */
#include "build-config.h"

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
	close(fd);
	unlink(path);
	return tap_done();
}
