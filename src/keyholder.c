// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The key holder process (see keyholder.h) and the parent's side of it.
 */
#include "build-config.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gnutls/crypto.h>

#include "config.h"
#include "keyholder.h"
#include "log.h"
#include "privs.h"
#include "report.h"
#include "seccomp.h"
#include "util.h"

/* One worker's connection. */
struct kh_conn {
	int fd;
	pid_t pid;
	unsigned int signatures;
};

struct kh_state {
	gnutls_privkey_t key[TLSHD_SIGNER_ROLES];
	/* Each key's algorithm and size, from its certificate (a PKCS#11
	 * key may not know them). */
	gnutls_pk_algorithm_t pk[TLSHD_SIGNER_ROLES];
	unsigned int bits[TLSHD_SIGNER_ROLES];
	int ctl_fd;			/* -1 once the parent let go */
	struct kh_conn *conns;
	size_t n_conns;
};

static const char *const kh_role_names[TLSHD_SIGNER_ROLES] = {
	[TLSHD_SIGNER_CLIENT] = "client",
	[TLSHD_SIGNER_SERVER] = "server",
};

bool tlshd_keyholder_needed(const struct tlshd_config *cfg)
{
	return (cfg->client.private_key && cfg->client.certificate) ||
	       (cfg->server.private_key && cfg->server.certificate);
}

/* ---- the holder ---- */

/* Loads every role's key; the hello says which, by public key id. */
static int kh_load(struct kh_state *st, const struct tlshd_config *cfg,
		   struct tlshd_keyholder_hello *hello, bool *url)
{
	int r = 0;

	*url = false;
	for (unsigned int i = 0; i < TLSHD_SIGNER_ROLES; i++) {
		int e = tlshd_creds_load_key(cfg, i, &st->key[i]);

		if (!e && st->key[i]) {
			e = tlshd_creds_key_check(cfg, i, st->key[i], hello->role[i].id,
						  &st->pk[i], &st->bits[i]);
			if (e == -EKEYREJECTED)
				tlshd_err("%s: [authenticate.%s] x509.private_key does not belong to "
					  "the certificate in %s", cfg->path ? cfg->path : "(defaults)",
					  kh_role_names[i], i == TLSHD_SIGNER_SERVER ?
					  cfg->server.certificate : cfg->client.certificate);
			if (e == -EINVAL) {
				/* No certificate to check it by: the daemon says
				 * what is wrong with it; this key is not held. */
				gnutls_privkey_deinit(st->key[i]);
				st->key[i] = NULL;
				e = 0;
			}
			hello->role[i].present = !e && st->key[i];
			*url |= tlshd_creds_key_is_url(cfg, i);
		}
		tlshd_util_keep_first(&r, e);
	}
	return r;
}

/* Drops what signing does not need: every capability, root (unless a key
 * lives behind a URL, whose module may need root's files), every system
 * call but messages, memory, time and randomness (the same exception). */
static int kh_confine(const struct tlshd_privs_ids *ids, bool url)
{
	int r;

	r = tlshd_privs_drop_all(url ? NULL : ids);
	if (r < 0)
		return tlshd_log_errno(LOG_ERR, r, "cannot drop privileges");
	if (url) {
		tlshd_notice("a private key is a key URL: the key holder keeps uid %u and the "
			     "unit's system call filter, not its own", (unsigned int)getuid());
		return 0;
	}
	r = tlshd_seccomp_install(TLSHD_SECCOMP_KEYHOLDER);
	if (r < 0)
		return tlshd_log_errno(LOG_ERR, r, "cannot install the system call filter");
	return 0;
}

static void kh_close_conn(struct kh_state *st, size_t i)
{
	close(st->conns[i].fd);
	st->conns[i] = st->conns[--st->n_conns];
}

/* A worker broke the rules: the parent kills it. */
static void kh_complain(struct kh_state *st, const struct kh_conn *c, const char *why)
{
	struct tlshd_keyholder_worker w = { .pid = c->pid };

	tlshd_err("worker %d %s: refused, and the daemon kills it", (int)c->pid, why);
	if (st->ctl_fd >= 0)
		(void)!send(st->ctl_fd, &w, sizeof(w), MSG_NOSIGNAL | MSG_DONTWAIT);
}

/* The TLS 1.3 CertificateVerify content (RFC 8446 4.4.3) for @role:
 * 64 spaces, the context string, a zero, a transcript hash. */
