// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Configuration file parsing.
 */
#include "build-config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <glib.h>

#include "config.h"
#include "log.h"
#include "util.h"

/* A configuration file is small; a larger one is a mistake. */
#define TLSHD_CONFIG_MAX_SIZE	(1024 * 1024)

struct config_key {
	const char *group;
	const char *key;
};

/* Every key tlshd knows; anything else draws a warning (a typo would
 * otherwise go unnoticed) but is not fatal, so that files written for
 * newer versions keep working. */
static const struct config_key config_known_keys[] = {
	{ "debug", "loglevel" },
	{ "debug", "tls" },
	{ "debug", "nl" },
	{ "authenticate", "keyrings" },
	{ "authenticate.client", "x509.truststore" },
	{ "authenticate.client", "x509.crl" },
	{ "authenticate.client", "x509.certificate" },
	{ "authenticate.client", "x509.private_key" },
	{ "authenticate.client", "x509.pq.certificate" },
	{ "authenticate.client", "x509.pq.private_key" },
	{ "authenticate.server", "x509.truststore" },
	{ "authenticate.server", "x509.crl" },
	{ "authenticate.server", "x509.certificate" },
	{ "authenticate.server", "x509.private_key" },
	{ "authenticate.server", "x509.pq.certificate" },
	{ "authenticate.server", "x509.pq.private_key" },
};

struct tlshd_config *tlshd_config_new_default(void)
{
	struct tlshd_config *cfg = calloc(1, sizeof(*cfg));

	if (!cfg)
		return NULL;
	cfg->keyrings = calloc(1, sizeof(char *));
	if (!cfg->keyrings)
		return tlshd_config_free(cfg);
	return cfg;
}

static void config_x509_done(struct tlshd_config_x509 *x)
{
	free(x->truststore);
	free(x->crl);
	free(x->certificate);
	free(x->private_key);
	free(x->pq_certificate);
	free(x->pq_private_key);
	memset(x, 0, sizeof(*x));
}

struct tlshd_config *tlshd_config_free(struct tlshd_config *cfg)
{
	if (!cfg)
		return NULL;
	free(cfg->path);
	if (cfg->keyrings)
		for (char **k = cfg->keyrings; *k; k++)
			free(*k);
	free(cfg->keyrings);
	config_x509_done(&cfg->client);
	config_x509_done(&cfg->server);
	free(cfg);
	return NULL;
}

static bool config_key_known(const char *group, const char *key)
{
	for (size_t i = 0; i < G_N_ELEMENTS(config_known_keys); i++)
		if (!strcmp(config_known_keys[i].group, group) &&
		    !strcmp(config_known_keys[i].key, key))
			return true;
	return false;
}

static void config_warn_unknown(GKeyFile *kf, const char *name)
{
	gchar **groups = g_key_file_get_groups(kf, NULL);

	for (gchar **g = groups; g && *g; g++) {
		gchar **keys = g_key_file_get_keys(kf, *g, NULL, NULL);

		for (gchar **k = keys; k && *k; k++)
			if (!config_key_known(*g, *k))
				tlshd_warn("%s: unknown key '%s' in [%s], ignoring", name, *k, *g);
		g_strfreev(keys);
	}
	g_strfreev(groups);
}

/* Reads a non-negative integer; an absent key leaves *val unchanged. */
static int config_get_uint(GKeyFile *kf, const char *name, const char *group,
			   const char *key, int *val)
{
	GError *gerr = NULL;
	int v;

	if (!g_key_file_has_key(kf, group, key, NULL))
		return 0;
	v = g_key_file_get_integer(kf, group, key, &gerr);
	if (gerr) {
		tlshd_err("%s: [%s] %s: %s", name, group, key, gerr->message);
		g_error_free(gerr);
		return -EINVAL;
	}
	if (v < 0) {
		tlshd_err("%s: [%s] %s: must not be negative (%d)", name, group, key, v);
		return -EINVAL;
	}
	*val = v;
	return 0;
}

static int config_get_path(GKeyFile *kf, const char *name, const char *group,
			   const char *key, char **val)
{
	GError *gerr = NULL;
	gchar *s;

	if (!g_key_file_has_key(kf, group, key, NULL))
		return 0;
	s = g_key_file_get_string(kf, group, key, &gerr);
	if (gerr) {
		tlshd_err("%s: [%s] %s: %s", name, group, key, gerr->message);
		g_error_free(gerr);
		g_free(s);		/* GLib may return the value with the error */
		return -EINVAL;
	}
	g_strstrip(s);
	if (!*s) {
		tlshd_err("%s: [%s] %s: empty value", name, group, key);
		g_free(s);
		return -EINVAL;
	}
	*val = strdup(s);
	g_free(s);
	return *val ? 0 : -ENOMEM;
}

