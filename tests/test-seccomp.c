// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit test of seccomp.c: a process under the worker's filter completes
 * whole handshakes (both engines, PSK, over TCP loopback, each in its own
 * filtered process), and is killed (SIGSYS) the moment it opens a file,
 * makes a socket, executes a program or makes an ioctl other than the
 * TCGETS or TCGETS2 of isatty(), which it may. Under the key holder's
 * filter, socket options and keyctl kill too. Under both, a process
 * stopped and continued in the middle of a sleep or a poll (SIGSTOP,
 * SIGCONT: a debugger, the cgroup freezer) lives on. And each filter's
 * program, run here by a small classic-BPF interpreter for every call
 * number, allows exactly its list.
 */
#include "build-config.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>

#include <keyutils.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/syscall.h>
#include <termios.h>

#include "config.h"
#include "log.h"
#include "seccomp.h"
#include "tap.h"
#include "tls.h"

static struct tlshd_context ctx;

static const char *const profile_names[] = {
	[TLSHD_SECCOMP_WORKER] = "the worker's filter",
	[TLSHD_SECCOMP_KEYHOLDER] = "the key holder's filter",
};

/* The child's fate under @profile: "exit N" or "signal N". */
static int run_profile(enum tlshd_seccomp_profile profile, void (*fn)(void *), void *arg,
		       int *ret_status)
{
	pid_t pid = fork();

	if (pid == 0) {
		if (tlshd_seccomp_install(profile) < 0)
			_exit(99);
		fn(arg);
		_exit(0);
	}
	return waitpid(pid, ret_status, 0) == pid ? 0 : -1;
}

static int run_filtered(void (*fn)(void *), void *arg, int *ret_status)
{
	return run_profile(TLSHD_SECCOMP_WORKER, fn, arg, ret_status);
}

static void do_open(void *arg)
{
	open("/etc/passwd", O_RDONLY);
	_exit(0);
}

static void do_socket(void *arg)
{
	socket(AF_INET, SOCK_STREAM, 0);
	_exit(0);
}

static void do_exec(void *arg)
{
	execl("/bin/true", "true", (char *)NULL);
	_exit(0);
}

static void do_ioctl(void *arg)
{
	int n;

	ioctl(0, FIONREAD, &n);
	_exit(0);
}

static void do_prctl(void *arg)
{
	prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
	_exit(0);
}

/* A spare renames itself once dispatched: it lives to exit 8. */
static void do_set_name(void *arg)
{
	prctl(PR_SET_NAME, "tlshd", 0, 0, 0);
	_exit(8);
}

/* A worker has no business with priorities, its own included. */
static void do_renice(void *arg)
{
	setpriority(PRIO_PROCESS, 0, 19);
	_exit(0);
}

/* isatty() is TCGETS (TCGETS2 from glibc 2.42 on), the ioctls allowed:
 * the child lives to exit 7. */
static void do_isatty(void *arg)
{
	isatty(2);
	_exit(7);
}

/* @fn under the worker's filter lives to exit with @code. */
static void test_allowed(const char *what, void (*fn)(void *), int code)
{
	int status = 0;

	run_filtered(fn, NULL, &status);
	ok(WIFEXITED(status) && WEXITSTATUS(status) == code,
	   "%s under the filter: allowed (status 0x%x)", what, status);
}

static void do_setsockopt(void *arg)
{
	int one = 1;

	setsockopt(2, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	_exit(0);
}

static void do_keyctl(void *arg)
{
	keyctl_get_keyring_ID(KEY_SPEC_SESSION_KEYRING, 0);
	_exit(0);
}

/* A sleep, then a poll, each interrupted by the parent's SIGSTOP and
 * resumed by its SIGCONT (the kernel restarts them with
 * restart_syscall(2)); exit 5 when both return. */
static void do_stopped(void *arg)
{
	struct timespec ts = { 0, 400 * 1000000 };
	struct pollfd p = { .fd = -1 };		/* none: a 400 ms wait */

	clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL);
	poll(&p, 1, 400);
	_exit(5);
}

