// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests of config.c: parsing from memory, defaults, rejections, and
 * loading from files.
 */
#include "build-config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "tap.h"

static int parse(const char *text, struct tlshd_config **cfg)
{
	return tlshd_config_parse(text, strlen(text), "test.conf", cfg);
}

static void test_defaults(void)
{
	struct tlshd_config *cfg = NULL;

	is_int(parse("", &cfg), 0, "empty file parses");
	is_int(cfg->loglevel, 0, "default loglevel 0");
	is_int(cfg->tls_debug, 0, "default tls debug 0");
	ok(cfg->keyrings && !cfg->keyrings[0], "no extra keyrings by default");
	ok(!cfg->client.truststore && !cfg->server.certificate, "no x509 files by default");
	tlshd_config_free(cfg);
}

/* A file as ktls-utils' tlshd accepts it. */
static const char ktls_utils_conf[] =
	"# comment\n"
	"[debug]\n"
	"loglevel=2\n"
	"tls=5\n"
	"nl=1\n"
	"\n"
	"[authenticate]\n"
	"keyrings= .nvme ; ;my keys;\n"
	"\n"
	"[authenticate.client]\n"
	"x509.truststore=/etc/pki/ca.pem\n"
	"x509.crl=/etc/pki/crl.pem\n"
	"x509.certificate=/etc/pki/client.pem\n"
	"x509.private_key=pkcs11:token=t;object=k\n"
	"\n"
	"[authenticate.server]\n"
	"x509.certificate=/etc/pki/server.pem\n"
	"x509.private_key=/etc/pki/server.key\n";

static void test_full(void)
{
	struct tlshd_config *cfg = NULL;

	is_int(parse(ktls_utils_conf, &cfg), 0, "ktls-utils style file parses");
	is_int(cfg->loglevel, 2, "[debug] loglevel");
	is_int(cfg->tls_debug, 5, "[debug] tls");
	ok(cfg->keyrings[0] && !strcmp(cfg->keyrings[0], ".nvme"), "first keyring, trimmed");
	ok(cfg->keyrings[1] && !strcmp(cfg->keyrings[1], "my keys"), "empty entries skipped");
	ok(!cfg->keyrings[2], "two keyrings in all");
	ok(!strcmp(cfg->client.truststore, "/etc/pki/ca.pem"), "client truststore");
	ok(!strcmp(cfg->client.crl, "/etc/pki/crl.pem"), "client crl");
	ok(!strcmp(cfg->client.private_key, "pkcs11:token=t;object=k"),
	   "a key URL keeps its ';' (a string, not a list)");
	ok(!strcmp(cfg->server.certificate, "/etc/pki/server.pem"), "server certificate");
	ok(!cfg->server.truststore, "server truststore unset");
	tlshd_config_free(cfg);
}

static void test_rejects(void)
{
	static const struct {
		const char *text, *what;
	} bad[] = {
		{ "[debug\nloglevel=1\n", "unterminated group" },
		{ "loglevel=1\n", "key outside any group" },
		{ "[debug]\nloglevel=abc\n", "non-numeric loglevel" },
		{ "[debug]\nloglevel=-1\n", "negative loglevel" },
		{ "[debug]\ntls=1.5\n", "non-integer tls level" },
		{ "[authenticate.server]\nx509.certificate=\n", "empty certificate path" },
		{ "[authenticate.client]\nx509.truststore=   \n", "blank truststore path" },
		/* Found by fuzzing: the rejected value leaked (the sanitizer
		 * build's leak check fails this test if it does again). */
		{ "[authenticate.client]\nx509.crl=/a\\/b\n", "a path with an invalid escape" },
		{ "[authenticate]\nkeyrings=a;b\\/c\n", "a keyring list with an invalid escape" },
	};
	struct tlshd_config *cfg = (struct tlshd_config *)0x1;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		is_int(parse(bad[i].text, &cfg), -EINVAL, "rejects %s", bad[i].what);
		ok(cfg == (struct tlshd_config *)0x1, "output untouched after %s", bad[i].what);
	}
}

static void test_tls_debug_cap(void)
{
	struct tlshd_config *cfg = NULL;

	is_int(parse("[debug]\ntls=12\n", &cfg), 0, "[debug] tls=12 is accepted");
	is_int(cfg ? cfg->tls_debug : -1, TLSHD_CONFIG_TLS_DEBUG_MAX,
	       "but capped at %d: level 9 and up log traffic keys", TLSHD_CONFIG_TLS_DEBUG_MAX);
	tlshd_config_free(cfg);
	cfg = NULL;
	is_int(parse("[debug]\ntls=8\n", &cfg), 0, "[debug] tls=8 is accepted");
	is_int(cfg ? cfg->tls_debug : -1, 8, "as it is");
	tlshd_config_free(cfg);
}

