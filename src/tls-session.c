// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Handshake engine, bottom layer: the socket transport, the deadline,
 * the session's lifetime, driving the handshake, mapping GnuTLS failures
 * to an errno and an alert, and the hand-over to kTLS.
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
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <linux/tls.h>

#include "log.h"
#include "tls-session.h"
#include "util.h"

struct tlshd_session *tlshd_session_new(void)
{
	return calloc(1, sizeof(struct tlshd_session));
}

struct tlshd_session *tlshd_session_free(struct tlshd_session *sess)
{
	if (!sess)
		return NULL;
	/* The session first: it uses everything below. */
	if (sess->gs)
		gnutls_deinit(sess->gs);
	if (sess->psk_client)
		gnutls_psk_free_client_credentials(sess->psk_client);
	if (sess->psk_server)
		gnutls_psk_free_server_credentials(sess->psk_server);
	if (sess->kr_key) {
		gnutls_pcert_deinit(&sess->kr_cert);
		gnutls_privkey_deinit(sess->kr_key);
	}
	free(sess);
	return NULL;
}

void tlshd_session_set_deadline(struct tlshd_handshake *hs)
{
	unsigned int ms = hs->req->timeout_ms ? hs->req->timeout_ms : TLSHD_DEFAULT_TIMEOUT_MS;

	if (ms > TLSHD_MAX_TIMEOUT_MS)
		ms = TLSHD_MAX_TIMEOUT_MS;
	hs->deadline_ms = tlshd_util_now_ms() + ms;
}

/* Milliseconds left before the deadline, 0 when it has passed. */
static int session_ms_left(const struct tlshd_handshake *hs)
{
	long long ms = hs->deadline_ms - tlshd_util_now_ms();

	if (ms <= 0)
		return 0;
	/* The clock reads truncated milliseconds: one more, so that poll()
	 * never wakes before the deadline. */
	ms++;
	return ms > TLSHD_MAX_TIMEOUT_MS ? TLSHD_MAX_TIMEOUT_MS : (int)ms;
}