static void test_stop_continue(enum tlshd_seccomp_profile profile)
{
	int status = 0;
	pid_t pid = fork();

	if (pid == 0) {
		if (tlshd_seccomp_install(profile) < 0)
			_exit(99);
		do_stopped(NULL);
	}
	for (int i = 0; i < 2; i++) {
		usleep(150000);
		kill(pid, SIGSTOP);
		usleep(100000);
		kill(pid, SIGCONT);
	}
	waitpid(pid, &status, 0);
	ok(WIFEXITED(status) && WEXITSTATUS(status) == 5,
	   "stopped and continued in a sleep and a poll under %s: lives on (status 0x%x)",
	   profile_names[profile], status);
}

static void test_killed_by(enum tlshd_seccomp_profile profile, const char *what,
			   void (*fn)(void *))
{
	int status = 0;

	run_profile(profile, fn, NULL, &status);
	ok(WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS,
	   "%s under %s: killed by SIGSYS (status 0x%x)", what, profile_names[profile], status);
}

static void test_killed(const char *what, void (*fn)(void *))
{
	int status = 0;

	run_filtered(fn, NULL, &status);
	ok(WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS,
	   "%s under the filter: killed by SIGSYS (status 0x%x)", what, status);
}

struct side {
	struct tlshd_request req;
};

/* One engine's handshake; its exit status says how it went. */
static void do_handshake(void *arg)
{
	struct side *s = arg;
	struct tlshd_tls_outcome out;

	tlshd_tls_run(&ctx, &s->req, TLSHD_TLS_NO_KTLS, &out);
	_exit(out.result.status ? 10 : 0);
}

static void tcp_pair(int sv[2])
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sin);
	int l = socket(AF_INET, SOCK_STREAM, 0);

	bind(l, (struct sockaddr *)&sin, sizeof(sin));
	listen(l, 1);
	getsockname(l, (struct sockaddr *)&sin, &len);
	sv[0] = socket(AF_INET, SOCK_STREAM, 0);
	connect(sv[0], (struct sockaddr *)&sin, sizeof(sin));
	sv[1] = accept(l, NULL, NULL);
	close(l);
}

static void test_handshake_allowed(void)
{
	struct side c = { 0 }, s = { 0 };
	unsigned char key[32];
	key_serial_t ring, k;
	pid_t pc, ps;
	int sv[2], stc = -1, sts = -1;

	memset(key, 0x42, sizeof(key));
	ring = add_key("keyring", "tlshd-test-seccomp", NULL, 0, KEY_SPEC_SESSION_KEYRING);
	k = add_key("user", "NVMe0R01 filtered sub", key, sizeof(key), ring);
	tcp_pair(sv);
	c.req = (struct tlshd_request){ .sockfd = sv[0], .role = TLSHD_ROLE_CLIENT,
					.auth = TLSHD_AUTH_PSK, .timeout_ms = 10000,
					.num_peerids = 1, .peerids = { k } };
	s.req = (struct tlshd_request){ .sockfd = sv[1], .role = TLSHD_ROLE_SERVER,
					.auth = TLSHD_AUTH_PSK, .timeout_ms = 10000,
					.keyring = ring };
	pc = fork();
	if (pc == 0) {
		tlshd_seccomp_install(TLSHD_SECCOMP_WORKER);
		do_handshake(&c);
	}
	ps = fork();
	if (ps == 0) {
		tlshd_seccomp_install(TLSHD_SECCOMP_WORKER);
		do_handshake(&s);
	}
	waitpid(pc, &stc, 0);
	waitpid(ps, &sts, 0);
	ok(WIFEXITED(stc) && WEXITSTATUS(stc) == 0,
	   "a client PSK handshake completes under the filter (status 0x%x)", stc);
	ok(WIFEXITED(sts) && WEXITSTATUS(sts) == 0,
	   "a server PSK handshake completes under the filter (status 0x%x)", sts);
	close(sv[0]);
	close(sv[1]);
}