static bool kh_is_certificate_verify(const struct tlshd_signer_request *rq)
{
	static const char *const ctx[TLSHD_SIGNER_ROLES] = {
		[TLSHD_SIGNER_CLIENT] = "TLS 1.3, client CertificateVerify",
		[TLSHD_SIGNER_SERVER] = "TLS 1.3, server CertificateVerify",
	};
	size_t head = 64 + strlen(ctx[rq->role]) + 1, hash = rq->len - head;

	if (rq->len <= head || (hash != 32 && hash != 48 && hash != 64))
		return false;
	for (size_t i = 0; i < 64; i++)
		if (rq->data[i] != 0x20)
			return false;
	return !memcmp(rq->data + 64, ctx[rq->role], head - 64);
}

/* Checks @rq against the rules; 0 or the refusal (logged). */
static int kh_check(const struct kh_state *st, const struct kh_conn *c,
		    const struct tlshd_signer_request *rq)
{
	gnutls_sign_algorithm_t algo = rq->algo;
	const char *name = gnutls_sign_get_name(algo);
	gnutls_pk_algorithm_t pk;

	if (rq->role >= TLSHD_SIGNER_ROLES || !st->key[rq->role]) {
		tlshd_err("worker %d asked for a signature by a key it has none of (role %u)",
			  (int)c->pid, rq->role);
		return -ENOKEY;
	}
	pk = st->pk[rq->role];
	if (!tlshd_signer_scheme_ok(algo, pk, st->bits[rq->role])) {
		tlshd_err("worker %d asked the %s key for %s, which it does not make in TLS 1.3",
			  (int)c->pid, kh_role_names[rq->role], name ? name : "an unknown scheme");
		return -EINVAL;
	}
	if (rq->len > sizeof(rq->data)) {
		tlshd_err("worker %d asked the %s key to sign %u bytes, more than any "
			  "CertificateVerify", (int)c->pid, kh_role_names[rq->role], rq->len);
		return -EINVAL;
	}
	if (pk == GNUTLS_PK_EDDSA_ED25519 || pk == GNUTLS_PK_EDDSA_ED448) {
		if (!rq->hashed && kh_is_certificate_verify(rq))
			return 0;
		tlshd_err("worker %d asked the %s key to sign something other than a TLS 1.3 %s "
			  "CertificateVerify", (int)c->pid, kh_role_names[rq->role],
			  kh_role_names[rq->role]);
		return -EINVAL;
	}
	if (rq->hashed && rq->len == gnutls_hash_get_len(gnutls_sign_get_hash_algorithm(algo)))
		return 0;
	tlshd_err("worker %d asked the %s key to sign %u bytes that are not a %s hash",
		  (int)c->pid, kh_role_names[rq->role], rq->len, name);
	return -EINVAL;
}

static int kh_sign(const struct kh_state *st, const struct kh_conn *c,
		   const struct tlshd_signer_request *rq, struct tlshd_signer_reply *rp)
{
	gnutls_datum_t data = { (unsigned char *)rq->data, rq->len }, sig = { 0 };
	gnutls_privkey_t key;
	int r;

	r = kh_check(st, c, rq);
	if (r < 0)
		return r;
	key = st->key[rq->role];
	if (rq->hashed)
		r = gnutls_privkey_sign_hash2(key, rq->algo, 0, &data, &sig);
	else
		r = gnutls_privkey_sign_data2(key, rq->algo, 0, &data, &sig);
	if (r < 0) {
		tlshd_err("the %s key cannot sign for worker %d: %s", kh_role_names[rq->role],
			  (int)c->pid, gnutls_strerror(r));
		return -EIO;
	}
	if (sig.size > sizeof(rp->sig)) {
		gnutls_free(sig.data);
		return -EMSGSIZE;
	}
	memcpy(rp->sig, sig.data, sig.size);
	rp->len = sig.size;
	gnutls_free(sig.data);
	return 0;
}

/* One message from worker @i; false when its connection is done. */
static bool kh_serve(struct kh_state *st, size_t i)
{
	struct kh_conn *c = &st->conns[i];
	unsigned char buf[sizeof(struct tlshd_signer_request) + 1];
	struct tlshd_signer_reply rp = { 0 };
	struct tlshd_signer_request rq;
	ssize_t n;

	n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return true;
	if (n <= 0)
		return false;		/* the worker ended */
	if ((size_t)n != sizeof(rq)) {
		kh_complain(st, c, "sent a malformed request");
		return false;
	}
	if (c->signatures++) {
		kh_complain(st, c, "asked for a second signature");
		return false;
	}
	memcpy(&rq, buf, sizeof(rq));
	rp.err = kh_sign(st, c, &rq, &rp);
	if (send(c->fd, &rp, sizeof(rp), MSG_NOSIGNAL | MSG_DONTWAIT) != sizeof(rp))
		return false;
	return true;
}