static void session_vset_reason(struct tlshd_handshake *hs, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

static void session_vset_reason(struct tlshd_handshake *hs, const char *fmt, va_list ap)
{
	vsnprintf(hs->out->reason, sizeof(hs->out->reason), fmt, ap);
}

void tlshd_tls_set_identity(struct tlshd_handshake *hs, const char *fmt, ...)
{
	char *buf = hs->out->identity;
	const size_t size = sizeof(hs->out->identity);
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	if (n >= (int)size)
		memcpy(buf + size - 5, "...'", 5);
}

int tlshd_tls_fail(struct tlshd_handshake *hs, int err, const char *fmt, ...)
{
	va_list ap;

	if (hs->err)
		return err;
	hs->err = err;
	va_start(ap, fmt);
	session_vset_reason(hs, fmt, ap);
	va_end(ap);
	return err;
}

int tlshd_tls_refuse(struct tlshd_handshake *hs, int err, gnutls_alert_description_t alert,
		     const char *fmt, ...)
{
	va_list ap;

	if (hs->err)
		return err;
	hs->err = err;
	hs->pending = true;
	hs->pending_alert = alert;
	va_start(ap, fmt);
	session_vset_reason(hs, fmt, ap);
	va_end(ap);
	return err;
}

/* Transport: non-blocking I/O on the consumer's socket. */

static ssize_t session_pull(gnutls_transport_ptr_t ptr, void *buf, size_t len)
{
	int fd = (int)(intptr_t)ptr;

	return recv(fd, buf, len, MSG_DONTWAIT);
}

static ssize_t session_vec_push(gnutls_transport_ptr_t ptr, const giovec_t *iov, int iovcnt)
{
	struct msghdr msg = {
		.msg_iov = (struct iovec *)iov,
		.msg_iovlen = iovcnt,
	};
	int fd = (int)(intptr_t)ptr;

	return sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
}

static int session_pull_timeout(gnutls_transport_ptr_t ptr, unsigned int ms)
{
	struct pollfd p = { .fd = (int)(intptr_t)ptr, .events = POLLIN };

	return poll(&p, 1, ms == GNUTLS_INDEFINITE_TIMEOUT ? -1 : (int)ms);
}

static int session_init(gnutls_session_t *ret, int fd, unsigned int flags)
{
	gnutls_session_t s;

	if (gnutls_init(&s, flags | GNUTLS_NO_TICKETS | GNUTLS_NONBLOCK) < 0)
		return -ENOMEM;
	gnutls_transport_set_ptr(s, (gnutls_transport_ptr_t)(intptr_t)fd);
	gnutls_transport_set_pull_function(s, session_pull);
	gnutls_transport_set_vec_push_function(s, session_vec_push);
	gnutls_transport_set_pull_timeout_function(s, session_pull_timeout);
	/* The engine enforces the deadline itself, around poll(). */
	gnutls_handshake_set_timeout(s, GNUTLS_INDEFINITE_TIMEOUT);
	*ret = s;
	return 0;
}

/* RFC 8449: the record_size_limit extension (28), a uint16 of at least 64. */
#define TLSHD_EXT_RECORD_SIZE_LIMIT	28

static int session_ext_record_limit(void *ctx, unsigned int tls_id, const unsigned char *data,
				    unsigned int size)
{
	struct tlshd_handshake *hs = ctx;

	if (tls_id != TLSHD_EXT_RECORD_SIZE_LIMIT)
		return 0;
	/* A malformed one is GnuTLS's to refuse; it is just not used here. */
	if (size == 2 && ((data[0] << 8) | data[1]) >= 64)
		hs->peer_record_limit = (data[0] << 8) | data[1];
	return 0;
}

/* Test hook pause-after-sign (util.h): the VM suite reads the worker's
 * memory while it sleeps, its CertificateVerify signed and sent. */
static void session_test_pause(unsigned int htype, unsigned int incoming)
{
	long ms = 0;

	if (incoming || htype != GNUTLS_HANDSHAKE_CERTIFICATE_VERIFY ||
	    !tlshd_test_hook("pause-after-sign", &ms) || ms <= 0)
		return;
	tlshd_notice("test hook: worker %d sent its CertificateVerify, pausing %ld ms",
		     (int)getpid(), ms);
	tlshd_util_sleep_ms(ms);
}

/* Notes the record_size_limit the peer sends: in its ClientHello (we are
 * the server) or its EncryptedExtensions (TLS 1.3 server, we are the
 * client). GnuTLS honours it while it writes; kTLS is told after. */
static int session_hook(gnutls_session_t s, unsigned int htype, unsigned int when,
			unsigned int incoming, const gnutls_datum_t *msg)
{
	struct tlshd_handshake *hs = gnutls_session_get_ptr(s);

	session_test_pause(htype, incoming);
	if (!incoming || !msg || !msg->size)
		return 0;
	if (htype == GNUTLS_HANDSHAKE_CLIENT_HELLO)
		gnutls_ext_raw_parse(hs, session_ext_record_limit, msg,
				     GNUTLS_EXT_RAW_FLAG_TLS_CLIENT_HELLO);
	else if (htype == GNUTLS_HANDSHAKE_ENCRYPTED_EXTENSIONS)
		gnutls_ext_raw_parse(hs, session_ext_record_limit, msg, 0);
	return 0;
}

int tlshd_session_start(struct tlshd_handshake *hs, unsigned int flags,
			gnutls_priority_t prio)
{
	unsigned int htype = (flags & GNUTLS_SERVER) ? GNUTLS_HANDSHAKE_CLIENT_HELLO :
						       GNUTLS_HANDSHAKE_ENCRYPTED_EXTENSIONS;
	gnutls_session_t s;

	if (session_init(&s, hs->req->sockfd, flags) < 0)
		return tlshd_tls_fail(hs, -ENOMEM, "out of memory");
	gnutls_session_set_ptr(s, hs);
	if (tlshd_test_hook("pause-after-sign", NULL))
		htype = GNUTLS_HANDSHAKE_ANY;
	gnutls_handshake_set_hook_function(s, htype, GNUTLS_HOOK_POST, session_hook);
	if (gnutls_priority_set(s, prio) < 0) {
		gnutls_deinit(s);
		return tlshd_tls_fail(hs, -ENOMEM, "cannot set the TLS priority");
	}
	hs->sess->gs = s;
	return 0;
}

int tlshd_session_check_socket(struct tlshd_handshake *hs)
{
	int fd = hs->req->sockfd, domain = -1, proto = -1;
	socklen_t len = sizeof(int);

	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0 ||
	    getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &len) < 0)
		return tlshd_tls_fail(hs, -EBADF, "the kernel's socket cannot be examined: %s",
				      strerror(errno));
	if ((domain == AF_INET || domain == AF_INET6) && proto == IPPROTO_TCP)
		return 0;
	return tlshd_tls_fail(hs, -EOPNOTSUPP, "the socket is not TCP (family %d, protocol %d): "
			      "tlshd serves TLS over TCP only", domain, proto);
}

