// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * tlshd: TLS handshake agent for in-kernel TLS consumers.
 *
 * Process model. One single-threaded parent loads the configuration and
 * the GnuTLS priorities once, forks the key holder (keyholder.h) when the
 * configuration names private keys, joins the kernel's "tlshd" multicast
 * group and polls {netlink, signalfd, worker reports, key holder}. On
 * each READY notification it ACCEPTs the request at once (the kernel
 * refuses new requests while a few wait for ACCEPT) and hands it to a
 * worker (worker.c): an idle spare forked ahead of it, which gets the
 * consumer's socket over its own socket, else one forked for it. A worker
 * inherits the loaded state copy-on-write, handshakes (signing through
 * the key holder), sends DONE and exits. The parent never reads or writes
 * a consumer's socket and never touches a private key: it keeps the
 * socket only to send DONE for a request whose worker died before it
 * did. It counts, caps and reaps workers (supervisor.c) and restarts the
 * key holder. Signals are read from the signalfd, never handled
 * asynchronously.
 */
#include "build-config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "config.h"
#include "genl.h"
#include "keyholder.h"
#include "keyring.h"
#include "log.h"
#include "privs.h"
#include "report.h"
#include "supervisor.h"
#include "tls.h"
#include "util.h"
#include "worker.h"

/* Exit statuses (also in tlshd(8)). */
enum {
	TLSHD_EXIT_OK		= 0,
	TLSHD_EXIT_CONFIG	= 1,	/* bad command line or configuration */
	TLSHD_EXIT_KERNEL	= 2,	/* the kernel cannot use a handshake agent */
	TLSHD_EXIT_RUNTIME	= 3,	/* start-up or event loop failure */
};

#define TLSHD_FORK_RETRY_MS	1000
/* STATUS= goes to systemd at most this often: each one wakes PID 1,
 * which would otherwise cost CPU on every handshake of a storm. */
#define TLSHD_STATUS_INTERVAL_MS	1000
/* How long a stopping daemon waits for the handshakes in flight. */
#define TLSHD_STOP_WAIT_MS	2000
/* A key holder that died is started again after this, doubling while it
 * keeps dying within KEYHOLDER_STABLE_MS of its start. */
#define TLSHD_KEYHOLDER_RETRY_MIN_MS	1000
#define TLSHD_KEYHOLDER_RETRY_MAX_MS	60000
#define TLSHD_KEYHOLDER_STABLE_MS	60000

struct tlshd_options {
	const char *config_path;
	bool config_given;
	bool to_stderr;
	bool check_config;
};

struct tlshd_daemon {
	const struct tlshd_options *opts;
	struct tlshd_config *cfg;
	struct tlshd_context ctx;
	struct tlshd_genl listen;
	struct tlshd_genl cmd;		/* ACCEPT, and DONE for dead workers */
	long long ready_us;		/* when the last READY was read */
	struct tlshd_supervisor sv;
	struct tlshd_worker_env env;	/* what each worker gets */
	struct tlshd_keyholder kh;	/* the current key holder, if any */
	struct tlshd_creds_remote keys;	/* its keys' ids, as the credentials use them */
	struct tlshd_signer signer;	/* a worker's connection to it (-1 in the parent) */
	long long kh_started_ms;	/* when it started */
	long long kh_retry_ms;		/* when a dead one is started again */
	long long kh_delay_ms;		/* and the delay after the next death */
	int family;
	int sigfd;
	sigset_t sigmask;
	bool stop;
	bool no_job_ring_said;		/* spares without a job keyring: logged */
	unsigned long long job_rings;	/* job keyrings made, which names each */
	char status[160];		/* last STATUS= sent to systemd */
	long long status_ms;		/* and when */
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: tlshd [-c FILE] [-s] [-t] [-h] [-v]\n"
		"  -c, --config FILE  read FILE instead of %s\n"
		"                     (or, if that does not exist, %s)\n"
		"  -s, --stderr       log to stderr instead of the journal/syslog\n"
		"  -t, --check-config check the configuration and the credentials it\n"
		"                     names, report every problem, and exit\n"
		"  -h, --help         show this help\n"
		"  -v, --version      show the version\n",
		TLSHD_DEFAULT_CONFIG, TLSHD_COMPAT_CONFIG);
}

static int parse_options(int argc, char **argv, struct tlshd_options *o)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "stderr", no_argument, NULL, 's' },
		{ "check-config", no_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'v' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "c:sthv", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			o->config_path = optarg;
			o->config_given = true;
			break;
		case 's':
			o->to_stderr = true;
			break;
		case 't':
			o->check_config = true;
			break;
		case 'h':
			usage(stdout);
			exit(TLSHD_EXIT_OK);
		case 'v':
#ifdef TLSHD_TEST_HOOKS
			printf("tlshd %s (built with test hooks)\n", PACKAGE_VERSION);
#else
			printf("tlshd %s\n", PACKAGE_VERSION);
#endif
			exit(TLSHD_EXIT_OK);
		default:
			usage(stderr);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "tlshd: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return -EINVAL;
	}
	return 0;
}

