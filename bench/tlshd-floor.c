// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * tlshd-floor: what a bare TLS 1.3 PSK handshake costs on this machine,
 * the floor tools/bench.sh holds tlshd's latency against.
 *
 * Each handshake: one socketpair, one fork; the child is the server, the
 * parent the client; each side allocates its PSK credentials and session
 * with the priority tlshd uses for a SHA-256 PSK (priority.c, the same
 * string) and runs the handshake. No kernel request, no netlink, no
 * keyring, no kTLS: the time from before the fork until the child is
 * reaped is the floor.
 *
 * With -t, the two sides talk over a TCP connection on 127.0.0.1 instead
 * (TCP_NODELAY, as the NVMe/TCP host and target set it), made before the
 * clock starts, as a consumer's is before its request: the same
 * handshake with the kernel's TCP in the loop, which every agent's
 * handshake has. Informative: the goals are held against the socketpair.
 *
 * With -p, both sides run in processes of their own, forked (from this
 * warm one) before the clock starts and started by it; the clock stops
 * when both have finished their handshake, before they exit: the
 * process model tlshd's spares have (a fresh process per request, each
 * side of the handshake one, its exit outside the request). Also
 * informative.
 *
 * Usage: tlshd-floor [-t] [-p] [-n COUNT] [-c STREAMS]
 * COUNT handshakes (default 24) in STREAMS processes at once (default 1),
 * each doing its share one after the other, as the queues of NVMe
 * controllers connecting at once do. Prints "cipher NAME" once, then one
 * "floor_us N" line per handshake. Exit status 0, or 1 when a handshake
 * failed (said on stderr).
 */
#include "build-config.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gnutls/gnutls.h>

#include "log.h"
#include "priority.h"
#include "util.h"

#define FLOOR_IDENTITY	"NVMe0R01 nqn.2014-08.org.nvmexpress:uuid:floor nqn.floor"

static unsigned char floor_key[32];

static int floor_server_key(gnutls_session_t s, const char *identity, gnutls_datum_t *key)
{
	(void)s;
	if (strcmp(identity, FLOOR_IDENTITY))
		return -1;
	key->data = gnutls_malloc(sizeof(floor_key));
	if (!key->data)
		return -1;
	memcpy(key->data, floor_key, sizeof(floor_key));
	key->size = sizeof(floor_key);
	return 0;
}

/* One side of the handshake on @fd; returns a GnuTLS code. */
static int floor_side(int fd, bool server, gnutls_priority_t prio, char *cipher, size_t size)
{
	gnutls_psk_server_credentials_t scred = NULL;
	gnutls_psk_client_credentials_t ccred = NULL;
	const gnutls_datum_t key = { floor_key, sizeof(floor_key) };
	gnutls_session_t s;
	int r;

	r = gnutls_init(&s, server ? GNUTLS_SERVER : GNUTLS_CLIENT);
	if (r < 0)
		return r;
	if (server) {
		r = gnutls_psk_allocate_server_credentials(&scred);
		if (r == 0) {
			gnutls_psk_set_server_credentials_function(scred, floor_server_key);
			r = gnutls_credentials_set(s, GNUTLS_CRD_PSK, scred);
		}
	} else {
		r = gnutls_psk_allocate_client_credentials(&ccred);
		if (r == 0)
			r = gnutls_psk_set_client_credentials(ccred, FLOOR_IDENTITY, &key,
							      GNUTLS_PSK_KEY_RAW);
		if (r == 0)
			r = gnutls_credentials_set(s, GNUTLS_CRD_PSK, ccred);
	}
	if (r == 0)
		r = gnutls_priority_set(s, prio);
	if (r == 0) {
		gnutls_transport_set_int(s, fd);
		gnutls_handshake_set_timeout(s, 10000);
		do {
			r = gnutls_handshake(s);
		} while (r < 0 && !gnutls_error_is_fatal(r));
	}
	if (r == 0 && cipher)
		snprintf(cipher, size, "%s", gnutls_ciphersuite_get(s));
	gnutls_deinit(s);
	if (scred)
		gnutls_psk_free_server_credentials(scred);
	if (ccred)
		gnutls_psk_free_client_credentials(ccred);
	return r;
}

