// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Handshake engine, common part: the socket transport, the deadline, the
 * GnuTLS-error-to-errno mapping, alerts, and the hand-over to kTLS.
 *
 * The socket is the consumer's own (same struct file), so the engine
 * never changes its flags: every read and write uses MSG_DONTWAIT and
 * waiting happens in poll() against the deadline. That works the same
 * for NFS's non-blocking sockets and NVMe's blocking ones with a receive
 * timeout.
 */
#include "build-config.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "config.h"
#include "log.h"
#include "tls.h"

static void tls_gnutls_log(int level, const char *msg)
{
	size_t len = strlen(msg);

	while (len && msg[len - 1] == '\n')
		len--;
	tlshd_log(LOG_DEBUG, "gnutls(%d): %.*s", level, (int)len, msg);
}

void tlshd_tls_set_debug(int level)
{
	gnutls_global_set_log_level(level);
}

int tlshd_tls_init(struct tlshd_context *ctx, const struct tlshd_config *cfg)
{
	int r;

	memset(ctx, 0, sizeof(*ctx));
	ctx->cfg = cfg;
	ctx->psk_key_type = "psk";
	r = gnutls_global_init();
	if (r < 0) {
		tlshd_err("cannot initialise GnuTLS: %s", gnutls_strerror(r));
		return -EIO;
	}
	gnutls_global_set_log_function(tls_gnutls_log);
	tlshd_tls_set_debug(cfg->tls_debug);
	r = tlshd_priority_init(&ctx->prio);
	if (r < 0)
		goto fail_global;
	r = tlshd_creds_load(cfg, &ctx->creds);
	if (r < 0)
		goto fail_prio;
	tlshd_tls_x509_attach(&ctx->creds);
	return 0;

fail_prio:
	tlshd_priority_done(&ctx->prio);
fail_global:
	gnutls_global_deinit();
	return r;
}

int tlshd_tls_reload(struct tlshd_context *ctx, const struct tlshd_config *cfg)
{
	struct tlshd_creds creds;
	int r;

	r = tlshd_creds_load(cfg, &creds);
	if (r < 0)
		return r;
	tlshd_tls_x509_attach(&creds);
	tlshd_creds_done(&ctx->creds);
	ctx->creds = creds;
	ctx->cfg = cfg;
	return 0;
}

void tlshd_tls_done(struct tlshd_context *ctx)
{
	tlshd_creds_done(&ctx->creds);
	tlshd_priority_done(&ctx->prio);
	gnutls_global_deinit();
}

void tlshd_handshake_set_deadline(struct tlshd_handshake *hs)
{
	unsigned int ms = hs->req->timeout_ms ? hs->req->timeout_ms : TLSHD_DEFAULT_TIMEOUT_MS;

	if (ms > TLSHD_MAX_TIMEOUT_MS)
		ms = TLSHD_MAX_TIMEOUT_MS;
	clock_gettime(CLOCK_MONOTONIC, &hs->deadline);
	hs->deadline.tv_sec += ms / 1000;
	hs->deadline.tv_nsec += (long)(ms % 1000) * 1000000;
	if (hs->deadline.tv_nsec >= 1000000000) {
		hs->deadline.tv_sec++;
		hs->deadline.tv_nsec -= 1000000000;
	}
}

static int tls_ms_left(const struct tlshd_handshake *hs)
{
	struct timespec now;
	long long ms;

	clock_gettime(CLOCK_MONOTONIC, &now);
	/* Rounded up, so that poll() never wakes before the deadline. */
	ms = (hs->deadline.tv_sec - now.tv_sec) * 1000LL +
	     (hs->deadline.tv_nsec - now.tv_nsec + 999999) / 1000000;
	if (ms <= 0)
		return 0;
	return ms > TLSHD_MAX_TIMEOUT_MS ? TLSHD_MAX_TIMEOUT_MS : (int)ms;
}

/* Transport: non-blocking I/O on the consumer's socket. */

static ssize_t tls_pull(gnutls_transport_ptr_t ptr, void *buf, size_t len)
{
	int fd = (int)(intptr_t)ptr;

	return recv(fd, buf, len, MSG_DONTWAIT);
}

static ssize_t tls_vec_push(gnutls_transport_ptr_t ptr, const giovec_t *iov, int iovcnt)
{
	struct msghdr msg = {
		.msg_iov = (struct iovec *)iov,
		.msg_iovlen = iovcnt,
	};
	int fd = (int)(intptr_t)ptr;

	return sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
}