static int daemon_join_kernel(struct tlshd_daemon *d)
{
	int group, r;

	r = tlshd_genl_resolve(&d->family, &group);
	if (r == -ENOENT) {
		tlshd_err("the kernel has no '%s' generic netlink family: it needs "
			  "CONFIG_NET_HANDSHAKE (Linux 6.5 or later, built in with NFS or "
			  "NVMe/TCP TLS support)", "handshake");
		return r;
	}
	if (r < 0)
		return tlshd_log_errno(LOG_ERR, r, "cannot query generic netlink");
	r = tlshd_genl_listen(&d->listen, d->family, group);
	if (r < 0)
		return tlshd_log_errno(LOG_ERR, r, "cannot join the handshake multicast group");
	r = tlshd_genl_connect(&d->cmd, d->family);
	if (r < 0)
		return tlshd_log_errno(LOG_ERR, r, "cannot open a netlink socket for ACCEPT");
	return 0;
}

/*
 * Signals read from the signalfd: stop (TERM, INT, QUIT), reload (HUP,
 * and USR1 as ktls-utils' tlshd does), status to the log (USR2), and
 * CHLD. Ignored, in the parent and the workers it forks: PIPE (a worker
 * writing to a socket the peer reset must not die) and the others whose
 * default would end the daemon for nothing it uses (timers, I/O, power).
 * tlshd(8) lists the rest.
 */
static const int daemon_handled[] = {
	SIGINT, SIGTERM, SIGQUIT, SIGHUP, SIGUSR1, SIGUSR2, SIGCHLD,
};
static const int daemon_ignored[] = {
	SIGPIPE, SIGALRM, SIGVTALRM, SIGPROF, SIGIO, SIGPWR, SIGSTKFLT,
};

