/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The configuration file (/etc/tlshd.conf, GKeyFile syntax) parsed once
 * into typed fields. Section and key names are those of ktls-utils'
 * tlshd, so an existing file works unchanged. Workers only read the
 * parsed struct; nothing calls g_key_file_* after tlshd_config_parse().
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* SYSCONFDIR comes from configure (build-config.h). */
#define TLSHD_DEFAULT_CONFIG	SYSCONFDIR "/tlshd.conf"

/* GnuTLS logs the traffic keys and IVs from level 9 on: [debug] tls is
 * capped below that, so that no secret reaches the journal. */
#define TLSHD_CONFIG_TLS_DEBUG_MAX	8

/* [authenticate.client] and [authenticate.server] */
struct tlshd_config_x509 {
	char *truststore;	/* x509.truststore: PEM CA bundle */
	char *crl;		/* x509.crl: PEM CRL file */
	char *certificate;	/* x509.certificate: PEM chain, leaf first */
	char *private_key;	/* x509.private_key: PEM file or GnuTLS key URL */
};

struct tlshd_config {
	char *path;			/* file read, NULL for built-in defaults */
	int loglevel;			/* [debug] loglevel: > 0 enables debug */
	int tls_debug;			/* [debug] tls: GnuTLS log level, capped */
	char **keyrings;		/* [authenticate] keyrings, NULL-terminated */
	struct tlshd_config_x509 client;
	struct tlshd_config_x509 server;
};

/*
 * Parse @len bytes of @data; @name names the source in error messages.
 * On success *ret is a new config owned by the caller (tlshd_config_free).
 * Errors are logged with the file, section and key at fault and returned
 * as -EINVAL; *ret is left untouched.
 */
int tlshd_config_parse(const char *data, size_t len, const char *name,
		       struct tlshd_config **ret);

/*
 * Read and parse @path. When @must_exist is false a missing file yields
 * the built-in defaults. Returns -ENOENT/-EACCES/... when the file cannot
 * be read, -EINVAL when it is malformed; both are logged.
 */
int tlshd_config_load(const char *path, bool must_exist, struct tlshd_config **ret);

struct tlshd_config *tlshd_config_new_default(void);
struct tlshd_config *tlshd_config_free(struct tlshd_config *cfg);