#if defined(__x86_64__)
#define TEST_ARCH	AUDIT_ARCH_X86_64
#define TEST_ARCH_OTHER	AUDIT_ARCH_I386
#elif defined(__aarch64__)
#define TEST_ARCH	AUDIT_ARCH_AARCH64
#define TEST_ARCH_OTHER	AUDIT_ARCH_ARM
#endif
/* (Elsewhere tlshd installs no filter of its own: no program to test.) */
#define TEST_TCGETS2	_IOR('T', 0x2A, char[44])

#ifdef TEST_ARCH
/* Runs @f on @d as the kernel would: the verdict (a SECCOMP_RET_*), or
 * -1 for an instruction a filter of ours never holds, a jump out of the
 * program, or a load outside seccomp_data. @steps: instructions run. */
static long bpf_run(const struct sock_filter *f, size_t n, const struct seccomp_data *d,
		    int *steps)
{
	uint32_t a = 0;

	for (size_t pc = 0; pc < n; pc++) {
		const struct sock_filter *i = &f[pc];

		++*steps;
		switch (i->code) {
		case BPF_LD | BPF_W | BPF_ABS:
			if (i->k % 4 || i->k + 4 > sizeof(*d))
				return -1;
			memcpy(&a, (const char *)d + i->k, 4);
			break;
		case BPF_JMP | BPF_JEQ | BPF_K:
			pc += a == i->k ? i->jt : i->jf;
			break;
		case BPF_JMP | BPF_JGE | BPF_K:
			pc += a >= i->k ? i->jt : i->jf;
			break;
		case BPF_JMP | BPF_JA:
			pc += i->k;
			break;
		case BPF_RET | BPF_K:
			return i->k;
		default:
			return -1;
		}
	}
	return -1;
}

static bool list_has(const int *nr, size_t n, int x)
{
	for (size_t i = 0; i < n; i++)
		if (nr[i] == x)
			return true;
	return false;
}

/* Every call number 0..1023 and a few beyond (x32's bit, all ones),
 * with arguments no call checked by argument accepts; those calls with
 * and without the arguments they accept; another architecture. */