static int daemon_signals(struct tlshd_daemon *d)
{
	sigemptyset(&d->sigmask);
	for (size_t i = 0; i < sizeof(daemon_handled) / sizeof(daemon_handled[0]); i++)
		sigaddset(&d->sigmask, daemon_handled[i]);
	if (sigprocmask(SIG_BLOCK, &d->sigmask, NULL) < 0)
		return -errno;
	d->sigfd = signalfd(-1, &d->sigmask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (d->sigfd < 0)
		return -errno;
	for (size_t i = 0; i < sizeof(daemon_ignored) / sizeof(daemon_ignored[0]); i++)
		signal(daemon_ignored[i], SIG_IGN);
	return 0;
}

/* The file to read: -c, else the first default that exists (NULL: none,
 * built-in defaults). Looked up again on every reload. */
static const char *options_config_path(const struct tlshd_options *o)
{
	return o->config_given ? o->config_path : tlshd_config_default_path();
}

/* What every child drops first: the parent's sockets (the key holder's
 * control socket among them), its signal mask, the spares' sockets, the
 * consumers' sockets of every request but @keep's. */
static void daemon_child_init(struct tlshd_daemon *d, const struct tlshd_job *keep)
{
	/* The unit's Nice= is for the parent (tlshd.service): children
	 * compete with everything else as equals. */
	if (getpriority(PRIO_PROCESS, 0) < 0 && setpriority(PRIO_PROCESS, 0, 0) < 0)
		tlshd_log_errno(LOG_WARNING, -errno, "cannot leave the daemon's priority");
	if (d->kh.ctl_fd >= 0)
		close(d->kh.ctl_fd);
	d->kh.ctl_fd = -1;
	close(d->sigfd);
	tlshd_genl_close(&d->listen);
	tlshd_genl_close(&d->cmd);
	tlshd_supervisor_child(&d->sv, keep);
	sigprocmask(SIG_UNBLOCK, &d->sigmask, NULL);
	tlshd_report_worker_init(&d->env.report);
}

/* Whether @cfg's private keys go to a key holder (test hook
 * no-keyholder: they do not, as before there was one). */
static bool daemon_wants_keyholder(const struct tlshd_config *cfg)
{
	return tlshd_keyholder_needed(cfg) && !tlshd_test_hook("no-keyholder", NULL);
}

static void daemon_keyholder_child(void *d)
{
	daemon_child_init(d, NULL);
}

/* Forks a key holder for @cfg and waits until it holds its keys; fills
 * @kh and @keys. Returns 0 or a negative errno (logged). */
static int daemon_keyholder_start(struct tlshd_daemon *d, const struct tlshd_config *cfg,
				  struct tlshd_keyholder *kh, struct tlshd_creds_remote *keys)
{
	int r;

	/* (A holder that keeps dying soon after this is restarted ever
	 * more slowly: see daemon_keyholder_gone().) */
	d->kh_started_ms = tlshd_util_now_ms();
	memset(keys, 0, sizeof(*keys));
	keys->signer = &d->signer;
	r = tlshd_keyholder_spawn(cfg, &d->env.ids, &d->env.report, daemon_keyholder_child, d,
				  kh, keys);
	if (r < 0) {
		tlshd_report_drain(&d->env.report, NULL, NULL);	/* its reasons */
		return r;
	}
	tlshd_debug("key holder (pid %d) holds the configured private keys", (int)kh->pid);
	return 0;
}

/* A key holder died (or was reaped with the workers): schedule another. */
static void daemon_keyholder_gone(struct tlshd_daemon *d, const char *how)
{
	long long now = tlshd_util_now_ms();

	if (now - d->kh_started_ms >= TLSHD_KEYHOLDER_STABLE_MS || !d->kh_delay_ms)
		d->kh_delay_ms = TLSHD_KEYHOLDER_RETRY_MIN_MS;
	tlshd_err("the key holder (pid %d) %s: handshakes that present a configured "
		  "certificate fail until another one starts, in %lld ms", (int)d->kh.pid, how,
		  d->kh_delay_ms);
	tlshd_keyholder_release(&d->kh);
	/* Idle spares' connections lead to the dead holder. */
	tlshd_supervisor_retire_spares(&d->sv);
	d->kh_retry_ms = now + d->kh_delay_ms;
	d->kh_delay_ms *= 2;
	if (d->kh_delay_ms > TLSHD_KEYHOLDER_RETRY_MAX_MS)
		d->kh_delay_ms = TLSHD_KEYHOLDER_RETRY_MAX_MS;
}

/* SIGCHLD: the current key holder's end, before the supervisor reaps
 * every other child (holders let go of on reload exit quietly); @wait:
 * its control socket is gone, so it is of no use: make sure it ends. */
static void daemon_keyholder_reap(struct tlshd_daemon *d, bool wait)
{
	char how[64];
	int status;
	pid_t r;

	if (!d->kh.pid)
		return;
	/* (It may be gone already. It runs as another uid: CAP_KILL. If
	 * it cannot be killed, waiting for it could block for ever.) */
	if (wait && kill(d->kh.pid, SIGKILL) < 0 && errno != ESRCH) {
		tlshd_log_errno(LOG_ERR, -errno, "cannot kill the key holder (pid %d)",
				(int)d->kh.pid);
		daemon_keyholder_gone(d, "closed its connection");
		return;
	}
	r = waitpid(d->kh.pid, &status, wait ? 0 : WNOHANG);
	if (r == 0)
		return;
	if (r < 0)
		snprintf(how, sizeof(how), "exited");
	else if (WIFSIGNALED(status))
		snprintf(how, sizeof(how), "was killed by signal %s", strsignal(WTERMSIG(status)));
	else
		snprintf(how, sizeof(how), "exited with status %d", WEXITSTATUS(status));
	daemon_keyholder_gone(d, how);
}

/* Starts a key holder again, if its keys are still those the
 * credentials were loaded with. Returns the poll() timeout until the
 * next try, or -1. */
static int daemon_keyholder_retry(struct tlshd_daemon *d, long long now)
{
	struct tlshd_creds_remote keys;

	if (!d->kh_retry_ms || d->kh.pid || !daemon_wants_keyholder(d->cfg))
		return -1;
	if (now < d->kh_retry_ms)
		return (int)(d->kh_retry_ms - now);
	d->kh_retry_ms = 0;
	if (daemon_keyholder_start(d, d->cfg, &d->kh, &keys) < 0) {
		daemon_keyholder_gone(d, "could not be started again");
		return daemon_keyholder_retry(d, now);
	}
	if (memcmp(keys.role, d->keys.role, sizeof(keys.role))) {
		tlshd_err("the private keys the configuration names are no longer those it was "
			  "loaded with: reload the daemon (systemctl reload tlshd)");
		daemon_keyholder_gone(d, "holds other keys");
		return daemon_keyholder_retry(d, now);
	}
	tlshd_notice("key holder started again (pid %d)", (int)d->kh.pid);
	/* Spares forked while there was none have no connection to it. */
	tlshd_supervisor_retire_spares(&d->sv);
	return -1;
}

/* The key holder's complaints: workers that broke its rules. */
static void daemon_on_keyholder(struct tlshd_daemon *d)
{
	pid_t pid = 0;
	int r;

	while ((r = tlshd_keyholder_read(&d->kh, &pid)) == 0) {
		if (!tlshd_supervisor_has(&d->sv, pid)) {
			tlshd_warn("the key holder named pid %d, which is no worker", (int)pid);
			continue;
		}
		tlshd_err("killing worker %d: it broke the key holder's rules (see above)", (int)pid);
		if (kill(pid, SIGKILL) < 0)
			tlshd_log_errno(LOG_ERR, -errno, "cannot kill worker %d", (int)pid);
	}
	if (r == -ECONNRESET)
		daemon_keyholder_reap(d, true);
}

static void daemon_reload(struct tlshd_daemon *d)
{
	const char *path = options_config_path(d->opts);
	struct tlshd_config *cfg;
	struct tlshd_keyholder kh = { .ctl_fd = -1 };
	struct tlshd_creds_remote keys = { 0 };
	bool held;

	sd_notify(0, "RELOADING=1");
	tlshd_notice("reloading the configuration");
	if (tlshd_config_load(path, &cfg) < 0) {
		tlshd_err("new configuration in %s rejected, keeping the current one", path);
		sd_notify(0, "READY=1");
		return;
	}
	held = daemon_wants_keyholder(cfg);
	if ((held && daemon_keyholder_start(d, cfg, &kh, &keys) < 0) ||
	    tlshd_tls_reload(&d->ctx, cfg, held ? &keys : NULL) < 0) {
		tlshd_err("credentials named by the new configuration are unusable, "
			  "keeping the current configuration");
		tlshd_keyholder_release(&kh);
		tlshd_config_free(cfg);
		sd_notify(0, "READY=1");
		return;
	}
	/* The old holder signs for the workers it serves, then exits. */
	tlshd_keyholder_release(&d->kh);
	d->kh = kh;
	d->keys = keys;
	d->kh_retry_ms = 0;
	/* Workers already running keep their copy-on-write snapshot; idle
	 * spares are replaced by ones forked with the new one. */
	tlshd_supervisor_retire_spares(&d->sv);
	tlshd_config_free(d->cfg);
	d->cfg = cfg;
	tlshd_log_set_debug(cfg->loglevel > 0);
	tlshd_tls_set_debug(cfg->tls_debug);
	tlshd_notice("configuration reloaded");
	sd_notify(0, "READY=1");
}

/* A worker's connection to the key holder, when one runs: kp[1] is the
 * worker's, kp[0] goes to the holder. */
static void daemon_keyholder_pair(struct tlshd_daemon *d, int kp[2])
{
	kp[0] = kp[1] = -1;
	if (d->kh.ctl_fd >= 0 && socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, kp) < 0) {
		tlshd_log_errno(LOG_WARNING, -errno, "no connection to the key holder for a "
				"worker: it cannot present a configured certificate");
		kp[0] = kp[1] = -1;
	}
}

