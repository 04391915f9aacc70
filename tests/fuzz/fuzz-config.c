// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer target: the configuration parser on arbitrary file contents.
 * A parse that succeeds must yield what the daemon relies on: levels in
 * range, [debug] tls capped, no empty keyring name or path; one that fails
 * must return -EINVAL (or -ENOMEM) and leave *ret alone. Everything it
 * allocates is freed, which LeakSanitizer checks.
 */
#include "build-config.h"

#include <errno.h>

#include "config.h"
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_quiet_log();
	return 0;
}

static void check_path(const char *path)
{
	fuzz_assert(!path || *path);
}

static void check_x509(const struct tlshd_config_x509 *x)
{
	check_path(x->truststore);
	check_path(x->crl);
	check_path(x->certificate);
	check_path(x->private_key);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tlshd_config *cfg = NULL;
	int r;

	r = tlshd_config_parse((const char *)data, size, "fuzz.conf", &cfg);
	if (r < 0) {
		fuzz_assert(r == -EINVAL || r == -ENOMEM);
		fuzz_assert(!cfg);
		return 0;
	}
	fuzz_assert(cfg && !cfg->path);
	fuzz_assert(cfg->loglevel >= 0);
	fuzz_assert(cfg->tls_debug >= 0 && cfg->tls_debug <= TLSHD_CONFIG_TLS_DEBUG_MAX);
	fuzz_assert(cfg->keyrings);
	for (char **k = cfg->keyrings; *k; k++)
		fuzz_assert(**k);
	check_x509(&cfg->client);
	check_x509(&cfg->server);
	tlshd_config_free(cfg);
	return 0;
}
