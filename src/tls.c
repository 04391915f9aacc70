// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Handshake engine, top layer: the context's lifetime (init, reload,
 * done) and running one request through the role x auth table.
 *
 * Calls only go down: this file uses the role parts (tls-internal.h),
 * which use the session layer (tls-session.h); nothing below calls up.
 * A request's GnuTLS state lives in one struct tlshd_session, created
 * and freed here; its outcome is built once, at the end of tlshd_tls_run.
 */
#include "build-config.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "config.h"
#include "keyring.h"
#include "log.h"
#include "tls-internal.h"
#include "util.h"

/* What each kind of request runs: open (credentials and session), the
 * handshake, check (optional, before kTLS), kTLS. */
struct tls_mode {
	enum tlshd_role role;
	enum tlshd_auth auth;
	int (*open)(struct tlshd_handshake *hs);
	int (*check)(struct tlshd_handshake *hs);
};

static const struct tls_mode tls_modes[] = {
	{ TLSHD_ROLE_CLIENT, TLSHD_AUTH_PSK,	tlshd_client_psk_open,	NULL },
	{ TLSHD_ROLE_CLIENT, TLSHD_AUTH_UNAUTH,	tlshd_client_x509_open,	NULL },
	{ TLSHD_ROLE_CLIENT, TLSHD_AUTH_X509,	tlshd_client_x509_open,	NULL },
	{ TLSHD_ROLE_SERVER, TLSHD_AUTH_PSK,	tlshd_server_psk_open,	tlshd_server_psk_check },
	{ TLSHD_ROLE_SERVER, TLSHD_AUTH_X509,	tlshd_server_x509_open,	NULL },
};

/* GnuTLS's debug lines, at our debug level. Its "INT:" lines dump key
 * material (traffic keys and IVs): they are dropped whatever the level,
 * in case a GnuTLS version logs them below the cap. */
static void tls_gnutls_log(int level, const char *msg)
{
	size_t len = strlen(msg);

	if (!strncmp(msg, "INT:", 4))
		return;
	while (len && msg[len - 1] == '\n')
		len--;
	tlshd_log(LOG_DEBUG, "gnutls(%d): %.*s", level, (int)len, msg);
}

void tlshd_tls_set_debug(int level)
{
	if (level > TLSHD_CONFIG_TLS_DEBUG_MAX)
		level = TLSHD_CONFIG_TLS_DEBUG_MAX;
	gnutls_global_set_log_level(level);
}

int tlshd_tls_init(struct tlshd_context *ctx, const struct tlshd_config *cfg,
		   const struct tlshd_creds_remote *keys)
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
	r = tlshd_creds_load(cfg, keys, &ctx->creds);
	if (r < 0)
		goto fail_prio;
	tlshd_x509_attach(&ctx->creds);
	return 0;

fail_prio:
	tlshd_priority_done(&ctx->prio);
fail_global:
	gnutls_global_deinit();
	return r;
}

int tlshd_tls_reload(struct tlshd_context *ctx, const struct tlshd_config *cfg,
		     const struct tlshd_creds_remote *keys)
{
	struct tlshd_creds creds;
	int r;

	r = tlshd_creds_load(cfg, keys, &creds);
	if (r < 0)
		return r;
	tlshd_x509_attach(&creds);
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

const char *const *tlshd_tls_consumer_rings(const struct tlshd_request *req)
{
	/* NFS's cert_serial=/privkey_serial= keys live in the .nfs keyring
	 * (Linux 6.17+), which the kernel does not link for us. */
	static const char *const consumer_rings[] = { ".nfs", ".nfsd", NULL };

	return req->auth == TLSHD_AUTH_X509 && req->cert && req->privkey ? consumer_rings : NULL;
}

void tlshd_tls_prepare_config(const struct tlshd_context *ctx)
{
	tlshd_keyring_possess((const char *const *)ctx->cfg->keyrings);
}

void tlshd_tls_prepare(const struct tlshd_context *ctx, const struct tlshd_request *req)
{
	tlshd_keyring_possess(tlshd_tls_consumer_rings(req));
	tlshd_tls_prepare_config(ctx);
}

static const struct tls_mode *tls_find_mode(const struct tlshd_request *req)
{
	for (size_t i = 0; i < sizeof(tls_modes) / sizeof(tls_modes[0]); i++)
		if (tls_modes[i].role == req->role && tls_modes[i].auth == req->auth)
			return &tls_modes[i];
	return NULL;
}

/* Microseconds since *t, which moves on to now. */
static unsigned int tls_lap(long long *t)
{
	long long now = tlshd_util_now_us(), d = now - *t;

	*t = now;
	return d > 0 && d < UINT32_MAX ? (unsigned int)d : 0;
}

static int tls_handshake(struct tlshd_handshake *hs)
{
	const struct tls_mode *mode = tls_find_mode(hs->req);
	long long t = tlshd_util_now_us();
	int r;

	if (!mode)
		return tlshd_tls_fail(hs, -EINVAL, "a %s handshake cannot use %s authentication",
				      tlshd_role_name(hs->req->role),
				      tlshd_auth_name(hs->req->auth));
	hs->sess = tlshd_session_new();
	if (!hs->sess)
		return tlshd_tls_fail(hs, -ENOMEM, "out of memory");
	r = mode->open(hs);
	hs->out->setup_us = tls_lap(&t);
	if (r < 0)
		return r;
	r = tlshd_session_drive(hs);
	if (r == 0 && mode->check)
		r = mode->check(hs);
	hs->out->handshake_us = tls_lap(&t);
	if (r < 0)
		return r;
	r = tlshd_session_install_ktls(hs);
	hs->out->ktls_us = tls_lap(&t);
	return r;
}

void tlshd_tls_run(const struct tlshd_context *ctx, const struct tlshd_request *req,
		   unsigned int flags, struct tlshd_tls_outcome *ret)
{
	struct tlshd_handshake hs = {
		.ctx = ctx,
		.req = req,
		.flags = flags,
		.out = ret,
	};
	int r;

	memset(ret, 0, sizeof(*ret));
	tlshd_session_set_deadline(&hs);
	/* Not a TCP socket: not a byte may be written to it. */
	if (tlshd_session_check_socket(&hs) < 0)
		goto out;
	r = tls_handshake(&hs);
	if (r < 0)
		tlshd_tls_fail(&hs, r, "%s", strerror(-r));	/* unless recorded */
	/* A server that failed before it had a session still answers. */
	if (r < 0 && req->role == TLSHD_ROLE_SERVER && (!hs.sess || !hs.sess->gs))
		tlshd_session_reject_early(&hs);
	hs.sess = tlshd_session_free(hs.sess);
out:

	ret->result.status = -hs.err;
	if (!hs.err && hs.peerid) {
		ret->result.remote_auth[0] = hs.peerid;
		ret->result.num_remote_auth = 1;
	}
}
