// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * tlshd-probe: runs the daemon's handshake engine once over a plain TCP
 * connection, without the kernel's handshake family and without kTLS,
 * so that host tests can pit it against independent TLS peers.
 *
 *   tlshd-probe client HOST PORT [options]
 *   tlshd-probe server PORT [options]      (accepts one connection)
 *
 * Options:
 *   -c FILE       tlshd configuration (x509 material)
 *   -a MODE       unauth | x509 | psk            (default: unauth/x509)
 *   -n NAME       PEERNAME the kernel would send
 *   -k CERT,KEY   key serials of a DER certificate and key (CERTIFICATE nest)
 *   -p SERIAL     PSK key serial (client) ; -r RING keyring to search (server)
 *   -t MS         handshake timeout
 *   -l FILE       the PEER's key log (SSLKEYLOGFILE format): check that the
 *                 keys the engine would hand to kTLS match it
 *   -H            as the daemon does: the configured private keys go to a
 *                 key holder process, and the engine signs through it
 *
 * Prints "key=value" lines: status, errno, reason, cipher, remote_auth, identity,
 * keylog. Exit status 0 when the handshake succeeded (and the key log,
 * if given, matched), 1 otherwise.
 */
#include "build-config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "hkdf.h"
#include "keyholder.h"
#include "log.h"
#include "privs.h"
#include "tls.h"

static int tcp_connect(const char *host, const char *port)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai;
	int fd;

	if (getaddrinfo(host, port, &hints, &ai) != 0)
		return -1;
	fd = socket(ai->ai_family, SOCK_STREAM, 0);
	if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	return fd;
}

static int tcp_accept_one(const char *port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(atoi(port)),
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int one = 1, lfd, fd;

	socklen_t slen = sizeof(sin);

	lfd = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* Port 0: the kernel picks a free one, printed for the caller. */
	if (bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(lfd, 1) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&sin, &slen) < 0)
		return -1;
	printf("listening=%u\n", ntohs(sin.sin_port));
	fflush(stdout);
	/* Never wait for a client forever. */
	if (poll(&(struct pollfd){ .fd = lfd, .events = POLLIN }, 1, 30000) != 1) {
		close(lfd);
		errno = ETIMEDOUT;
		return -1;
	}
	fd = accept(lfd, NULL, NULL);
	close(lfd);
	return fd;
}

/* The key and 12-byte IV the engine would install, from crypto info. */
static void info_key_iv(const struct tlshd_ktls_crypto *c, const unsigned char **key,
			size_t *key_len, unsigned char iv[12])
{
	switch (c->u.info.cipher_type) {
	case TLS_CIPHER_AES_GCM_128:
		*key = c->u.aes_gcm_128.key;
		*key_len = 16;
		memcpy(iv, c->u.aes_gcm_128.salt, 4);
		memcpy(iv + 4, c->u.aes_gcm_128.iv, 8);
		return;
	case TLS_CIPHER_AES_GCM_256:
		*key = c->u.aes_gcm_256.key;
		*key_len = 32;
		memcpy(iv, c->u.aes_gcm_256.salt, 4);
		memcpy(iv + 4, c->u.aes_gcm_256.iv, 8);
		return;
	case TLS_CIPHER_AES_CCM_128:
		*key = c->u.aes_ccm_128.key;
		*key_len = 16;
		memcpy(iv, c->u.aes_ccm_128.salt, 4);
		memcpy(iv + 4, c->u.aes_ccm_128.iv, 8);
		return;
	case TLS_CIPHER_CHACHA20_POLY1305:
		*key = c->u.chacha20_poly1305.key;
		*key_len = 32;
		memcpy(iv, c->u.chacha20_poly1305.iv, 12);
		return;
	}
	*key = NULL;
	*key_len = 0;
}