static int tls_pull_timeout(gnutls_transport_ptr_t ptr, unsigned int ms)
{
	struct pollfd p = { .fd = (int)(intptr_t)ptr, .events = POLLIN };

	return poll(&p, 1, ms == GNUTLS_INDEFINITE_TIMEOUT ? -1 : (int)ms);
}

int tlshd_tls_session_new(struct tlshd_handshake *hs, unsigned int flags,
			  gnutls_session_t *ret)
{
	gnutls_session_t s;
	int r;

	r = gnutls_init(&s, flags | GNUTLS_NO_TICKETS | GNUTLS_NONBLOCK);
	if (r < 0)
		return -ENOMEM;
	gnutls_transport_set_ptr(s, (gnutls_transport_ptr_t)(intptr_t)hs->fd);
	gnutls_transport_set_pull_function(s, tls_pull);
	gnutls_transport_set_vec_push_function(s, tls_vec_push);
	gnutls_transport_set_pull_timeout_function(s, tls_pull_timeout);
	/* The engine enforces the deadline itself, around poll(). */
	gnutls_handshake_set_timeout(s, GNUTLS_INDEFINITE_TIMEOUT);
	gnutls_session_set_ptr(s, hs);
	hs->session_opened = true;
	*ret = s;
	return 0;
}

/*
 * A server that fails before it has a session (no certificate, no usable
 * suite) still owes the client an answer to its ClientHello: a fatal
 * alert in the clear, so that the client fails at once instead of seeing
 * a closed connection and retrying.
 */
#define TLSHD_REJECT_WAIT_MS	2000

static void tls_reject_early(struct tlshd_handshake *hs)
{
	gnutls_alert_description_t alert = hs->result.status == ENOMEM ?
		GNUTLS_A_INTERNAL_ERROR : GNUTLS_A_HANDSHAKE_FAILURE;
	struct pollfd p = { .fd = hs->fd, .events = POLLIN };
	unsigned char hello[4096];
	gnutls_session_t s;
	int ms = tls_ms_left(hs);

	/* Answer the ClientHello, not the connection: wait (briefly) until it
	 * is there and consume it, so that the client is reading when the
	 * alert arrives and closing the socket does not reset it. */
	if (poll(&p, 1, ms < TLSHD_REJECT_WAIT_MS ? ms : TLSHD_REJECT_WAIT_MS) == 1)
		while (recv(hs->fd, hello, sizeof(hello), MSG_DONTWAIT) > 0)
			;
	if (tlshd_tls_session_new(hs, GNUTLS_SERVER, &s) < 0)
		return;
	/* GnuTLS needs a priority to frame even a plaintext alert. */
	if (gnutls_set_default_priority(s) == 0)
		gnutls_alert_send(s, GNUTLS_AL_FATAL, alert);
	gnutls_deinit(s);
}

/* The handshake's small flights must not wait for delayed ACKs. */
static int tls_nodelay(int fd, int on)
{
	int old = 0;
	socklen_t len = sizeof(old);

	if (getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &old, &len) < 0)
		return -1;
	if (old != on)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	return old;
}

static int tls_wait(struct tlshd_handshake *hs, gnutls_session_t s)
{
	struct pollfd p = {
		.fd = hs->fd,
		.events = gnutls_record_get_direction(s) ? POLLOUT : POLLIN,
	};
	int ms = tls_ms_left(hs), r;

	if (!ms)
		return -ETIMEDOUT;
	r = poll(&p, 1, ms);
	if (r < 0)
		return errno == EINTR ? 0 : -errno;
	return r == 0 ? -ETIMEDOUT : 0;
}

/* Returns 0, a GnuTLS error (< 0, fatal), or -ETIMEDOUT as a GnuTLS
 * timeout (GNUTLS_E_TIMEDOUT). */
static int tls_handshake_loop(struct tlshd_handshake *hs, gnutls_session_t s)
{
	for (;;) {
		int r = gnutls_handshake(s);

		if (r == GNUTLS_E_SUCCESS)
			return 0;
		if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED) {
			r = tls_wait(hs, s);
			if (r == -ETIMEDOUT)
				return GNUTLS_E_TIMEDOUT;
			if (r < 0)
				return GNUTLS_E_PULL_ERROR;
			continue;
		}
		if (gnutls_error_is_fatal(r))
			return r;
		if (r == GNUTLS_E_WARNING_ALERT_RECEIVED)
			tlshd_debug("peer sent warning alert %s",
				    gnutls_alert_get_name(gnutls_alert_get(s)));
	}
}