/* Parent: the holder gets its end of worker @pid's connection. */
static void daemon_keyholder_hand(struct tlshd_daemon *d, pid_t pid, int kp[2])
{
	int r;

	if (kp[0] < 0)
		return;
	close(kp[1]);
	r = tlshd_keyholder_attach(&d->kh, pid, kp[0]);
	if (r < 0)
		tlshd_log_errno(LOG_WARNING, r, "cannot hand worker %d's connection to the key "
				"holder: it cannot present a configured certificate", (int)pid);
	close(kp[0]);
}

static void daemon_close_pair(int p[2])
{
	if (p[0] >= 0)
		close(p[0]);
	if (p[1] >= 0)
		close(p[1]);
}

/* A job keyring for the next spare, or 0 (said once). */
static key_serial_t daemon_job_ring(struct tlshd_daemon *d)
{
	key_serial_t ring = tlshd_keyring_job_new(++d->job_rings);

	if (ring > 0)
		return ring;
	if (!d->no_job_ring_said)
		tlshd_log_errno(LOG_WARNING, ring, "cannot make a job keyring for spare workers: "
				"they wait as root and get ready when a request comes");
	d->no_job_ring_said = true;
	return 0;
}

/* Forks a worker for the oldest waiting request, or a spare. */
static int daemon_fork(struct tlshd_daemon *d, bool spare)
{
	struct tlshd_job *job = spare ? NULL : tlshd_supervisor_next(&d->sv);
	int go[2] = { -1, -1 }, kp[2];
	key_serial_t ring = 0;
	pid_t pid;

	/* A spare waits there for its request; any worker, once served,
	 * for leave to exit (without one, it exits at once). */
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, go) < 0) {
		if (spare)
			return -errno;
		go[0] = go[1] = -1;
	}
	/* (Without one, the spare does all its set-up once dispatched.) */
	if (spare)
		ring = daemon_job_ring(d);
	daemon_keyholder_pair(d, kp);
	pid = fork();
	if (pid < 0) {
		int r = -errno;

		daemon_close_pair(go);
		daemon_close_pair(kp);
		tlshd_keyring_job_drop(ring);
		return r;
	}
	if (pid == 0) {
		/* ps and top tell idle spares from busy workers by name, from
		 * the spare's first moment on. */
		if (spare)
			prctl(PR_SET_NAME, "tlshd-spare");
		if (kp[0] >= 0)
			close(kp[0]);
		d->signer.fd = kp[1];
		daemon_child_init(d, job);
		if (go[1] >= 0)
			close(go[1]);
		if (!spare)
			_exit(tlshd_worker_run(&d->env, job, go[0]));
		_exit(tlshd_worker_run_spare(&d->env, go[0], ring));
	}
	daemon_keyholder_hand(d, pid, kp);
	if (go[0] >= 0)
		close(go[0]);
	if (spare)
		tlshd_supervisor_spare_started(&d->sv, pid, go[1], ring, tlshd_util_now_ms());
	else
		tlshd_supervisor_started(&d->sv, pid, go[1], tlshd_util_now_ms());
	return 0;
}

