// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Loading and checking X.509 material.
 */
#include "build-config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/x509.h>

#include "config.h"
#include "creds.h"
#include "log.h"
#include "util.h"

/* Anything that looks like "scheme:" (pkcs11:, tpmkey:, system:) is a
 * GnuTLS key URL; a file whose name has a colon is written "./a:b". */
static bool creds_is_url(const char *s)
{
	const char *c = strchr(s, ':');

	if (!c || c == s || s[0] == '/' || s[0] == '.')
		return false;
	for (const char *p = s; p < c; p++)
		if (!(('a' <= *p && *p <= 'z') || ('A' <= *p && *p <= 'Z') ||
		      ('0' <= *p && *p <= '9') || *p == '+' || *p == '-' || *p == '.'))
			return false;
	return true;
}

/* Key files are small; anything larger is not one. */
#define TLSHD_KEY_FILE_MAX	(4 * 1024 * 1024)

static int creds_load_trust(struct tlshd_creds_role *role, const struct tlshd_config_x509 *x)
{
	int r;

	if (!x->truststore && role->system_trust) {
		r = gnutls_certificate_set_x509_system_trust(role->cred);
		if (r <= 0)
			tlshd_notice("%s: [%s] no x509.truststore and the system trust store %s: "
				     "x509 peers cannot be verified", role->file, role->section,
				     r < 0 ? "cannot be loaded" : "is empty");
		role->n_cas = r > 0 ? r : 0;
		return 0;
	}
	if (!x->truststore) {
		/* Trust defaults closed: a client certificate authenticates
		 * only against CAs the administrator named for clients. */
		tlshd_notice("%s: [%s] names no x509.truststore: client certificates are not "
			     "requested and no client is authenticated (xprtsec=mtls mounts are "
			     "refused by nfsd)", role->file, role->section);
		return 0;
	}
	if (access(x->truststore, R_OK) < 0)
		return tlshd_log_errno(LOG_ERR, -errno, "%s: [%s] x509.truststore: cannot read %s",
				       role->file, role->section, x->truststore);
	r = gnutls_certificate_set_x509_trust_file(role->cred, x->truststore, GNUTLS_X509_FMT_PEM);
	if (r < 0) {
		tlshd_err("%s: [%s] x509.truststore: %s: %s", role->file, role->section, x->truststore,
			  gnutls_strerror(r));
		return -EINVAL;
	}
	if (r == 0) {
		tlshd_err("%s: [%s] x509.truststore: %s holds no usable CA certificate",
			  role->file, role->section, x->truststore);
		return -EINVAL;
	}
	role->n_cas = r;
	return 0;
}

static int creds_load_crl(struct tlshd_creds_role *role, const struct tlshd_config_x509 *x)
{
	int r;

	if (!x->crl)
		return 0;
	if (access(x->crl, R_OK) < 0)
		return tlshd_log_errno(LOG_ERR, -errno, "%s: [%s] x509.crl: cannot read %s",
				       role->file, role->section, x->crl);
	r = gnutls_certificate_set_x509_crl_file(role->cred, x->crl, GNUTLS_X509_FMT_PEM);
	if (r < 0) {
		tlshd_err("%s: [%s] x509.crl: %s: %s", role->file, role->section, x->crl, gnutls_strerror(r));
		return -EINVAL;
	}
	if (r == 0)
		tlshd_warn("%s: [%s] x509.crl: %s holds no CRL", role->file, role->section, x->crl);
	return 0;
}

static void creds_format_time(time_t t, char *buf, size_t size)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, size, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

/* Refuses a chain any of whose certificates is expired or not yet
 * valid; warns when one expires soon. */
