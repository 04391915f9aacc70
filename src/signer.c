// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The worker's end of the key holder: external GnuTLS keys that ask the
 * holder for their signature.
 */
#include "build-config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "log.h"
#include "signer.h"
#include "util.h"

/* The TLS 1.3 signature schemes (RFC 8446 4.2.3) GnuTLS makes, by key. */
static const struct {
	gnutls_sign_algorithm_t sign;
	gnutls_pk_algorithm_t pk;
	unsigned int bits;		/* ECDSA: the curve's; 0: any */
} signer_schemes[] = {
	/* (GnuTLS gives an ECDSA key's bits in whole bytes: 528 for P-521.) */
	{ GNUTLS_SIGN_RSA_PSS_RSAE_SHA256,	GNUTLS_PK_RSA,		0 },
	{ GNUTLS_SIGN_RSA_PSS_RSAE_SHA384,	GNUTLS_PK_RSA,		0 },
	{ GNUTLS_SIGN_RSA_PSS_RSAE_SHA512,	GNUTLS_PK_RSA,		0 },
	{ GNUTLS_SIGN_RSA_PSS_SHA256,		GNUTLS_PK_RSA_PSS,	0 },
	{ GNUTLS_SIGN_RSA_PSS_SHA384,		GNUTLS_PK_RSA_PSS,	0 },
	{ GNUTLS_SIGN_RSA_PSS_SHA512,		GNUTLS_PK_RSA_PSS,	0 },
	{ GNUTLS_SIGN_ECDSA_SECP256R1_SHA256,	GNUTLS_PK_ECDSA,	256 },
	{ GNUTLS_SIGN_ECDSA_SECP384R1_SHA384,	GNUTLS_PK_ECDSA,	384 },
	{ GNUTLS_SIGN_ECDSA_SECP521R1_SHA512,	GNUTLS_PK_ECDSA,	521 },
	{ GNUTLS_SIGN_EDDSA_ED25519,		GNUTLS_PK_EDDSA_ED25519, 0 },
	{ GNUTLS_SIGN_EDDSA_ED448,		GNUTLS_PK_EDDSA_ED448,	0 },
};

bool tlshd_signer_scheme_ok(gnutls_sign_algorithm_t sign, gnutls_pk_algorithm_t pk,
			    unsigned int bits)
{
	for (size_t i = 0; i < sizeof(signer_schemes) / sizeof(signer_schemes[0]); i++)
		if (signer_schemes[i].sign == sign && signer_schemes[i].pk == pk)
			return !signer_schemes[i].bits ||
			       (signer_schemes[i].bits + 7) / 8 == (bits + 7) / 8;
	return false;
}

/* What an external key knows: whose it is, and its public half. */
struct signer_key {
	struct tlshd_signer *signer;
	enum tlshd_signer_role role;
	gnutls_pk_algorithm_t pk;
	unsigned int bits;
};

static int signer_exchange(int fd, const struct tlshd_signer_request *rq,
			   struct tlshd_signer_reply *rp)
{
	const struct timeval tv = { TLSHD_SIGNER_TIMEOUT_MS / 1000,
				    TLSHD_SIGNER_TIMEOUT_MS % 1000 * 1000 };
	ssize_t n;