/* Why the parent's ACCEPT failed, said once per failure. */
static void daemon_accept_failed(int r)
{
	if (r == -EPERM)
		tlshd_err("ACCEPT refused: the daemon lacks CAP_NET_ADMIN");
	else if (r == -ETIMEDOUT)
		tlshd_err("the kernel did not answer ACCEPT");
	else if (r == -EBADMSG || r == -EINVAL || r == -EALREADY || r == -E2BIG || r == -ENOENT)
		tlshd_log_errno(LOG_ERR, r, "kernel sent an unusable handshake request with no "
				"socket, cannot answer it; the consumer will time out");
	else
		tlshd_log_errno(LOG_ERR, r, "ACCEPT failed");
}

/* ACCEPTs what the kernel announced, as long as workers may take it. */
static void daemon_accept(struct tlshd_daemon *d)
{
	while (tlshd_supervisor_should_accept(&d->sv, tlshd_util_now_ms())) {
		struct tlshd_job *job = calloc(1, sizeof(*job));
		int r = -ENOMEM;

		if (job) {
			job->ready_us = d->ready_us;
			r = tlshd_genl_accept(&d->cmd, &job->req);
			job->accepted_us = tlshd_util_now_us();
			/* (Also after a failed ACCEPT: nothing stays linked.) */
			job->kernel_ring = tlshd_keyring_take_accepted();
		}
		/* A request that does not parse but has a socket still gets
		 * a worker, which DONEs it with EINVAL and logs why. */
		if (job && (r == 0 || (r != -EAGAIN && job->req.sockfd >= 0))) {
			job->parse_err = r;
			tlshd_supervisor_accepted(&d->sv, job);
			continue;
		}
		free(job);
		if (r != -EAGAIN)
			daemon_accept_failed(r);
		tlshd_supervisor_accept_failed(&d->sv, r, tlshd_util_now_ms());
		break;
	}
}

/* Waiting requests to idle spares: a message each, with the socket. */
static void daemon_dispatch(struct tlshd_daemon *d)
{
	while (tlshd_supervisor_dispatch(&d->sv, tlshd_util_now_ms()))
		;
}

/* The DONE a request's worker could not send (see supervisor.h), and
 * the request's log entry, which the worker did not write either. */
static void daemon_orphan(void *data, pid_t pid, struct tlshd_job *job, int status)
{
	struct tlshd_daemon *d = data;
	const struct tlshd_request *req = job->parse_err ? NULL : &job->req;
	struct tlshd_result res = { .status = status };
	char peer[TLSHD_PEER_LABEL_MAX], reason[96];
	struct tlshd_log_handshake h = {
		.role = req ? tlshd_role_name(req->role) : "?",
		.auth = req ? tlshd_auth_name(req->auth) : "?",
		.peer = peer,
		.peername = req && req->has_peername ? req->peername : NULL,
		.status = status,
		.reason = reason,
		.duration_ms = (tlshd_util_now_us() - job->accepted_us) / 1000,
	};
	int r;

	tlshd_util_peer_label(job->req.sockfd, peer, sizeof(peer));
	r = tlshd_genl_done(&d->cmd, job->req.sockfd, &res);
	if (pid)
		snprintf(reason, sizeof(reason), "its worker (pid %d) ended without a report",
			 (int)pid);
	else
		snprintf(reason, sizeof(reason), "the daemon is shutting down");
	if (r == -EBUSY) {
		/* The kernel completed it already (its consumer gave up
		 * on it): nothing to answer. */
		tlshd_debug("worker %d's request, %s: already completed", (int)pid, peer);
		return;
	}
	if (r < 0) {
		h.status = -r;
		snprintf(reason, sizeof(reason), "its worker (pid %d) ended without a report, and the "
			 "kernel rejected the daemon's DONE", (int)pid);
	}
	tlshd_log_handshake(&h);
}

static void daemon_on_netlink(struct tlshd_daemon *d)
{
	unsigned int n = 0;
	int r;

	r = tlshd_genl_read_ready(&d->listen, &n);
	if (n)
		d->ready_us = tlshd_util_now_us();
	tlshd_supervisor_ready(&d->sv, n);
	if (r == -ENOBUFS) {
		tlshd_warn("missed handshake notifications (socket overrun), draining the queue");
		tlshd_supervisor_drain(&d->sv);
	} else if (r < 0) {
		tlshd_log_errno(LOG_ERR, r, "reading handshake notifications failed");
	}
}

/* The READY notifications read, their requests ACCEPTed and handed to
 * idle spares. */