static int hexval(const char *s, unsigned char *out, size_t max)
{
	size_t n = 0;

	while (s[0] && s[1] && s[0] != '\n' && n < max) {
		if (sscanf(s, "%2hhx", &out[n]) != 1)
			return -1;
		n++;
		s += 2;
	}
	return n;
}

/* Checks one direction: the secret named @label in the key log must
 * derive exactly the key and IV in @c. */
static bool keylog_matches(const char *path, const char *label, gnutls_mac_algorithm_t mac,
			   const struct tlshd_ktls_crypto *c)
{
	unsigned char secret[64], key[32], iv[12], want_iv[12];
	const unsigned char *have_key;
	size_t key_len;
	char line[512];
	int slen = -1;
	FILE *f = fopen(path, "r");

	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		char *p;

		if (strncmp(line, label, strlen(label)) || line[strlen(label)] != ' ')
			continue;
		p = strchr(line + strlen(label) + 1, ' ');	/* skip client_random */
		if (p)
			slen = hexval(p + 1, secret, sizeof(secret));	/* last one wins */
	}
	fclose(f);
	info_key_iv(c, &have_key, &key_len, want_iv);
	if (slen <= 0 || !have_key)
		return false;
	if (hkdf_expand_label(mac, secret, slen, "key", key, key_len) < 0 ||
	    hkdf_expand_label(mac, secret, slen, "iv", iv, 12) < 0)
		return false;
	return !memcmp(key, have_key, key_len) && !memcmp(iv, want_iv, 12);
}

static bool keylog_has(const char *path, const char *label)
{
	char line[512];
	bool found = false;
	FILE *f = fopen(path, "r");

	while (f && !found && fgets(line, sizeof(line), f))
		found = !strncmp(line, label, strlen(label));
	if (f)
		fclose(f);
	return found;
}

/* -H: a key holder for @cfg, as the daemon forks one, and this process's
 * connection to it. Returns 0 or a negative errno. */
static int start_keyholder(const struct tlshd_config *cfg, struct tlshd_keyholder *kh,
			   struct tlshd_creds_remote *keys, struct tlshd_signer *signer)
{
	struct tlshd_privs_ids ids;
	int r;

	tlshd_privs_worker_ids(&ids);
	keys->signer = signer;
	r = tlshd_keyholder_spawn(cfg, &ids, NULL, NULL, NULL, kh, keys);
	if (r < 0)
		return r;
	return tlshd_keyholder_connect(kh, getpid(), &signer->fd);
}