static int creds_check_validity(const struct tlshd_creds_role *role, const char *path)
{
	time_t now = time(NULL);

	for (unsigned int i = 0; i < role->chain_len; i++) {
		gnutls_x509_crt_t crt;
		time_t from, until;
		char when[64];

		if (gnutls_x509_crt_init(&crt) < 0)
			return -ENOMEM;
		if (gnutls_x509_crt_import(crt, &role->chain[i].cert, GNUTLS_X509_FMT_DER) < 0) {
			gnutls_x509_crt_deinit(crt);
			continue;
		}
		from = gnutls_x509_crt_get_activation_time(crt);
		until = gnutls_x509_crt_get_expiration_time(crt);
		gnutls_x509_crt_deinit(crt);
		if (from != (time_t)-1 && now < from) {
			creds_format_time(from, when, sizeof(when));
			tlshd_err("%s: [%s] x509.certificate: %s: certificate %u is not valid before %s",
				  role->file, role->section, path, i, when);
			return -EKEYEXPIRED;
		}
		if (until != (time_t)-1 && now > until) {
			creds_format_time(until, when, sizeof(when));
			tlshd_err("%s: [%s] x509.certificate: %s: certificate %u expired on %s",
				  role->file, role->section, path, i, when);
			return -EKEYEXPIRED;
		}
		if (until != (time_t)-1 && until - now < TLSHD_EXPIRY_WARN_DAYS * 86400) {
			creds_format_time(until, when, sizeof(when));
			tlshd_warn("%s: [%s] x509.certificate: %s: certificate %u expires on %s",
				   role->file, role->section, path, i, when);
		}
	}
	return 0;
}

int tlshd_creds_key_id(gnutls_privkey_t key, unsigned char id[TLSHD_CREDS_KEY_ID_LEN])
{
	size_t len = TLSHD_CREDS_KEY_ID_LEN;
	gnutls_pubkey_t pub;
	int r = -EINVAL;

	if (gnutls_pubkey_init(&pub) < 0)
		return -ENOMEM;
	if (gnutls_pubkey_import_privkey(pub, key, 0, 0) == 0 &&
	    gnutls_pubkey_get_key_id(pub, GNUTLS_KEYID_USE_SHA256, id, &len) == 0 &&
	    len == TLSHD_CREDS_KEY_ID_LEN)
		r = 0;
	gnutls_pubkey_deinit(pub);
	return r;
}

/* Whether @key signs what @pub verifies: for keys that cannot give their
 * public half (PKCS#11 objects without their public attributes). */
static bool creds_key_signs_for(gnutls_privkey_t key, gnutls_pubkey_t pub)
{
	static const unsigned char probe[] = "tlshd: does this key belong to this certificate?";
	gnutls_datum_t data = { (unsigned char *)probe, sizeof(probe) }, sig = { 0 };
	gnutls_digest_algorithm_t hash = GNUTLS_DIG_SHA256;
	unsigned int bits = 0;
	int pk = gnutls_pubkey_get_pk_algorithm(pub, &bits);
	gnutls_sign_algorithm_t algo;
	bool ok;

	gnutls_pubkey_get_preferred_hash_algorithm(pub, &hash, NULL);
	algo = gnutls_pk_to_sign(pk, hash);
	if (pk < 0 || algo == GNUTLS_SIGN_UNKNOWN ||
	    gnutls_privkey_sign_data2(key, algo, 0, &data, &sig) < 0)
		return false;
	ok = gnutls_pubkey_verify_data2(pub, algo, 0, &data, &sig) >= 0;
	gnutls_free(sig.data);
	return ok;
}

bool tlshd_creds_key_matches(const gnutls_pcert_st *pcert, gnutls_privkey_t key)
{
	unsigned char a[TLSHD_CREDS_KEY_ID_LEN], b[TLSHD_CREDS_KEY_ID_LEN];
	size_t len = sizeof(b);

	if (tlshd_creds_key_id(key, a) < 0)
		return creds_key_signs_for(key, pcert->pubkey);
	return gnutls_pubkey_get_key_id(pcert->pubkey, GNUTLS_KEYID_USE_SHA256, b, &len) == 0 &&
	       len == sizeof(b) && !memcmp(a, b, sizeof(b));
}