static void tls_vset_reason(struct tlshd_handshake *hs, const char *fmt, va_list ap)
{
	vsnprintf(hs->reason, sizeof(hs->reason), fmt, ap);
}

/*
 * Maps a fatal GnuTLS error to the errno the consumer gets, and sends
 * the peer the alert that goes with it. Received alerts and a vanished
 * peer get no alert back.
 */
static int tls_map_error(struct tlshd_handshake *hs, gnutls_session_t s, int err)
{
	gnutls_alert_description_t alert;

	switch (err) {
	case GNUTLS_E_FATAL_ALERT_RECEIVED:
		alert = gnutls_alert_get(s);
		snprintf(hs->reason, sizeof(hs->reason), "peer sent alert '%s'%s",
			 gnutls_alert_get_name(alert),
			 hs->req->auth == TLSHD_AUTH_PSK &&
			 (alert == GNUTLS_A_ILLEGAL_PARAMETER || alert == GNUTLS_A_DECRYPT_ERROR) ?
			 ": the server's key for this PSK identity differs from ours" : "");
		return alert == GNUTLS_A_UNKNOWN_PSK_IDENTITY ? EKEYREJECTED : EACCES;
	case GNUTLS_E_PREMATURE_TERMINATION:
	case GNUTLS_E_PULL_ERROR:
	case GNUTLS_E_PUSH_ERROR:
		/* The consumer may retry on ETIMEDOUT (NFS does), which is
		 * the right reaction to a peer that went away. */
		snprintf(hs->reason, sizeof(hs->reason), "peer closed the connection");
		return ETIMEDOUT;
	case GNUTLS_E_TIMEDOUT:
		snprintf(hs->reason, sizeof(hs->reason), "no answer from the peer within %u ms",
			 hs->req->timeout_ms ? hs->req->timeout_ms : TLSHD_DEFAULT_TIMEOUT_MS);
		gnutls_alert_send(s, GNUTLS_AL_FATAL, GNUTLS_A_USER_CANCELED);
		return ETIMEDOUT;
	case GNUTLS_E_MEMORY_ERROR:
		snprintf(hs->reason, sizeof(hs->reason), "out of memory");
		gnutls_alert_send(s, GNUTLS_AL_FATAL, GNUTLS_A_INTERNAL_ERROR);
		return ENOMEM;
	case GNUTLS_E_CERTIFICATE_ERROR:
	case GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR:
		/* The verify callback set the reason and logged it. */
		if (!hs->reason[0])
			snprintf(hs->reason, sizeof(hs->reason), "%s", gnutls_strerror(err));
		gnutls_alert_send(s, GNUTLS_AL_FATAL, tlshd_tls_x509_alert(hs->verify_status));
		return EACCES;
	case GNUTLS_E_UNEXPECTED_PACKET_LENGTH:
	case GNUTLS_E_UNSUPPORTED_VERSION_PACKET:
	case GNUTLS_E_UNEXPECTED_PACKET:
	case GNUTLS_E_RECORD_OVERFLOW:
	case GNUTLS_E_UNEXPECTED_HANDSHAKE_PACKET:
		snprintf(hs->reason, sizeof(hs->reason), "peer does not speak TLS: %s",
			 gnutls_strerror(err));
		gnutls_alert_send_appropriate(s, err);
		return EPROTO;
	}
	if (hs->psk_len && (err == GNUTLS_E_RECEIVED_ILLEGAL_PARAMETER ||
			    err == GNUTLS_E_DECRYPTION_FAILED)) {
		snprintf(hs->reason, sizeof(hs->reason), "the client's key for this PSK identity "
			 "differs from ours (binder check failed)");
		gnutls_alert_send_appropriate(s, err);
		return EACCES;
	}
	if (hs->psk_unknown) {
		snprintf(hs->reason, sizeof(hs->reason), "the client's PSK identity matches no key");
		gnutls_alert_send(s, GNUTLS_AL_FATAL, GNUTLS_A_UNKNOWN_PSK_IDENTITY);
		return EKEYREJECTED;
	}
	snprintf(hs->reason, sizeof(hs->reason), "%s", gnutls_strerror(err));
	gnutls_alert_send_appropriate(s, err);
	return EACCES;
}