/* Answer the ClientHello, not the connection: wait (briefly) until it is
 * there and consume it, so that the client is reading when the alert
 * arrives and closing the socket does not reset it. A ClientHello fits
 * in a few records; a peer that sends more is not waited for. */
#define TLSHD_REJECT_WAIT_MS	2000
#define TLSHD_REJECT_READ_MAX	(64 * 1024)

static void session_consume_hello(struct tlshd_handshake *hs)
{
	int fd = hs->req->sockfd, ms = session_ms_left(hs);
	struct pollfd p = { .fd = fd, .events = POLLIN };
	unsigned char hello[4096];
	size_t total = 0;
	ssize_t n;

	if (poll(&p, 1, ms < TLSHD_REJECT_WAIT_MS ? ms : TLSHD_REJECT_WAIT_MS) != 1)
		return;
	while (total < TLSHD_REJECT_READ_MAX &&
	       (n = recv(fd, hello, sizeof(hello), MSG_DONTWAIT)) > 0)
		total += n;
}

void tlshd_session_reject_early(struct tlshd_handshake *hs)
{
	gnutls_alert_description_t alert = hs->err == -ENOMEM ?
		GNUTLS_A_INTERNAL_ERROR : GNUTLS_A_HANDSHAKE_FAILURE;
	gnutls_session_t s;

	session_consume_hello(hs);
	if (session_init(&s, hs->req->sockfd, GNUTLS_SERVER) < 0)
		return;
	/* GnuTLS needs a priority to frame even a plaintext alert. */
	if (gnutls_set_default_priority(s) == 0)
		gnutls_alert_send(s, GNUTLS_AL_FATAL, alert);
	gnutls_deinit(s);
}

/* The handshake's small flights must not wait for delayed ACKs. */
static int session_nodelay(int fd, int on)
{
	int old = 0;
	socklen_t len = sizeof(old);

	if (getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &old, &len) < 0)
		return -1;
	if (old != on)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	return old;
}

static int session_wait(struct tlshd_handshake *hs)
{
	struct pollfd p = {
		.fd = hs->req->sockfd,
		.events = gnutls_record_get_direction(hs->sess->gs) ? POLLOUT : POLLIN,
	};
	int ms = session_ms_left(hs), r;

	if (!ms)
		return -ETIMEDOUT;
	r = poll(&p, 1, ms);
	if (r < 0)
		return errno == EINTR ? 0 : -errno;
	return r == 0 ? -ETIMEDOUT : 0;
}

/* Returns 0 or a fatal GnuTLS error (GNUTLS_E_TIMEDOUT at the deadline,
 * also for a peer that keeps sending without finishing the handshake). */