static void daemon_on_ready(struct tlshd_daemon *d)
{
	daemon_on_netlink(d);
	daemon_accept(d);
	daemon_dispatch(d);
}

/* READY notifications that came while the parent forked: their
 * requests are ACCEPTed before the next fork. In a burst the parent
 * forks a worker for each request, and the kernel refuses requests
 * past its small pending cap (3 in a small guest) while they wait to be
 * ACCEPTed: behind a row of forks, they would. */
static void daemon_take_ready(struct tlshd_daemon *d)
{
	struct pollfd p = { .fd = tlshd_genl_fd(&d->listen), .events = POLLIN };

	if (poll(&p, 1, 0) > 0)
		daemon_on_ready(d);
}

/*
 * Waiting requests go to idle spares first, then to workers forked for
 * them; once none waits, spares are forked ahead of the next ones.
 * Returns -EAGAIN when a request is left waiting because fork failed, 1
 * when the loop is to come back at once: more spares are wanted (beyond
 * the minimum they are forked one per pass of the event loop, so that a
 * READY arriving meanwhile is not kept waiting behind a row of forks),
 * or a request ACCEPTed between two forks waits for its worker.
 */
static int daemon_fork_workers(struct tlshd_daemon *d)
{
	int r;

	daemon_dispatch(d);
	while (tlshd_supervisor_should_fork(&d->sv, tlshd_util_now_ms())) {
		r = daemon_fork(d, false);
		if (r < 0) {
			tlshd_log_errno(LOG_ERR, r, "cannot fork a worker, retrying in %d ms",
					TLSHD_FORK_RETRY_MS);
			return -EAGAIN;
		}
		daemon_take_ready(d);
	}
	while (tlshd_supervisor_should_spare(&d->sv, tlshd_util_now_ms())) {
		r = daemon_fork(d, true);
		if (r < 0) {
			/* (Only spares are missing: no request waits.) */
			tlshd_log_errno(LOG_WARNING, r, "cannot fork a spare worker");
			break;
		}
		daemon_take_ready(d);
		if (d->sv.queued)
			return 1;	/* one came meanwhile: its fork, next pass */
		if (d->sv.spares > d->sv.min_spares)
			return tlshd_supervisor_should_spare(&d->sv, tlshd_util_now_ms());
	}
	return 0;
}

static void daemon_on_signal(struct tlshd_daemon *d)
{
	struct signalfd_siginfo si;

	while (read(d->sigfd, &si, sizeof(si)) == sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGCHLD:
			daemon_keyholder_reap(d, false);
			tlshd_supervisor_reap(&d->sv, tlshd_util_now_ms());
			break;
		case SIGHUP:
		case SIGUSR1:
			daemon_reload(d);
			break;
		case SIGUSR2:
			tlshd_notice("%u handshake(s) in flight, %llu succeeded, %llu failed, "
				     "%llu worker(s) could not serve, %u request(s) waiting",
				     d->sv.running, d->sv.succeeded, d->sv.failed, d->sv.crashed,
				     d->sv.queued + d->sv.announced);
			break;
		case SIGINT:
		case SIGTERM:
		case SIGQUIT:
			d->stop = true;
			break;
		}
	}
}

/* -t: everything start-up would load, without joining the kernel. */
static int check_config(const struct tlshd_options *o)
{
	struct tlshd_context ctx;
	struct tlshd_config *cfg;
	int family, group, r;

	const char *path = options_config_path(o), *name = path ? path : "built-in defaults";

	tlshd_log_open(TLSHD_LOG_STDERR);
	if (tlshd_config_load(path, &cfg) < 0)
		return TLSHD_EXIT_CONFIG;
	r = tlshd_tls_init(&ctx, cfg, NULL);
	if (r == 0)
		tlshd_tls_done(&ctx);
	tlshd_config_free(cfg);
	if (r < 0) {
		fprintf(stderr, "tlshd: %s: configuration NOT usable\n", name);
		return TLSHD_EXIT_CONFIG;
	}
	if (tlshd_genl_resolve(&family, &group) == -ENOENT)
		tlshd_warn("note: this kernel has no 'handshake' netlink family "
			   "(CONFIG_NET_HANDSHAKE); the daemon cannot serve here");
	printf("tlshd: %s: configuration OK\n", name);
	return TLSHD_EXIT_OK;
}

/* STATUS= for systemctl status: what the workers are doing. Returns the
 * ms until a held-back change is due, or -1. */
static int daemon_status(struct tlshd_daemon *d, long long now_ms)
{
	char now[sizeof(d->status)];
	long long due = d->status_ms + TLSHD_STATUS_INTERVAL_MS;

	snprintf(now, sizeof(now), "handshakes: %u in flight, %llu succeeded, %llu failed",
		 d->sv.running, d->sv.succeeded, d->sv.failed + d->sv.crashed);
	if (!strcmp(now, d->status))
		return -1;
	if (d->status_ms && now_ms < due)
		return (int)(due - now_ms);
	memcpy(d->status, now, sizeof(now));
	d->status_ms = now_ms;
	sd_notifyf(0, "STATUS=%s", now);
	return -1;
}