static int creds_load_key_file(const char *file, const char *section, const char *path,
			       gnutls_privkey_t key)
{
	gnutls_datum_t pem;
	struct stat st = { 0 };
	size_t len = 0;
	char *data;
	int r;

	r = tlshd_util_read_file(path, TLSHD_KEY_FILE_MAX, &data, &len, &st);
	if (r < 0)
		return tlshd_log_errno(LOG_ERR, r, "%s: [%s] x509.private_key: cannot read %s",
				       file, section, path);
	if (st.st_mode & (S_IROTH | S_IWOTH)) {
		tlshd_util_wipe_free(data, len);
		tlshd_err("%s: [%s] x509.private_key: %s is accessible to other users (mode %04o); "
			  "refusing it: chmod o-rwx it", file, section, path,
			  (unsigned int)(st.st_mode & 07777));
		return -EPERM;
	}
	pem = (gnutls_datum_t){ (unsigned char *)data, len };
	r = gnutls_privkey_import_x509_raw(key, &pem, GNUTLS_X509_FMT_PEM, NULL, 0);
	tlshd_util_wipe_free(data, len);
	if (r < 0) {
		tlshd_err("%s: [%s] x509.private_key: %s: %s", file, section, path, gnutls_strerror(r));
		return -EINVAL;
	}
	return 0;
}

/* The private key @path names (a file or a key URL) into *ret. */
static int creds_load_private(const char *file, const char *section, const char *path,
			      gnutls_privkey_t *ret)
{
	gnutls_privkey_t key;
	int r;

	if (gnutls_privkey_init(&key) < 0)
		return -ENOMEM;
	if (creds_is_url(path)) {
		r = gnutls_privkey_import_url(key, path, 0);
		if (r < 0) {
			tlshd_err("%s: [%s] x509.private_key: cannot open key URL: %s", file, section,
				  gnutls_strerror(r));
			r = -EINVAL;
		}
	} else {
		r = creds_load_key_file(file, section, path, key);
	}
	if (r < 0) {
		gnutls_privkey_deinit(key);
		return r;
	}
	*ret = key;
	return 0;
}

static const char *const creds_sections[TLSHD_SIGNER_ROLES] = {
	[TLSHD_SIGNER_CLIENT] = "authenticate.client",
	[TLSHD_SIGNER_SERVER] = "authenticate.server",
};

static const struct tlshd_config_x509 *creds_config_x509(const struct tlshd_config *cfg,
							 enum tlshd_signer_role role)
{
	return role == TLSHD_SIGNER_SERVER ? &cfg->server : &cfg->client;
}

int tlshd_creds_load_key(const struct tlshd_config *cfg, enum tlshd_signer_role role,
			 gnutls_privkey_t *ret)
{
	const struct tlshd_config_x509 *x = creds_config_x509(cfg, role);

	*ret = NULL;
	if (!x->private_key || !x->certificate)
		return 0;	/* (the parent says what is missing) */
	return creds_load_private(cfg->path ? cfg->path : "(defaults)", creds_sections[role],
				  x->private_key, ret);
}

int tlshd_creds_key_check(const struct tlshd_config *cfg, enum tlshd_signer_role role,
			  gnutls_privkey_t key, unsigned char id[TLSHD_CREDS_KEY_ID_LEN],
			  gnutls_pk_algorithm_t *ret_pk, unsigned int *ret_bits)
{
	const struct tlshd_config_x509 *x = creds_config_x509(cfg, role);
	size_t len = TLSHD_CREDS_KEY_ID_LEN;
	gnutls_pcert_st leaf;
	unsigned int n = 1, bits = 0;
	int r, pk;

	/* (Only the leaf: the rest of a chain does not fit, harmlessly.) */
	r = gnutls_pcert_list_import_x509_file(&leaf, &n, x->certificate, GNUTLS_X509_FMT_PEM,
					       NULL, NULL, 0);
	if ((r < 0 && r != GNUTLS_E_SHORT_MEMORY_BUFFER) || n != 1)
		return -EINVAL;
	pk = gnutls_pubkey_get_pk_algorithm(leaf.pubkey, &bits);
	r = -EKEYREJECTED;
	if (pk < 0 || gnutls_pubkey_get_key_id(leaf.pubkey, GNUTLS_KEYID_USE_SHA256, id, &len) < 0 ||
	    len != TLSHD_CREDS_KEY_ID_LEN)
		goto out;
	if (tlshd_creds_key_matches(&leaf, key)) {
		*ret_pk = pk;
		*ret_bits = bits;
		r = 0;
	}
out:
	gnutls_pcert_deinit(&leaf);
	return r;
}