int tlshd_tls_fail(struct tlshd_handshake *hs, gnutls_session_t session, int err,
		   const char *fmt, ...)
{
	va_list ap;

	if (fmt) {
		va_start(ap, fmt);
		tls_vset_reason(hs, fmt, ap);
		va_end(ap);
	}
	if (session && err < 0 && !fmt)
		err = tls_map_error(hs, session, err);
	else if (err < 0)
		err = -err;
	hs->result.status = err;
	hs->result.num_remote_auth = 0;
	return -err;
}

static void tls_describe(struct tlshd_handshake *hs, gnutls_session_t s)
{
	const char *suite = gnutls_ciphersuite_get(s);

	snprintf(hs->cipher, sizeof(hs->cipher), "%s", suite ? suite : "?");
}

static int tls_install_ktls(struct tlshd_handshake *hs, gnutls_session_t s)
{
	const char *step;
	int r;

	r = tlshd_ktls_from_session(s, false, &hs->tx);
	if (!r)
		r = tlshd_ktls_from_session(s, true, &hs->rx);
	if (r < 0) {
		gnutls_alert_send(s, GNUTLS_AL_FATAL, GNUTLS_A_INTERNAL_ERROR);
		return tlshd_tls_fail(hs, NULL, -EIO, "negotiated %s, which kTLS cannot take over",
				      hs->cipher);
	}
	if (hs->no_ktls)
		return 0;
	r = tlshd_ktls_install(hs->fd, &hs->tx, &hs->rx, &step);
	tlshd_ktls_wipe(&hs->tx);
	tlshd_ktls_wipe(&hs->rx);
	if (r == 0)
		return 0;
	/* Until the ULP is attached the record layer is still ours, so
	 * the peer can be told; after that, the kernel owns the socket. */
	if (!strcmp(step, "TCP_ULP"))
		gnutls_alert_send(s, GNUTLS_AL_FATAL, GNUTLS_A_INTERNAL_ERROR);
	if (r == -ENOENT && !strcmp(step, "TCP_ULP"))
		return tlshd_tls_fail(hs, NULL, -EIO,
				      "kTLS unavailable: the kernel has no 'tls' ULP (CONFIG_TLS)");
	return tlshd_tls_fail(hs, NULL, -EIO, "kTLS setsockopt %s failed for %s: %s",
			      step, hs->cipher, strerror(-r));
}

int tlshd_tls_drive(struct tlshd_handshake *hs, gnutls_session_t s,
		    int (*check)(struct tlshd_handshake *hs, gnutls_session_t s))
{
	int nodelay, r;

	nodelay = tls_nodelay(hs->fd, 1);
	r = tls_handshake_loop(hs, s);
	if (nodelay >= 0)
		tls_nodelay(hs->fd, nodelay);
	if (r < 0)
		return tlshd_tls_fail(hs, s, r, NULL);
	tls_describe(hs, s);
	if (gnutls_protocol_get_version(s) != GNUTLS_TLS1_3) {
		gnutls_alert_send(s, GNUTLS_AL_FATAL, GNUTLS_A_PROTOCOL_VERSION);
		return tlshd_tls_fail(hs, NULL, -EPROTO, "peer negotiated a version other than TLS 1.3");
	}
	if (check) {
		r = check(hs, s);
		if (r < 0)
			return r;
	}
	r = tls_install_ktls(hs, s);
	if (!r)
		hs->result.status = 0;
	return r;
}

int tlshd_handshake_run(struct tlshd_handshake *hs)
{
	int r;

	hs->result = (struct tlshd_result){ .status = EIO };
	hs->reason[0] = '\0';
	hs->cipher[0] = '\0';
	if (!hs->deadline.tv_sec)
		tlshd_handshake_set_deadline(hs);
	switch (hs->req->role) {
	case TLSHD_ROLE_CLIENT:
		return tlshd_tls_client(hs);
	case TLSHD_ROLE_SERVER:
		r = tlshd_tls_server(hs);
		if (r < 0 && !hs->session_opened)
			tls_reject_early(hs);
		return r;
	}
	return tlshd_tls_fail(hs, NULL, -EINVAL, "unknown role");
}