/* A worker reported its outcome (tlshd_report_served_fn): its request's
 * DONE, from here, where CAP_NET_ADMIN is; the rest of the worker's exit
 * no longer counts as a handshake running. */
static int daemon_served(void *data, pid_t pid, const struct tlshd_result *res)
{
	struct tlshd_daemon *d = data;
	const struct tlshd_job *job = tlshd_supervisor_job(&d->sv, pid);
	char peer[TLSHD_PEER_LABEL_MAX];
	int r;

	if (!job)
		return -ESRCH;
	r = tlshd_genl_done(&d->cmd, job->req.sockfd, res);
	if (r < 0) {
		tlshd_util_peer_label(job->req.sockfd, peer, sizeof(peer));
		tlshd_log_errno(LOG_ERR, r, "kernel rejected DONE for worker %d's request, %s "
				"(status %s)", (int)pid, peer, tlshd_errno_name(res->status));
	}
	tlshd_supervisor_served(&d->sv, pid, r < 0 && !res->status ? -r : res->status,
				tlshd_util_now_ms());
	return r;
}

/* The sooner of two poll() timeouts, -1 being none. */
static int daemon_sooner(int a, int b)
{
	if (a < 0)
		return b;
	if (b < 0)
		return a;
	return a < b ? a : b;
}

static int daemon_loop(struct tlshd_daemon *d)
{
	struct pollfd fds[5] = {
		{ .fd = tlshd_genl_fd(&d->listen), .events = POLLIN },
		{ .fd = d->sigfd, .events = POLLIN },
		{ .fd = d->env.report.parent_fd, .events = POLLIN },	/* -1: ignored */
		{ .events = POLLIN },			/* the key holder, set below */
		{ .events = POLLOUT },			/* journal entries waiting, below */
	};

	/* Requests queued before we joined the group got no READY to us. */
	tlshd_supervisor_drain(&d->sv);
	while (!d->stop) {
		int timeout, r, kh_timeout, idle, forked;
		long long now;

		/* A key holder first: the workers forked next connect to it. */
		kh_timeout = daemon_keyholder_retry(d, tlshd_util_now_ms());
		daemon_accept(d);
		/* Spares, then exits, once nothing has run for a moment. */
		idle = tlshd_supervisor_idle(&d->sv, tlshd_util_now_ms());
		forked = daemon_fork_workers(d);
		now = tlshd_util_now_ms();

		timeout = daemon_sooner(tlshd_supervisor_police(&d->sv, now), idle);
		/* Successes go to the journal once no request has run for a
		 * moment, as exits do (whose timer wakes the loop for both:
		 * every entry held came with a parked worker, or without a
		 * go socket, from one whose entry waits its second at most). */
		timeout = daemon_sooner(timeout, tlshd_report_release(&d->env.report,
								       tlshd_supervisor_settled(&d->sv, now),
								       now));
		timeout = daemon_sooner(timeout, daemon_status(d, now));
		timeout = daemon_sooner(timeout, kh_timeout);
		if (forked == -EAGAIN)
			timeout = daemon_sooner(timeout, TLSHD_FORK_RETRY_MS);
		else if (forked > 0)
			timeout = 0;	/* the next spare, after a look at events */
		fds[3].fd = d->kh.ctl_fd;
		fds[4].fd = tlshd_log_backlog_fd();
		r = poll(fds, 5, timeout);
		if (r < 0 && errno != EINTR)
			return tlshd_log_errno(LOG_ERR, -errno, "poll failed");
		/* Requests first: ACCEPTed and on their way to spares before
		 * the parent writes anyone's log entry, reaps or forks. */
		if (fds[0].revents)
			daemon_on_ready(d);
		/* Reports before reaping: a worker reaped below has sent its
		 * own. */
		if (fds[2].revents)
			tlshd_report_drain(&d->env.report, daemon_served, d);
		if (fds[3].revents)
			daemon_on_keyholder(d);
		if (fds[1].revents)
			daemon_on_signal(d);
		/* Last: what this round logged goes out with the rest. */
		if (fds[4].revents)
			tlshd_log_flush();
	}
	return 0;
}

/* Stopping: no request is taken any more (the caller has left the
 * multicast group); those being served get TLSHD_STOP_WAIT_MS to report,
 * so that their DONEs carry their outcomes. tlshd_supervisor_done() then
 * answers the rest with ESHUTDOWN. */