bool tlshd_creds_key_is_url(const struct tlshd_config *cfg, enum tlshd_signer_role role)
{
	const struct tlshd_config_x509 *x = creds_config_x509(cfg, role);

	return x->private_key && creds_is_url(x->private_key);
}

/*
 * ktls-utils offers a second, post-quantum (ML-DSA) certificate to peers
 * that ask for one. That needs a GnuTLS built with ML-DSA; no GnuTLS that
 * Debian ships is. The keys are accepted, and the daemon says once what is
 * missing and goes on with the classic certificate.
 */
static void creds_check_pq(const struct tlshd_creds_role *role, const struct tlshd_config_x509 *x)
{
	if (!x->pq_certificate && !x->pq_private_key)
		return;
	tlshd_warn("%s: [%s] x509.pq.certificate/x509.pq.private_key: a post-quantum (ML-DSA) "
		   "certificate needs a GnuTLS built with ML-DSA, and GnuTLS %s is not; it is not "
		   "used, peers get x509.certificate", role->file, role->section,
		   gnutls_check_version(NULL));
}

/* The key holder's key for @idx: it must be the certificate's. */
static int creds_attach_remote(struct tlshd_creds_role *role, const struct tlshd_creds_remote *remote,
			       enum tlshd_signer_role idx, const char *path)
{
	unsigned char id[TLSHD_CREDS_KEY_ID_LEN];
	size_t len = sizeof(id);

	if (!remote->role[idx].present) {
		tlshd_err("%s: [%s] x509.private_key: the key holder has no key for it",
			  role->file, role->section);
		return -ENOKEY;
	}
	if (gnutls_pubkey_get_key_id(role->chain[0].pubkey, GNUTLS_KEYID_USE_SHA256, id, &len) < 0 ||
	    len != sizeof(id) || memcmp(id, remote->role[idx].id, sizeof(id))) {
		tlshd_err("%s: [%s] x509.private_key does not belong to the certificate in %s",
			  role->file, role->section, path);
		return -EKEYREJECTED;
	}
	if (tlshd_signer_key_new(remote->signer, idx, role->chain[0].pubkey, &role->key) < 0) {
		tlshd_err("%s: [%s] x509.certificate: %s: its public key cannot sign TLS 1.3 "
			  "handshakes", role->file, role->section, path);
		return -EINVAL;
	}
	return 0;
}

static int creds_load_own(struct tlshd_creds_role *role, const struct tlshd_config_x509 *x,
			  const struct tlshd_creds_remote *remote, enum tlshd_signer_role idx)
{
	unsigned int n = TLSHD_MAX_CHAIN;
	int r;

	creds_check_pq(role, x);
	if (!x->certificate && !x->private_key)
		return 0;
	if (!x->certificate || !x->private_key) {
		tlshd_err("%s: [%s] x509.%s is set without x509.%s", role->file, role->section,
			  x->certificate ? "certificate" : "private_key",
			  x->certificate ? "private_key" : "certificate");
		return -EINVAL;
	}
	if (access(x->certificate, R_OK) < 0)
		return tlshd_log_errno(LOG_ERR, -errno, "%s: [%s] x509.certificate: cannot read %s",
				       role->file, role->section, x->certificate);
	r = gnutls_pcert_list_import_x509_file(role->chain, &n, x->certificate,
					       GNUTLS_X509_FMT_PEM, NULL, NULL, 0);
	if (r < 0 || n == 0) {
		tlshd_err("%s: [%s] x509.certificate: %s: %s", role->file, role->section, x->certificate,
			  r < 0 ? gnutls_strerror(r) : "no certificate in the file");
		return -EINVAL;
	}
	role->chain_len = n;
	r = creds_check_validity(role, x->certificate);
	if (r < 0)
		return r;
	if (remote)
		return creds_attach_remote(role, remote, idx, x->certificate);
	r = creds_load_private(role->file, role->section, x->private_key, &role->key);
	if (r < 0)
		return r;
	if (!tlshd_creds_key_matches(&role->chain[0], role->key)) {
		tlshd_err("%s: [%s] x509.private_key does not belong to the certificate in %s",
			  role->file, role->section, x->certificate);
		return -EKEYREJECTED;
	}
	return 0;
}