static void __attribute__((noreturn)) usage(void)
{
	fprintf(stderr, "usage: tlshd-probe client HOST PORT [opts] | server PORT [opts]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	struct tlshd_request req = { .auth = TLSHD_AUTH_UNAUTH };
	struct tlshd_tls_outcome out;
	struct tlshd_context ctx;
	struct tlshd_config *cfg = NULL;
	const char *config = NULL, *keylog = NULL;
	bool keylog_ok = true, auth_set = false, held = false;
	struct tlshd_keyholder kh = { .ctl_fd = -1 };
	struct tlshd_creds_remote keys = { 0 };
	struct tlshd_signer signer = { .fd = -1 };
	int c, fd, argi;

	if (argc < 3)
		usage();
	if (!strcmp(argv[1], "client")) {
		if (argc < 4)
			usage();
		req.role = TLSHD_ROLE_CLIENT;
		argi = 4;
	} else if (!strcmp(argv[1], "server")) {
		req.role = TLSHD_ROLE_SERVER;
		argi = 3;
	} else {
		usage();
	}
	optind = argi;
	while ((c = getopt(argc, argv, "c:a:n:k:p:r:t:l:H")) != -1) {
		switch (c) {
		case 'c':
			config = optarg;
			break;
		case 'a':
			auth_set = true;
			req.auth = !strcmp(optarg, "psk") ? TLSHD_AUTH_PSK :
				   !strcmp(optarg, "x509") ? TLSHD_AUTH_X509 : TLSHD_AUTH_UNAUTH;
			break;
		case 'n':
			req.has_peername = true;
			snprintf(req.peername, sizeof(req.peername), "%s", optarg);
			break;
		case 'k':
			if (sscanf(optarg, "%d,%d", &req.cert, &req.privkey) != 2)
				usage();
			break;
		case 'p':
			req.peerids[req.num_peerids++] = atoi(optarg);
			break;
		case 'r':
			req.keyring = atoi(optarg);
			break;
		case 't':
			req.timeout_ms = atoi(optarg);
			break;
		case 'l':
			keylog = optarg;
			break;
		case 'H':
			held = true;
			break;
		default:
			usage();
		}
	}
	if (req.role == TLSHD_ROLE_SERVER && !auth_set)
		req.auth = TLSHD_AUTH_X509;

	tlshd_log_open(TLSHD_LOG_STDERR);
	if (config ? tlshd_config_load(config, &cfg) < 0 :
		     !(cfg = tlshd_config_new_default()))
		return 2;
	held = held && tlshd_keyholder_needed(cfg);
	if (held && start_keyholder(cfg, &kh, &keys, &signer) < 0) {
		printf("init=failed\n");
		return 2;
	}
	if (tlshd_tls_init(&ctx, cfg, held ? &keys : NULL) < 0) {
		printf("init=failed\n");
		return 2;
	}
	fd = req.role == TLSHD_ROLE_CLIENT ? tcp_connect(argv[2], argv[3]) :
					     tcp_accept_one(argv[2]);
	if (fd < 0) {
		printf("connect=failed: %s\n", strerror(errno));
		tlshd_tls_done(&ctx);
		tlshd_config_free(cfg);
		return 2;
	}
	req.sockfd = fd;
	tlshd_tls_run(&ctx, &req, TLSHD_TLS_NO_KTLS, &out);

	printf("status=%d\nerrno=%s\nreason=%s\ncipher=%s\n", out.result.status,
	       out.result.status ? tlshd_errno_name(out.result.status) : "0", out.reason,
	       out.cipher);
	for (unsigned int i = 0; i < out.result.num_remote_auth; i++)
		printf("remote_auth=%u\n", (unsigned int)out.result.remote_auth[i]);
	printf("identity=%s\n", out.identity);
	if (!out.result.status && keylog) {
		gnutls_mac_algorithm_t mac = strstr(out.cipher, "SHA384") ? GNUTLS_MAC_SHA384 :
									  GNUTLS_MAC_SHA256;
		bool client = req.role == TLSHD_ROLE_CLIENT;

		/* A peer may log a secret only after it has processed our
		 * last flight (OpenSSL logs the client's once it reads our
		 * Finished): give it a moment. */
		for (int i = 0; i < 40 && !(keylog_has(keylog, "CLIENT_TRAFFIC_SECRET_0") &&
					    keylog_has(keylog, "SERVER_TRAFFIC_SECRET_0")); i++)
			usleep(50000);
		bool c_ok = keylog_matches(keylog, "CLIENT_TRAFFIC_SECRET_0", mac,
					   client ? &out.tx : &out.rx);
		bool s_ok = keylog_matches(keylog, "SERVER_TRAFFIC_SECRET_0", mac,
					   client ? &out.rx : &out.tx);

		keylog_ok = c_ok && s_ok;
		printf("keylog=%s\n", keylog_ok ? "match" :
		       c_ok ? "MISMATCH(server direction)" :
		       s_ok ? "MISMATCH(client direction)" : "MISMATCH(both)");
	}
	fflush(stdout);
	tlshd_ktls_wipe(&out.tx);
	tlshd_ktls_wipe(&out.rx);
	close(fd);
	tlshd_tls_done(&ctx);
	tlshd_config_free(cfg);
	if (signer.fd >= 0)
		close(signer.fd);
	tlshd_keyholder_release(&kh);
	return out.result.status == 0 && keylog_ok ? 0 : 1;
}