static void daemon_stop_serving(struct tlshd_daemon *d)
{
	long long end = tlshd_util_now_ms() + TLSHD_STOP_WAIT_MS;
	struct pollfd fds[2] = {
		{ .fd = d->env.report.parent_fd, .events = POLLIN },
		{ .fd = d->sigfd, .events = POLLIN },
	};

	tlshd_supervisor_retire_spares(&d->sv);
	while (d->sv.running) {
		long long left = end - tlshd_util_now_ms();

		if (left <= 0) {
			tlshd_warn("%u handshake(s) still in flight, answered with ESHUTDOWN",
				   d->sv.running);
			return;
		}
		if (poll(fds, 2, (int)left) < 0 && errno != EINTR)
			return;
		if (fds[0].revents)
			tlshd_report_drain(&d->env.report, daemon_served, d);
		if (fds[1].revents)
			daemon_on_signal(d);
	}
}

int main(int argc, char **argv)
{
	struct tlshd_options o = { 0 };
	struct tlshd_daemon d = {
		.sigfd = -1, .opts = &o, .kh = { .ctl_fd = -1 }, .signer = { .fd = -1 },
	};
	int ret = TLSHD_EXIT_RUNTIME;
	long hook_ms = 0;
	bool held;
	int r;

	if (parse_options(argc, argv, &o) < 0)
		return TLSHD_EXIT_CONFIG;
	if (o.check_config)
		return check_config(&o);
	tlshd_log_open(o.to_stderr ? TLSHD_LOG_STDERR : tlshd_log_default_sink());
	if (tlshd_config_load(options_config_path(&o), &d.cfg) < 0)
		return TLSHD_EXIT_CONFIG;
	tlshd_log_set_debug(d.cfg->loglevel > 0);
	tlshd_privs_worker_ids(&d.env.ids);
	tlshd_debug("workers run as uid %u, gid %u after ACCEPT", (unsigned int)d.env.ids.uid,
		    (unsigned int)d.env.ids.gid);
	d.env.report = (struct tlshd_report){ .parent_fd = -1, .worker_fd = -1 };
	r = tlshd_report_open(&d.env.report, tlshd_log_sink() == TLSHD_LOG_JOURNAL);
	if (r < 0) {
		tlshd_log_errno(LOG_ERR, r, "cannot open the workers' report channel");
		goto out_report;
	}
	/* Signals first, so that not even the key holder's end is missed. */
	if (daemon_signals(&d) < 0) {
		tlshd_log_errno(LOG_ERR, -errno, "cannot set up signal handling");
		goto out_report;
	}
	/* The key holder is forked next: it never has a netlink socket. */
	held = daemon_wants_keyholder(d.cfg);
	if (!held && tlshd_keyholder_needed(d.cfg))
		tlshd_warn("test hook no-keyholder: the configured private keys are loaded into "
			   "the daemon and every worker");
	if (held && daemon_keyholder_start(&d, d.cfg, &d.kh, &d.keys) < 0)
		goto out_report;
	if (tlshd_tls_init(&d.ctx, d.cfg, held ? &d.keys : NULL) < 0)
		goto out_keyholder;
	d.env.ctx = &d.ctx;
	/* Before the first fork: workers inherit what it readied. */
	tlshd_tls_warm(&d.ctx);
	if (tlshd_supervisor_init(&d.sv, TLSHD_MAX_WORKERS_DEFAULT) < 0)
		goto out_tls;
	d.sv.orphan = daemon_orphan;
	d.sv.orphan_data = &d;
	tlshd_supervisor_set_spares(&d.sv, TLSHD_SPARE_WORKERS_DEFAULT, TLSHD_SPARE_BURST_DEFAULT,
				    tlshd_util_now_ms());
	if (tlshd_test_hook("kill-after-ms", &hook_ms) && hook_ms > 0)
		d.sv.kill_after_ms = hook_ms;
	/* (Served workers stay parked that long, up to twice that.) */
	if (tlshd_test_hook("exit-quiet-ms", &hook_ms) && hook_ms > 0) {
		d.sv.exit_quiet_ms = hook_ms;
		d.sv.park_max_ms = 2 * hook_ms;
	}
	if (daemon_join_kernel(&d) < 0) {
		ret = TLSHD_EXIT_KERNEL;
		goto out_supervisor;
	}
	tlshd_notice("tlshd %s ready: serving TLS handshakes for kernel consumers",
		     PACKAGE_VERSION);
	sd_notify(0, "READY=1");
	if (daemon_loop(&d) == 0)
		ret = TLSHD_EXIT_OK;
	sd_notify(0, "STOPPING=1");
	tlshd_notice("shutting down");

	tlshd_genl_close(&d.listen);
	daemon_stop_serving(&d);
out_supervisor:
	/* (Requests not yet with a worker get their DONE here.) */
	tlshd_supervisor_done(&d.sv);
	tlshd_genl_close(&d.cmd);
out_tls:
	tlshd_tls_done(&d.ctx);
out_keyholder:
	tlshd_keyholder_release(&d.kh);
out_report:
	tlshd_report_drain(&d.env.report, NULL, NULL);
	tlshd_report_close(&d.env.report);
	tlshd_log_drain(1000);
	if (d.sigfd >= 0)
		close(d.sigfd);
	tlshd_config_free(d.cfg);
	return ret;
}