static void creds_role_done(struct tlshd_creds_role *role)
{
	for (unsigned int i = 0; i < role->chain_len; i++)
		gnutls_pcert_deinit(&role->chain[i]);
	if (role->key)
		gnutls_privkey_deinit(role->key);
	if (role->cred)
		gnutls_certificate_free_credentials(role->cred);
	memset(role, 0, sizeof(*role));
}

static int creds_role_load(struct tlshd_creds_role *role, const char *file,
			   enum tlshd_signer_role idx, bool system_trust,
			   const struct tlshd_config_x509 *x,
			   const struct tlshd_creds_remote *remote)
{
	int r = 0;

	memset(role, 0, sizeof(*role));
	role->section = creds_sections[idx];
	role->file = file;
	role->system_trust = system_trust;
	if (gnutls_certificate_allocate_credentials(&role->cred) < 0)
		return -ENOMEM;
	/* Every check runs, so that every problem is logged; the first
	 * error is returned. */
	tlshd_util_keep_first(&r, creds_load_trust(role, x));
	tlshd_util_keep_first(&r, creds_load_crl(role, x));
	tlshd_util_keep_first(&r, creds_load_own(role, x, remote, idx));
	if (r < 0)
		creds_role_done(role);
	return r;
}

int tlshd_creds_load(const struct tlshd_config *cfg, const struct tlshd_creds_remote *remote,
		     struct tlshd_creds *ret)
{
	struct tlshd_creds c;

	int rc, rs;

	const char *file = cfg->path ? cfg->path : "(defaults)";

	/* A server certificate may be verified against the system's CAs
	 * when none are named (as a browser would); a client certificate
	 * never is. */
	rc = creds_role_load(&c.client, file, TLSHD_SIGNER_CLIENT, true, &cfg->client, remote);
	rs = creds_role_load(&c.server, file, TLSHD_SIGNER_SERVER, false, &cfg->server, remote);
	if (rc < 0 || rs < 0) {
		creds_role_done(&c.client);
		creds_role_done(&c.server);
		return rc < 0 ? rc : rs;
	}
	*ret = c;
	return 0;
}

void tlshd_creds_done(struct tlshd_creds *creds)
{
	creds_role_done(&creds->client);
	creds_role_done(&creds->server);
}

int tlshd_creds_import_der(const gnutls_datum_t *cert, const gnutls_datum_t *key,
			   gnutls_pcert_st *ret_pcert, gnutls_privkey_t *ret_key)
{
	gnutls_privkey_t k;

	if (gnutls_pcert_import_x509_raw(ret_pcert, cert, GNUTLS_X509_FMT_DER, 0) < 0)
		return -EKEYREJECTED;
	if (gnutls_privkey_init(&k) < 0) {
		gnutls_pcert_deinit(ret_pcert);
		return -ENOMEM;
	}
	if (gnutls_privkey_import_x509_raw(k, key, GNUTLS_X509_FMT_DER, NULL, 0) < 0) {
		gnutls_privkey_deinit(k);
		gnutls_pcert_deinit(ret_pcert);
		return -EKEYREJECTED;
	}
	*ret_key = k;
	return 0;
}