/* The parent's hand-over of a worker's connection: its pid, and the
 * connection as one SCM_RIGHTS descriptor. */
struct kh_handover {
	struct tlshd_keyholder_worker w;
	struct iovec iov;
	_Alignas(struct cmsghdr) char cmsg[CMSG_SPACE(sizeof(int))];
	struct msghdr msg;
};

static void kh_handover_init(struct kh_handover *h, pid_t pid)
{
	memset(h, 0, sizeof(*h));
	h->w.pid = pid;
	h->iov = (struct iovec){ &h->w, sizeof(h->w) };
	h->msg = (struct msghdr){
		.msg_iov = &h->iov, .msg_iovlen = 1,
		.msg_control = h->cmsg, .msg_controllen = sizeof(h->cmsg),
	};
}

/* A worker's connection from the parent. */
static void kh_attach(struct kh_state *st)
{
	struct kh_handover h;
	struct cmsghdr *cm;
	ssize_t n;
	int fd = -1;

	kh_handover_init(&h, 0);
	n = recvmsg(st->ctl_fd, &h.msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n < 0 && (errno == ENOMEM || errno == ENOBUFS)) {
		tlshd_log_errno(LOG_ERR, -errno, "cannot receive a worker's connection");
		return;
	}
	if (n <= 0) {
		/* The parent let go: serve who is left, then exit. */
		close(st->ctl_fd);
		st->ctl_fd = -1;
		return;
	}
	cm = CMSG_FIRSTHDR(&h.msg);
	if (cm && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS &&
	    cm->cmsg_len == CMSG_LEN(sizeof(int)))
		memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	if (fd < 0 || (size_t)n != sizeof(h.w) || st->n_conns == TLSHD_KEYHOLDER_MAX_CONNS) {
		tlshd_err("unusable connection for worker %d from the daemon", (int)h.w.pid);
		if (fd >= 0)
			close(fd);
		return;
	}
	st->conns[st->n_conns++] = (struct kh_conn){ .fd = fd, .pid = h.w.pid };
}

static int kh_loop(struct kh_state *st)
{
	struct pollfd *p = calloc(TLSHD_KEYHOLDER_MAX_CONNS + 1, sizeof(*p));

	if (!p)
		return -ENOMEM;
	while (st->ctl_fd >= 0 || st->n_conns) {
		size_t n = st->n_conns;

		p[0] = (struct pollfd){ .fd = st->ctl_fd, .events = POLLIN };
		for (size_t i = 0; i < n; i++)
			p[i + 1] = (struct pollfd){ .fd = st->conns[i].fd, .events = POLLIN };
		if (poll(p, n + 1, -1) < 0 && errno != EINTR) {
			free(p);
			return -errno;
		}
		/* Last first: closing one moves the last into its place. */
		for (size_t i = n; i-- > 0;)
			if (p[i + 1].revents && !kh_serve(st, i))
				kh_close_conn(st, i);
		if (p[0].revents)
			kh_attach(st);
	}
	free(p);
	return 0;
}

int tlshd_keyholder_run(const struct tlshd_config *cfg, const struct tlshd_privs_ids *ids,
			const struct tlshd_report *report, int ctl_fd)
{
	struct tlshd_keyholder_hello hello = { 0 };
	struct kh_state st = { .ctl_fd = ctl_fd };
	bool url = false;
	int r;

	prctl(PR_SET_NAME, "tlshd-keys");
	if (report && report->journal)
		tlshd_log_set_forward(tlshd_report_line, (void *)report);
	tlshd_log_set_prefix("key holder: ");
	st.conns = calloc(TLSHD_KEYHOLDER_MAX_CONNS, sizeof(*st.conns));
	r = st.conns ? kh_load(&st, cfg, &hello, &url) : -ENOMEM;
	if (!r)
		r = kh_confine(ids, url);
	hello.err = r;
	if (send(ctl_fd, &hello, sizeof(hello), MSG_NOSIGNAL) != sizeof(hello) && !r)
		r = -EPIPE;
	if (!r)
		r = kh_loop(&st);
	for (unsigned int i = 0; i < TLSHD_SIGNER_ROLES; i++)
		if (st.key[i])
			gnutls_privkey_deinit(st.key[i]);
	free(st.conns);
	return r < 0 ? 1 : 0;
}

/* ---- the parent's side ---- */

/* Waits for the hello of the holder @pid on @ctl_fd; fills @kh and
 * @keys. On failure @ctl_fd is closed. */