/* A TCP connection to @listener on 127.0.0.1: sv[0] the client's end,
 * sv[1] the server's; 0 or -1. */
static int floor_tcp_pair(int listener, int sv[2])
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int one = 1;

	if (getsockname(listener, (struct sockaddr *)&sin, &len) < 0)
		return -1;
	sv[0] = socket(AF_INET, SOCK_STREAM, 0);
	if (sv[0] < 0)
		return -1;
	if (connect(sv[0], (struct sockaddr *)&sin, len) < 0)
		goto fail;
	sv[1] = accept(listener, NULL, NULL);
	if (sv[1] < 0)
		goto fail;
	if (setsockopt(sv[0], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == 0 &&
	    setsockopt(sv[1], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == 0)
		return 0;
	close(sv[1]);
fail:
	close(sv[0]);
	return -1;
}

/* A listening TCP socket on 127.0.0.1, any port; or -1. */
static int floor_tcp_listen(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(fd, 4) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* One handshake over a socketpair, or over TCP to @listener when it is
 * not -1; returns its wall time in microseconds, or -1. */
static long long floor_once(gnutls_priority_t prio, int listener, char *cipher, size_t size)
{
	long long t0;
	int sv[2], status, r;
	pid_t pid;

	if (listener >= 0) {
		if (floor_tcp_pair(listener, sv) < 0) {
			perror("tlshd-floor: TCP connection on 127.0.0.1");
			return -1;
		}
		t0 = tlshd_util_now_us();
	} else {
		t0 = tlshd_util_now_us();
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) {
			perror("tlshd-floor: socketpair");
			return -1;
		}
	}
	pid = fork();
	if (pid < 0) {
		perror("tlshd-floor: fork");
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	if (pid == 0) {
		close(sv[0]);
		r = floor_side(sv[1], true, prio, NULL, 0);
		_exit(r == 0 ? 0 : 1);
	}
	close(sv[1]);
	r = floor_side(sv[0], false, prio, cipher, size);
	close(sv[0]);
	if (waitpid(pid, &status, 0) < 0)
		status = -1;
	if (r < 0) {
		fprintf(stderr, "tlshd-floor: client handshake failed: %s\n", gnutls_strerror(r));
		return -1;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		fprintf(stderr, "tlshd-floor: server handshake failed\n");
		return -1;
	}
	return tlshd_util_now_us() - t0;
}

/* A side for floor_fresh(): waits for its start, runs the handshake on
 * @fd, tells @done how it went (a byte: 0 or 1), exits. */
static void floor_fresh_side(int fd, bool server, gnutls_priority_t prio, int start, int done)
{
	char c;
	int r = -1;

	if (read(start, &c, 1) == 1)
		r = floor_side(fd, server, prio, NULL, 0);
	c = r == 0 ? 0 : 1;
	_exit(write(done, &c, 1) == 1 && r == 0 ? 0 : 1);
}

/* -p: one handshake between two pre-forked processes on @sv (closed
 * here); returns its wall time in microseconds, or -1. */
static long long floor_fresh(gnutls_priority_t prio, int sv[2])
{
	int start[2], done[2], ok = 0, status;
	long long t0, us = -1;
	pid_t pid[2] = { -1, -1 };
	char c;

	if (pipe(start) < 0 || pipe(done) < 0) {
		perror("tlshd-floor: pipe");
		return -1;
	}
	for (int i = 0; i < 2; i++) {
		pid[i] = fork();
		if (pid[i] == 0) {
			close(sv[!i]);
			floor_fresh_side(sv[i], i == 1, prio, start[0], done[1]);
		}
	}
	close(sv[0]);
	close(sv[1]);
	t0 = tlshd_util_now_us();
	if (pid[0] > 0 && pid[1] > 0 && write(start[1], "ss", 2) == 2)
		for (int i = 0; i < 2 && read(done[0], &c, 1) == 1; i++)
			ok += c == 0;
	if (ok == 2)
		us = tlshd_util_now_us() - t0;
	close(start[1]);
	for (int i = 0; i < 2; i++)
		if (pid[i] > 0 && (waitpid(pid[i], &status, 0) < 0 || !WIFEXITED(status) ||
				   WEXITSTATUS(status)))
			us = -1;
	close(start[0]);
	close(done[0]);
	close(done[1]);
	if (us < 0)
		fprintf(stderr, "tlshd-floor: a pre-forked side failed its handshake\n");
	return us;
}

/* -p: the connection (TCP to @listener, or a socketpair) made before
 * the processes, then floor_fresh(). */
static long long floor_fresh_once(gnutls_priority_t prio, int listener)
{
	int sv[2];

	if (listener >= 0 ? floor_tcp_pair(listener, sv) < 0 :
			    socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) {
		perror("tlshd-floor: connection");
		return -1;
	}
	return floor_fresh(prio, sv);
}

/* @n handshakes one after the other (over TCP when @tcp, between two
 * pre-forked processes when @fresh); prints each. */
static int floor_stream(gnutls_priority_t prio, bool tcp, bool fresh, int n, bool say_cipher)
{
	int listener = -1;
	char cipher[64] = "";

	if (tcp) {
		listener = floor_tcp_listen();
		if (listener < 0) {
			perror("tlshd-floor: listening on 127.0.0.1");
			return 1;
		}
	}
	for (int i = 0; i < n; i++) {
		long long us = fresh ? floor_fresh_once(prio, listener) :
				       floor_once(prio, listener, cipher, sizeof(cipher));

		if (us < 0)
			return 1;
		if (i == 0 && say_cipher && !fresh)
			printf("cipher %s\n", cipher);
		printf("floor_us %lld\n", us);
		fflush(stdout);
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct tlshd_priorities p;
	int n = 24, streams = 1, opt, ret = 0;
	bool tcp = false, fresh = false;

	while ((opt = getopt(argc, argv, "tpn:c:")) != -1) {
		if (opt == 't' || opt == 'p') {
			tcp |= opt == 't';
			fresh |= opt == 'p';
			continue;
		}
		if ((opt != 'n' && opt != 'c') || atoi(optarg) <= 0) {
			fprintf(stderr, "usage: tlshd-floor [-t] [-p] [-n COUNT] [-c STREAMS]\n");
			return 2;
		}
		if (opt == 'n')
			n = atoi(optarg);
		else
			streams = atoi(optarg);
	}
	tlshd_log_open(TLSHD_LOG_STDERR);
	if (gnutls_global_init() < 0 || tlshd_priority_init(&p) < 0)
		return 1;
	if (!p.prio[TLSHD_PRIO_PSK_SHA256]) {
		fprintf(stderr, "tlshd-floor: no SHA-256 PSK priority on this system\n");
		return 1;
	}
	for (size_t i = 0; i < sizeof(floor_key); i++)
		floor_key[i] = (unsigned char)(i * 37 + 11);
	fflush(stdout);
	for (int s = 0; s < streams; s++) {
		/* Stream s does its share of the n handshakes. */
		int share = n / streams + (s < n % streams);
		pid_t pid = fork();

		if (pid < 0) {
			perror("tlshd-floor: fork");
			ret = 1;
			break;
		}
		if (pid == 0)
			_exit(floor_stream(p.prio[TLSHD_PRIO_PSK_SHA256], tcp, fresh, share, s == 0));
	}
	for (;;) {
		int status;

		if (wait(&status) < 0)
			break;
		if (!WIFEXITED(status) || WEXITSTATUS(status))
			ret = 1;
	}
	tlshd_priority_done(&p);
	gnutls_global_deinit();
	return ret;
}