static void test_program(enum tlshd_seccomp_profile profile)
{
	struct sock_filter f[256];
	struct seccomp_data d = { .arch = TEST_ARCH };
	const uint32_t odd[] = { 0x40000000, 0x40000000 | SYS_read, 0x7fffffff, 0xffffffff };
	size_t n = tlshd_seccomp_program(profile, f, 256), na = 0;
	const int *allowed = tlshd_seccomp_allowed(profile, &na);
	int wrong = 0, steps, most = 0, allows = 0;
	long v;

	ok(n > 0 && allowed && na > 0, "%s: a program of %zu instructions for %zu calls",
	   profile_names[profile], n, na);
	memset(d.args, 0xff, sizeof(d.args));
	for (uint32_t nr = 0; nr < 1024 + 4; nr++) {
		d.nr = (int)(nr < 1024 ? nr : odd[nr - 1024]);
		steps = 0;
		v = bpf_run(f, n, &d, &steps);
		most = steps > most ? steps : most;
		allows += v == SECCOMP_RET_ALLOW;
		if (v != (list_has(allowed, na, d.nr) ? SECCOMP_RET_ALLOW : SECCOMP_RET_KILL_PROCESS)) {
			if (!wrong++)
				printf("#   call %d: verdict %#lx\n", d.nr, (unsigned long)v);
		}
	}
	ok(!wrong && allows == (int)na,
	   "%s: each of 1028 call numbers allowed if and only if listed (%d allowed, %d wrong; "
	   "at most %d instructions run)", profile_names[profile], allows, wrong, most);
	d.nr = SYS_ioctl;
	d.args[1] = TCGETS;
	wrong = bpf_run(f, n, &d, &steps) != SECCOMP_RET_ALLOW;
	d.args[1] = TEST_TCGETS2;
	wrong += bpf_run(f, n, &d, &steps) != SECCOMP_RET_ALLOW;
	d.args[1] = TCSETS;
	wrong += bpf_run(f, n, &d, &steps) != SECCOMP_RET_KILL_PROCESS;
	ok(!wrong, "%s: ioctl TCGETS and TCGETS2 allowed, TCSETS kills", profile_names[profile]);
	d.nr = SYS_prctl;
	d.args[0] = PR_SET_NAME;
	wrong = bpf_run(f, n, &d, &steps) != SECCOMP_RET_ALLOW;
	d.args[0] = PR_SET_DUMPABLE;
	wrong += bpf_run(f, n, &d, &steps) != SECCOMP_RET_KILL_PROCESS;
	d.args[0] = PR_SET_SECCOMP;
	wrong += bpf_run(f, n, &d, &steps) != SECCOMP_RET_KILL_PROCESS;
	ok(!wrong, "%s: prctl PR_SET_NAME allowed, PR_SET_DUMPABLE and PR_SET_SECCOMP kill",
	   profile_names[profile]);
	d = (struct seccomp_data){ .arch = TEST_ARCH_OTHER, .nr = SYS_read };
	is_int(bpf_run(f, n, &d, &steps), SECCOMP_RET_KILL_PROCESS,
	       "%s: an allowed number under another architecture kills", profile_names[profile]);
}
#endif

int main(void)
{
	struct tlshd_config *cfg;

	tlshd_log_open(TLSHD_LOG_STDERR);
	if (tlshd_seccomp_disabled())
		return tap_skip_all("a sanitizer build leaves the filter out");
	if (keyctl_join_session_keyring(NULL) < 0)
		return tap_skip_all("kernel keyrings unavailable here");
	cfg = tlshd_config_new_default();
	if (tlshd_tls_init(&ctx, cfg, NULL) < 0) {
		printf("Bail out! cannot initialise the engine\n");
		return 1;
	}
	ctx.psk_key_type = "user";
#ifdef TEST_ARCH
	test_program(TLSHD_SECCOMP_WORKER);
	test_program(TLSHD_SECCOMP_KEYHOLDER);
#endif
	test_handshake_allowed();
	test_killed("open(2) of a file", do_open);
	test_killed("socket(2)", do_socket);
	test_killed("execve(2)", do_exec);
	test_killed("ioctl(2) other than TCGETS/TCGETS2", do_ioctl);
	test_allowed("isatty() (ioctl TCGETS or TCGETS2)", do_isatty, 7);
	test_killed("prctl(2) other than PR_SET_NAME", do_prctl);
	test_allowed("prctl(PR_SET_NAME)", do_set_name, 8);
	test_killed("setpriority(2) of itself", do_renice);
	test_stop_continue(TLSHD_SECCOMP_WORKER);
	test_stop_continue(TLSHD_SECCOMP_KEYHOLDER);
	test_killed_by(TLSHD_SECCOMP_KEYHOLDER, "open(2) of a file", do_open);
	test_killed_by(TLSHD_SECCOMP_KEYHOLDER, "socket(2)", do_socket);
	test_killed_by(TLSHD_SECCOMP_KEYHOLDER, "setsockopt(2)", do_setsockopt);
	test_killed_by(TLSHD_SECCOMP_KEYHOLDER, "keyctl(2)", do_keyctl);
	test_killed_by(TLSHD_SECCOMP_KEYHOLDER, "setpriority(2) of itself", do_renice);
	test_killed_by(TLSHD_SECCOMP_KEYHOLDER, "execve(2)", do_exec);
	tlshd_tls_done(&ctx);
	tlshd_config_free(cfg);
	return tap_done();
}