/* Every key ktls-utils documents is known (none draws "unknown"). */
static void test_ktls_utils_keys(void)
{
	struct tlshd_config *cfg = NULL;

	is_int(parse("[debug]\nloglevel=0\ntls=0\nnl=0\n"
		     "[authenticate.client]\nx509.pq.certificate=/etc/tlshd/pq.pem\n"
		     "x509.pq.private_key=/etc/tlshd/pq.key\n"
		     "[authenticate.server]\nx509.pq.certificate=/etc/tlshd/spq.pem\n"
		     "x509.pq.private_key=pkcs11:object=pq\n", &cfg), 0,
	       "ktls-utils' keys parse, [debug] nl and x509.pq.* included");
	ok(cfg && cfg->client.pq_certificate && !strcmp(cfg->client.pq_certificate,
	   "/etc/tlshd/pq.pem") && cfg->server.pq_private_key &&
	   !strcmp(cfg->server.pq_private_key, "pkcs11:object=pq"), "the PQ paths are kept");
	tlshd_config_free(cfg);
}

static void test_unknown_keys(void)
{
	struct tlshd_config *cfg = NULL;

	is_int(parse("[debug]\nloglevel=1\nfuture=1\n[newsection]\nx=y\n", &cfg), 0,
	       "unknown keys and sections are not fatal");
	is_int(cfg->loglevel, 1, "known keys still read");
	tlshd_config_free(cfg);
}

static void test_load(void)
{
	char dir[] = "/tmp/tlshd-test-config-XXXXXX";
	struct tlshd_config *cfg = NULL;
	char path[256];
	FILE *f;

	ok(mkdtemp(dir) != NULL, "temporary directory");
	snprintf(path, sizeof(path), "%s/tlshd.conf", dir);

	is_int(tlshd_config_load(path, &cfg), -ENOENT, "a missing file is an error");
	is_int(tlshd_config_load(NULL, &cfg), 0, "no file at all gives defaults");
	ok(cfg && !cfg->path, "defaults name no file");
	tlshd_config_free(cfg);

	f = fopen(path, "w");
	fputs("[debug]\nloglevel=3\n", f);
	fclose(f);
	cfg = NULL;
	is_int(tlshd_config_load(path, &cfg), 0, "file loads");
	ok(cfg && cfg->loglevel == 3 && !strcmp(cfg->path, path), "values and path from file");
	tlshd_config_free(cfg);

	is_int(tlshd_config_load(dir, &cfg), -EINVAL, "a directory is not a config file");
	unlink(path);
	rmdir(dir);
}

/* Without -c: /etc/tlshd.conf, else ktls-utils' /etc/tlshd/config. */
static void test_default_path(void)
{
	char dir[] = "/tmp/tlshd-test-config-XXXXXX", ours[256], theirs[256], sub[256];
	const char *paths[] = { ours, theirs, NULL };

	ok(mkdtemp(dir) != NULL, "temporary directory");
	snprintf(ours, sizeof(ours), "%s/tlshd.conf", dir);
	snprintf(sub, sizeof(sub), "%s/tlshd", dir);
	snprintf(theirs, sizeof(theirs), "%s/tlshd/config", dir);
	ok(tlshd_config_first_existing(paths) == NULL, "neither exists: none (defaults)");
	mkdir(sub, 0755);
	fclose(fopen(theirs, "w"));
	ok(tlshd_config_first_existing(paths) == theirs, "only ktls-utils' file: that one");
	fclose(fopen(ours, "w"));
	ok(tlshd_config_first_existing(paths) == ours, "both: ours first");
	ok(strstr(TLSHD_COMPAT_CONFIG, "/tlshd/config") != NULL &&
	   strstr(TLSHD_COMPAT_CONFIG, "/tlshd/config")[13] == '\0',
	   "the daemon's fallback is %s", TLSHD_COMPAT_CONFIG);
	unlink(ours);
	unlink(theirs);
	rmdir(sub);
	rmdir(dir);
}

int main(void)
{
	tlshd_log_open(TLSHD_LOG_STDERR);
	test_defaults();
	test_full();
	test_rejects();
	test_tls_debug_cap();
	test_unknown_keys();
	test_ktls_utils_keys();
	test_load();
	test_default_path();
	return tap_done();
}