static int session_handshake_loop(struct tlshd_handshake *hs)
{
	gnutls_session_t s = hs->sess->gs;

	for (;;) {
		int r;

		if (!session_ms_left(hs))
			return GNUTLS_E_TIMEDOUT;
		r = gnutls_handshake(s);

		if (r == GNUTLS_E_SUCCESS)
			return 0;
		if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED) {
			r = session_wait(hs);
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

/* Whether the peer has closed its side (what is left to read ends). */
static bool session_peer_closed(const struct tlshd_handshake *hs)
{
	char c;

	return recv(hs->req->sockfd, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

static int session_alert_received(struct tlshd_handshake *hs)
{
	gnutls_alert_description_t alert = gnutls_alert_get(hs->sess->gs);
	bool psk_mismatch = hs->req->auth == TLSHD_AUTH_PSK &&
		(alert == GNUTLS_A_ILLEGAL_PARAMETER || alert == GNUTLS_A_DECRYPT_ERROR);

	return tlshd_tls_fail(hs, alert == GNUTLS_A_UNKNOWN_PSK_IDENTITY ? -EKEYREJECTED : -EACCES,
			      "peer sent alert '%s'%s", gnutls_alert_get_name(alert),
			      psk_mismatch ? ": the server's key for this PSK identity differs "
			      "from ours" : "");
}

/*
 * Maps a fatal GnuTLS error to the errno the consumer gets, and sends
 * the peer the alert that goes with it. A refusal a callback recorded
 * wins; received alerts and a vanished peer get no alert back.
 */
static int session_fail_gnutls(struct tlshd_handshake *hs, int err)
{
	gnutls_session_t s = hs->sess->gs;

	if (hs->pending) {
		gnutls_alert_send(s, GNUTLS_AL_FATAL, hs->pending_alert);
		return hs->err;
	}
	switch (err) {
	case GNUTLS_E_FATAL_ALERT_RECEIVED:
		return session_alert_received(hs);
	case GNUTLS_E_PREMATURE_TERMINATION:
	case GNUTLS_E_PULL_ERROR:
	case GNUTLS_E_PUSH_ERROR:
		/* The consumer may retry on ETIMEDOUT (NFS does), which is
		 * the right reaction to a peer that went away. */
		return tlshd_tls_fail(hs, -ETIMEDOUT, "peer closed the connection");
	case GNUTLS_E_TIMEDOUT:
		gnutls_alert_send(s, GNUTLS_AL_FATAL, GNUTLS_A_USER_CANCELED);
		return tlshd_tls_fail(hs, -ETIMEDOUT, "no answer from the peer within %u ms",
				      hs->req->timeout_ms ? hs->req->timeout_ms :
				      TLSHD_DEFAULT_TIMEOUT_MS);
	case GNUTLS_E_MEMORY_ERROR:
		gnutls_alert_send(s, GNUTLS_AL_FATAL, GNUTLS_A_INTERNAL_ERROR);
		return tlshd_tls_fail(hs, -ENOMEM, "out of memory");
	case GNUTLS_E_CERTIFICATE_ERROR:
	case GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR:
		gnutls_alert_send(s, GNUTLS_AL_FATAL, GNUTLS_A_BAD_CERTIFICATE);
		return tlshd_tls_fail(hs, -EACCES, "%s", gnutls_strerror(err));
	case GNUTLS_E_PK_SIGN_FAILED:
		/* Ours, not the peer's: the key holder refused or is gone
		 * (logged above). */
		gnutls_alert_send(s, GNUTLS_AL_FATAL, GNUTLS_A_INTERNAL_ERROR);
		return tlshd_tls_fail(hs, -ENOKEY, "our private key made no signature: %s",
				      gnutls_strerror(err));
	case GNUTLS_E_UNEXPECTED_PACKET_LENGTH:
		/* Also what a record cut short by the peer's close reads as. */
		if (session_peer_closed(hs))
			return tlshd_tls_fail(hs, -ETIMEDOUT, "peer closed the connection in the "
					      "middle of a record");
		/* fall through */
	case GNUTLS_E_UNSUPPORTED_VERSION_PACKET:
	case GNUTLS_E_UNEXPECTED_PACKET:
	case GNUTLS_E_RECORD_OVERFLOW:
	case GNUTLS_E_UNEXPECTED_HANDSHAKE_PACKET:
		gnutls_alert_send_appropriate(s, err);
		return tlshd_tls_fail(hs, -EPROTO, "peer does not speak TLS: %s",
				      gnutls_strerror(err));
	}
	gnutls_alert_send_appropriate(s, err);
	if (hs->psk_len && hs->req->role == TLSHD_ROLE_SERVER &&
	    (err == GNUTLS_E_RECEIVED_ILLEGAL_PARAMETER || err == GNUTLS_E_DECRYPTION_FAILED))
		return tlshd_tls_fail(hs, -EACCES, "the client's key for this PSK identity "
				      "differs from ours (binder check failed)");
	return tlshd_tls_fail(hs, -EACCES, "%s", gnutls_strerror(err));
}

int tlshd_session_drive(struct tlshd_handshake *hs)
{
	gnutls_session_t s = hs->sess->gs;
	int fd = hs->req->sockfd, nodelay, r;
	const char *suite;

	nodelay = session_nodelay(fd, 1);
	r = session_handshake_loop(hs);
	if (nodelay >= 0)
		session_nodelay(fd, nodelay);
	if (r < 0)
		return session_fail_gnutls(hs, r);
	suite = gnutls_ciphersuite_get(s);
	snprintf(hs->out->cipher, sizeof(hs->out->cipher), "%s", suite ? suite : "?");
	if (gnutls_protocol_get_version(s) != GNUTLS_TLS1_3) {
		gnutls_alert_send(s, GNUTLS_AL_FATAL, GNUTLS_A_PROTOCOL_VERSION);
		return tlshd_tls_fail(hs, -EPROTO, "peer negotiated a version other than TLS 1.3");
	}
	return 0;
}

#ifndef TLS_TX_MAX_PAYLOAD_LEN
#define TLS_TX_MAX_PAYLOAD_LEN	5	/* linux/tls.h of Linux 6.19 and later */
#endif
#define TLSHD_MAX_PAYLOAD	16384	/* what TLS allows and kTLS writes */

/*
 * The peer limited the records it takes (RFC 8449): kTLS must write no
 * larger ones. In TLS 1.3 the limit counts the content type byte. A
 * kernel without TLS_TX_MAX_PAYLOAD_LEN (before 6.19) writes 16 KiB
 * records: the handshake stands, and the log says what may go wrong.
 */
static void session_limit_records(struct tlshd_handshake *hs)
{
	unsigned int payload = hs->peer_record_limit - 1;
	uint16_t v;

	if (!hs->peer_record_limit || payload >= TLSHD_MAX_PAYLOAD)
		return;
	hs->out->tx_max_payload = payload;
	if (hs->flags & TLSHD_TLS_NO_KTLS)
		return;
	v = payload;
	if (setsockopt(hs->req->sockfd, SOL_TLS, TLS_TX_MAX_PAYLOAD_LEN, &v, sizeof(v)) == 0) {
		tlshd_debug("records limited to %u bytes of plaintext, as the peer asked", payload);
		return;
	}
	tlshd_warn("the peer takes records of at most %u bytes, and this kernel cannot limit "
		   "kTLS to that (TLS_TX_MAX_PAYLOAD_LEN: %s): larger writes will fail", payload,
		   strerror(errno));
}

int tlshd_session_install_ktls(struct tlshd_handshake *hs)
{
	struct tlshd_tls_outcome *out = hs->out;
	gnutls_session_t s = hs->sess->gs;
	const char *step;
	int r;

	r = tlshd_ktls_from_session(s, false, &out->tx);
	if (!r)
		r = tlshd_ktls_from_session(s, true, &out->rx);
	if (r < 0) {
		tlshd_ktls_wipe(&out->tx);
		gnutls_alert_send(s, GNUTLS_AL_FATAL, GNUTLS_A_INTERNAL_ERROR);
		return tlshd_tls_fail(hs, -EIO, "negotiated %s, which kTLS cannot take over",
				      out->cipher);
	}
	if (hs->flags & TLSHD_TLS_NO_KTLS) {
		session_limit_records(hs);
		return 0;
	}
	r = tlshd_ktls_install(hs->req->sockfd, &out->tx, &out->rx, &step);
	tlshd_ktls_wipe(&out->tx);
	tlshd_ktls_wipe(&out->rx);
	if (r == 0) {
		session_limit_records(hs);
		return 0;
	}
	/* Until the ULP is attached the record layer is still ours, so
	 * the peer can be told; after that, the kernel owns the socket. */
	if (!strcmp(step, "TCP_ULP"))
		gnutls_alert_send(s, GNUTLS_AL_FATAL, GNUTLS_A_INTERNAL_ERROR);
	if (r == -ENOENT && !strcmp(step, "TCP_ULP"))
		return tlshd_tls_fail(hs, -EIO,
				      "kTLS unavailable: the kernel has no 'tls' ULP (CONFIG_TLS)");
	return tlshd_tls_fail(hs, -EIO, "kTLS setsockopt %s failed for %s: %s",
			      step, out->cipher, strerror(-r));
}
