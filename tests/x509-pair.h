/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What tests/test-keyholder and bench/tlshd-keybench both need of X.509:
 * a fresh private key and a self-signed certificate for it, made at test
 * time (never stored in the tree), a TLS 1.3 client for the engine's
 * server handshakes over TCP loopback, and a key holder forked for a
 * configuration as the daemon forks it.
 */
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/x509.h>

#include "config.h"
#include "creds.h"
#include "keyholder.h"
#include "privs.h"

static inline int x509_pair_write(const char *path, const gnutls_datum_t *d, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, d->data, d->size);
	close(fd);
	return n == (ssize_t)d->size ? 0 : -1;
}

/*
 * A key of @pk with @bits (PKCS#8 PEM, mode 0600) at @key_path, and at
 * @cert_path a certificate for it: subject CN=@cn, self-signed, for TLS
 * servers, valid for a year from a minute ago. Returns 0 or -1.
 */
static inline int x509_pair_make(const char *key_path, const char *cert_path, const char *cn,
				 gnutls_pk_algorithm_t pk, unsigned int bits)
{
	unsigned char serial[1] = { 1 };
	time_t now = time(NULL);
	gnutls_x509_privkey_t k;
	gnutls_x509_crt_t c;
	gnutls_datum_t out;
	int r = -1;

	gnutls_x509_privkey_init(&k);
	gnutls_x509_crt_init(&c);
	if (gnutls_x509_privkey_generate(k, pk, bits, 0) < 0 ||
	    gnutls_x509_privkey_export2_pkcs8(k, GNUTLS_X509_FMT_PEM, NULL, GNUTLS_PKCS_PLAIN,
					      &out) < 0)
		goto out;
	r = x509_pair_write(key_path, &out, 0600);
	gnutls_free(out.data);
	if (r < 0)
		goto out;
	r = -1;
	gnutls_x509_crt_set_version(c, 3);
	gnutls_x509_crt_set_serial(c, serial, sizeof(serial));
	gnutls_x509_crt_set_activation_time(c, now - 60);
	gnutls_x509_crt_set_expiration_time(c, now + 86400 * 365);
	gnutls_x509_crt_set_dn_by_oid(c, GNUTLS_OID_X520_COMMON_NAME, 0, cn, strlen(cn));
	gnutls_x509_crt_set_key_purpose_oid(c, GNUTLS_KP_TLS_WWW_SERVER, 0);
	/* (Ed25519 signs with its own hash; GnuTLS wants SHA-512 named.) */
	if (gnutls_x509_crt_set_key(c, k) < 0 ||
	    gnutls_x509_crt_sign2(c, c, k, pk == GNUTLS_PK_EDDSA_ED25519 ? GNUTLS_DIG_SHA512 :
				  GNUTLS_DIG_SHA256, 0) < 0 ||
	    gnutls_x509_crt_export2(c, GNUTLS_X509_FMT_PEM, &out) < 0)
		goto out;
	r = x509_pair_write(cert_path, &out, 0644);
	gnutls_free(out.data);
out:
	gnutls_x509_crt_deinit(c);
	gnutls_x509_privkey_deinit(k);
	return r;
}

/* A connected TCP loopback pair (the engine serves TCP only); -1s on
 * failure. */
static inline void x509_pair_tcp(int sv[2])
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sin);
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	sv[0] = sv[1] = -1;
	if (l < 0 || bind(l, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(l, 1) < 0 ||
	    getsockname(l, (struct sockaddr *)&sin, &len) < 0)
		goto out;
	sv[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (sv[0] >= 0 && connect(sv[0], (struct sockaddr *)&sin, sizeof(sin)) == 0)
		sv[1] = accept4(l, NULL, NULL, SOCK_CLOEXEC);
out:
	if (l >= 0)
		close(l);
}

/* A bare GnuTLS TLS 1.3 client handshake on @fd, which it closes; it
 * verifies nothing. Returns the GnuTLS result. */
static inline int x509_pair_client(int fd)
{
	gnutls_certificate_credentials_t cred;
	gnutls_session_t s;
	int r;

	gnutls_certificate_allocate_credentials(&cred);
	gnutls_init(&s, GNUTLS_CLIENT);
	gnutls_priority_set_direct(s, "NORMAL:-VERS-ALL:+VERS-TLS1.3", NULL);
	gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, cred);
	gnutls_transport_set_int(s, fd);
	do {
		r = gnutls_handshake(s);
	} while (r < 0 && !gnutls_error_is_fatal(r));
	gnutls_deinit(s);
	gnutls_certificate_free_credentials(cred);
	close(fd);
	return r;
}

/* A key holder and the one connection to it a test or the benchmark uses
 * as a worker's (keys.signer is &signer). */
struct x509_pair_holder {
	struct tlshd_keyholder kh;
	struct tlshd_creds_remote keys;
	struct tlshd_signer signer;
	pid_t pid;
};

/* Forks a holder for @cfg that drops to @ids, as the daemon does. */
static inline int x509_pair_holder_start(const struct tlshd_config *cfg,
					 const struct tlshd_privs_ids *ids,
					 struct x509_pair_holder *h)
{
	int r;

	memset(h, 0, sizeof(*h));
	h->kh.ctl_fd = -1;
	h->signer.fd = -1;
	h->keys.signer = &h->signer;
	r = tlshd_keyholder_spawn(cfg, ids, NULL, NULL, NULL, &h->kh, &h->keys);
	h->pid = h->kh.pid;
	return r;
}