	/* A receive time-out rather than poll(): no high-resolution timer
	 * to arm and cancel around the one wait. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0)
		return -errno;
	n = send(fd, rq, sizeof(*rq), MSG_NOSIGNAL);
	if (n < 0)
		return -errno;
	if ((size_t)n != sizeof(*rq))
		return -EIO;
	do {
		n = recv(fd, rp, sizeof(*rp), 0);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EAGAIN ? -ETIMEDOUT : -errno;
	if (n == 0)
		return -ECONNRESET;
	if ((size_t)n != sizeof(*rp) || rp->len > sizeof(rp->sig) || rp->err > 0 ||
	    (!rp->err && !rp->len))
		return -EPROTO;
	return 0;
}

static int signer_ask(struct signer_key *k, gnutls_sign_algorithm_t algo, bool hashed,
		      const gnutls_datum_t *data, gnutls_datum_t *sig)
{
	struct tlshd_signer_request rq = {
		.role = k->role,
		.algo = algo,
		.hashed = hashed,
		.len = data->size,
	};
	struct tlshd_signer_reply rp;
	int r;

	if (k->signer->fd < 0) {
		tlshd_err("cannot sign with the configured %s key: no key holder is running",
			  k->role == TLSHD_SIGNER_SERVER ? "server" : "client");
		return GNUTLS_E_PK_SIGN_FAILED;
	}
	if (data->size > sizeof(rq.data))
		return GNUTLS_E_PK_SIGN_FAILED;
	memcpy(rq.data, data->data, data->size);
	r = signer_exchange(k->signer->fd, &rq, &rp);
	if (!r)
		r = rp.err;
	/* Test hook sign-twice (util.h): a greedy worker, which the holder
	 * reports and the daemon kills. */
	if (!r && tlshd_test_hook("sign-twice", NULL)) {
		struct tlshd_signer_reply again;

		tlshd_notice("test hook: worker %d asks the key holder for a second signature",
			     (int)getpid());
		if (signer_exchange(k->signer->fd, &rq, &again) == 0 && !again.err)
			tlshd_err("test hook: the key holder signed twice");
	}
	if (r < 0) {
		tlshd_log_errno(LOG_ERR, r, "the key holder made no %s signature",
				gnutls_sign_get_name(algo));
		return GNUTLS_E_PK_SIGN_FAILED;
	}
	sig->data = gnutls_malloc(rp.len);
	if (!sig->data)
		return GNUTLS_E_MEMORY_ERROR;
	memcpy(sig->data, rp.sig, rp.len);
	sig->size = rp.len;
	return 0;
}

static int signer_sign_data(gnutls_privkey_t key, gnutls_sign_algorithm_t algo, void *userdata,
			    unsigned int flags, const gnutls_datum_t *data, gnutls_datum_t *sig)
{
	return signer_ask(userdata, algo, false, data, sig);
}

static int signer_sign_hash(gnutls_privkey_t key, gnutls_sign_algorithm_t algo, void *userdata,
			    unsigned int flags, const gnutls_datum_t *hash, gnutls_datum_t *sig)
{
	return signer_ask(userdata, algo, true, hash, sig);
}

static int signer_info(gnutls_privkey_t key, unsigned int flags, void *userdata)
{
	const struct signer_key *k = userdata;

	if (flags & GNUTLS_PRIVKEY_INFO_HAVE_SIGN_ALGO)
		return tlshd_signer_scheme_ok(GNUTLS_FLAGS_TO_SIGN_ALGO(flags), k->pk, k->bits);
	if (flags & GNUTLS_PRIVKEY_INFO_PK_ALGO)
		return k->pk;
	if (flags & GNUTLS_PRIVKEY_INFO_PK_ALGO_BITS)
		return k->bits;
	if (flags & GNUTLS_PRIVKEY_INFO_SIGN_ALGO)
		return 0;		/* no preference */
	return -1;
}

static void signer_deinit(gnutls_privkey_t key, void *userdata)
{
	free(userdata);
}

int tlshd_signer_key_new(struct tlshd_signer *s, enum tlshd_signer_role role,
			 gnutls_pubkey_t pub, gnutls_privkey_t *ret)
{
	struct signer_key *k;
	gnutls_privkey_t key;
	int pk;

	k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	pk = gnutls_pubkey_get_pk_algorithm(pub, &k->bits);
	if (pk < 0) {
		free(k);
		return -EINVAL;
	}
	k->signer = s;
	k->role = role;
	k->pk = pk;
	if (gnutls_privkey_init(&key) < 0) {
		free(k);
		return -ENOMEM;
	}
	/* From here the key owns k (signer_deinit). */
	if (gnutls_privkey_import_ext4(key, k, signer_sign_data, signer_sign_hash, NULL,
				       signer_deinit, signer_info, 0) < 0) {
		gnutls_privkey_deinit(key);
		free(k);
		return -EINVAL;
	}
	*ret = key;
	return 0;
}