static int kh_wait(struct tlshd_keyholder *kh, pid_t pid, int ctl_fd,
		   struct tlshd_creds_remote *keys)
{
	struct pollfd p = { .fd = ctl_fd, .events = POLLIN };
	struct tlshd_keyholder_hello hello;
	long long until = tlshd_util_now_ms() + TLSHD_KEYHOLDER_START_TIMEOUT_MS;
	ssize_t n = -1;
	int r;

	for (;;) {
		long long left = until - tlshd_util_now_ms();

		r = poll(&p, 1, left > 0 ? (int)left : 0);
		if (r > 0 || (r < 0 && errno != EINTR) || left <= 0)
			break;
	}
	if (r > 0)
		n = recv(ctl_fd, &hello, sizeof(hello), MSG_DONTWAIT);
	if (n != sizeof(hello) || hello.err) {
		if (r == 0)
			tlshd_err("the key holder (pid %d) did not load its keys within %d s",
				  (int)pid, TLSHD_KEYHOLDER_START_TIMEOUT_MS / 1000);
		else if (n != sizeof(hello))
			tlshd_err("the key holder (pid %d) exited before it loaded its keys",
				  (int)pid);
		close(ctl_fd);
		return n == sizeof(hello) && hello.err < 0 ? hello.err : -EIO;
	}
	for (unsigned int i = 0; i < TLSHD_SIGNER_ROLES; i++) {
		keys->role[i].present = hello.role[i].present;
		memcpy(keys->role[i].id, hello.role[i].id, sizeof(keys->role[i].id));
	}
	/* A worker's connection waits this long for room on the way to a
	 * busy holder, rather than being dropped at once. */
	setsockopt(ctl_fd, SOL_SOCKET, SO_SNDTIMEO, &(struct timeval){ 0, 200000 },
		   sizeof(struct timeval));
	kh->pid = pid;
	kh->ctl_fd = ctl_fd;
	return 0;
}

int tlshd_keyholder_spawn(const struct tlshd_config *cfg, const struct tlshd_privs_ids *ids,
			  const struct tlshd_report *report, void (*child_init)(void *),
			  void *arg, struct tlshd_keyholder *kh, struct tlshd_creds_remote *keys)
{
	int sp[2], r;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
		return tlshd_log_errno(LOG_ERR, -errno, "cannot start the key holder");
	pid = fork();
	if (pid < 0) {
		r = -errno;
		close(sp[0]);
		close(sp[1]);
		return tlshd_log_errno(LOG_ERR, r, "cannot start the key holder");
	}
	if (pid == 0) {
		close(sp[0]);
		if (child_init)
			child_init(arg);
		_exit(tlshd_keyholder_run(cfg, ids, report, sp[1]));
	}
	close(sp[1]);
	r = kh_wait(kh, pid, sp[0], keys);
	if (r < 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	return r;
}

int tlshd_keyholder_connect(const struct tlshd_keyholder *kh, pid_t pid, int *ret_fd)
{
	int kp[2], r;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, kp) < 0)
		return -errno;
	r = tlshd_keyholder_attach(kh, pid, kp[0]);
	close(kp[0]);
	if (r < 0) {
		close(kp[1]);
		return r;
	}
	*ret_fd = kp[1];
	return 0;
}

int tlshd_keyholder_attach(const struct tlshd_keyholder *kh, pid_t pid, int fd)
{
	struct kh_handover h;
	struct cmsghdr *cm;
	ssize_t n;

	if (kh->ctl_fd < 0)
		return -ENOTCONN;
	kh_handover_init(&h, pid);
	cm = CMSG_FIRSTHDR(&h.msg);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	n = sendmsg(kh->ctl_fd, &h.msg, MSG_NOSIGNAL);
	if (n < 0)
		return -errno;
	return n == sizeof(h.w) ? 0 : -EIO;
}

int tlshd_keyholder_read(const struct tlshd_keyholder *kh, pid_t *pid)
{
	struct tlshd_keyholder_worker w;
	ssize_t n;

	n = recv(kh->ctl_fd, &w, sizeof(w), MSG_DONTWAIT);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? -EAGAIN : -ECONNRESET;
	if (n != sizeof(w))
		return n == 0 ? -ECONNRESET : -EAGAIN;
	*pid = w.pid;
	return 0;
}

void tlshd_keyholder_release(struct tlshd_keyholder *kh)
{
	if (kh->ctl_fd >= 0)
		close(kh->ctl_fd);
	kh->ctl_fd = -1;
	kh->pid = 0;
}
