/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The configuration file (/etc/tlshd.conf or ktls-utils' /etc/tlshd/config,
 * GKeyFile syntax) parsed once
 * into typed fields. Section and key names are those of ktls-utils'
 * tlshd, so an existing file works unchanged. Workers only read the
 * parsed struct; nothing calls g_key_file_* after tlshd_config_parse().
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* SYSCONFDIR comes from configure (build-config.h). Without -c, the first
 * of these that exists is read: ours, then ktls-utils' (1.3 and later). */
#define TLSHD_DEFAULT_CONFIG	SYSCONFDIR "/tlshd.conf"
#define TLSHD_COMPAT_CONFIG	SYSCONFDIR "/tlshd/config"

/* GnuTLS logs the traffic keys and IVs from level 9 on: [debug] tls is
 * capped below that, so that no secret reaches the journal. */
#define TLSHD_CONFIG_TLS_DEBUG_MAX	8

/* [authenticate.client] and [authenticate.server] */
struct tlshd_config_x509 {
	char *truststore;	/* x509.truststore: PEM CA bundle */
	char *crl;		/* x509.crl: PEM CRL file */
	char *certificate;	/* x509.certificate: PEM chain, leaf first */
	char *private_key;	/* x509.private_key: PEM file or GnuTLS key URL */
	char *pq_certificate;	/* x509.pq.*: ktls-utils' ML-DSA dual certificate, */
	char *pq_private_key;	/* used only by a GnuTLS with ML-DSA (see creds.c) */
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

/* The first of the NULL-terminated @paths that exists, or NULL. */
const char *tlshd_config_first_existing(const char *const *paths);

/* TLSHD_DEFAULT_CONFIG if it exists, else TLSHD_COMPAT_CONFIG if it
 * exists, else NULL. */
const char *tlshd_config_default_path(void);

/*
 * Read and parse @path, logging which file it is; @path NULL yields the
 * built-in defaults, with a warning that names the files looked for.
 * Returns -ENOENT/-EACCES/... when the file cannot be read, -EINVAL when
 * it is malformed; both are logged.
 */
int tlshd_config_load(const char *path, struct tlshd_config **ret);

struct tlshd_config *tlshd_config_new_default(void);
struct tlshd_config *tlshd_config_free(struct tlshd_config *cfg);