static int config_get_keyrings(GKeyFile *kf, const char *name, struct tlshd_config *cfg)
{
	GError *gerr = NULL;
	gchar **list;
	size_t n = 0;

	if (!g_key_file_has_key(kf, "authenticate", "keyrings", NULL))
		return 0;
	list = g_key_file_get_string_list(kf, "authenticate", "keyrings", NULL, &gerr);
	if (gerr) {
		tlshd_err("%s: [authenticate] keyrings: %s", name, gerr->message);
		g_error_free(gerr);
		g_strfreev(list);
		return -EINVAL;
	}
	free(cfg->keyrings);
	cfg->keyrings = calloc(g_strv_length(list) + 1, sizeof(char *));
	if (!cfg->keyrings) {
		g_strfreev(list);
		return -ENOMEM;
	}
	for (gchar **k = list; *k; k++) {
		g_strstrip(*k);
		if (!**k)
			continue;
		cfg->keyrings[n] = strdup(*k);
		if (!cfg->keyrings[n++]) {
			g_strfreev(list);
			return -ENOMEM;
		}
	}
	g_strfreev(list);
	return 0;
}

static int config_get_x509(GKeyFile *kf, const char *name, const char *group,
			   struct tlshd_config_x509 *x)
{
	int r = 0;

	/* Every key is checked, so that every problem is reported. */
	tlshd_util_keep_first(&r, config_get_path(kf, name, group, "x509.truststore",
						  &x->truststore));
	tlshd_util_keep_first(&r, config_get_path(kf, name, group, "x509.crl", &x->crl));
	tlshd_util_keep_first(&r, config_get_path(kf, name, group, "x509.certificate",
						  &x->certificate));
	tlshd_util_keep_first(&r, config_get_path(kf, name, group, "x509.private_key",
						  &x->private_key));
	tlshd_util_keep_first(&r, config_get_path(kf, name, group, "x509.pq.certificate",
						  &x->pq_certificate));
	tlshd_util_keep_first(&r, config_get_path(kf, name, group, "x509.pq.private_key",
						  &x->pq_private_key));
	return r;
}

static int config_from_keyfile(GKeyFile *kf, const char *name, struct tlshd_config *cfg)
{
	int r = 0;

	config_warn_unknown(kf, name);
	tlshd_util_keep_first(&r, config_get_uint(kf, name, "debug", "loglevel", &cfg->loglevel));
	tlshd_util_keep_first(&r, config_get_uint(kf, name, "debug", "tls", &cfg->tls_debug));
	if (cfg->tls_debug > TLSHD_CONFIG_TLS_DEBUG_MAX) {
		tlshd_warn("%s: [debug] tls=%d: GnuTLS logs traffic keys from level %d on; "
			   "using %d", name, cfg->tls_debug, TLSHD_CONFIG_TLS_DEBUG_MAX + 1,
			   TLSHD_CONFIG_TLS_DEBUG_MAX);
		cfg->tls_debug = TLSHD_CONFIG_TLS_DEBUG_MAX;
	}
	tlshd_util_keep_first(&r, config_get_keyrings(kf, name, cfg));
	tlshd_util_keep_first(&r, config_get_x509(kf, name, "authenticate.client", &cfg->client));
	tlshd_util_keep_first(&r, config_get_x509(kf, name, "authenticate.server", &cfg->server));
	return r;
}

int tlshd_config_parse(const char *data, size_t len, const char *name,
		       struct tlshd_config **ret)
{
	struct tlshd_config *cfg;
	GError *gerr = NULL;
	GKeyFile *kf;
	int r;

	kf = g_key_file_new();
	if (!g_key_file_load_from_data(kf, data, len, G_KEY_FILE_NONE, &gerr)) {
		tlshd_err("%s: malformed configuration: %s", name, gerr->message);
		g_error_free(gerr);
		g_key_file_free(kf);
		return -EINVAL;
	}
	cfg = tlshd_config_new_default();
	if (!cfg) {
		g_key_file_free(kf);
		return -ENOMEM;
	}
	r = config_from_keyfile(kf, name, cfg);
	g_key_file_free(kf);
	if (r < 0) {
		tlshd_config_free(cfg);
		return r;
	}
	*ret = cfg;
	return 0;
}

const char *tlshd_config_first_existing(const char *const *paths)
{
	struct stat st;

	for (; paths && *paths; paths++)
		if (stat(*paths, &st) == 0)
			return *paths;
	return NULL;
}

const char *tlshd_config_default_path(void)
{
	static const char *const paths[] = { TLSHD_DEFAULT_CONFIG, TLSHD_COMPAT_CONFIG, NULL };

	return tlshd_config_first_existing(paths);
}

int tlshd_config_load(const char *path, struct tlshd_config **ret)
{
	struct tlshd_config *cfg;
	char *data = NULL;
	size_t len = 0;
	int r;

	if (!path) {
		tlshd_warn("neither %s nor %s exists: running on built-in defaults",
			   TLSHD_DEFAULT_CONFIG, TLSHD_COMPAT_CONFIG);
		cfg = tlshd_config_new_default();
		if (!cfg)
			return -ENOMEM;
		*ret = cfg;
		return 0;
	}
	r = tlshd_util_read_file(path, TLSHD_CONFIG_MAX_SIZE, &data, &len, NULL);
	if (r < 0)
		return tlshd_log_errno(LOG_ERR, r, "cannot read configuration file %s", path);
	tlshd_notice("configuration: %s", path);
	r = tlshd_config_parse(data, len, path, &cfg);
	free(data);
	if (r < 0)
		return r;
	cfg->path = strdup(path);
	if (!cfg->path) {
		tlshd_config_free(cfg);
		return -ENOMEM;
	}
	*ret = cfg;
	return 0;
}
