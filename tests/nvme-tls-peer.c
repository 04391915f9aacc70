// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * nvme-tls-peer: a userspace NVMe/TCP host that takes only small TLS
 * records (RFC 8449), for the VM test of the daemon's record size limit.
 *
 *   nvme-tls-peer [-m BYTES] [-t SECONDS] HOST PORT HOSTNQN SUBNQN KEYFILE
 *
 * Connects to an NVMe/TCP target (nvmet) on a TLS port, does a TLS 1.3
 * handshake with the retained PSK "NVMe0R01 HOSTNQN SUBNQN" (the 32 bytes
 * of KEYFILE, as in the target's .nvme keyring) while asking for records
 * of at most BYTES (default 64) of plaintext: GnuTLS sends
 * record_size_limit BYTES + 1.  The target's handshake goes to tlshd,
 * which must then limit kTLS on the target's socket.  Sends an ICReq PDU
 * and reads the target's ICResp, which kTLS writes.
 *
 * The bytes on the wire pass through our pull function, which notes every
 * TLS record header: a protected record (type 23) may carry at most
 * BYTES + 1 (content type) + 16 (AEAD tag) bytes.  Output, one line each:
 *   handshake: <suite>, record_size_limit <sent> sent, <target's> received
 *   records: handshake <type>/<length> ...; then <type>/<length> ...
 *   icresp: <bytes> bytes ... (or the error)
 *   verdict: ok|oversize|error: <why>
 * Exit status 0 when the ICResp arrived intact in records within the
 * limit, 2 when a record from the target was larger (or GnuTLS refused
 * one as a record overflow), 1 on any other failure.
 */
#include "build-config.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>

#define PEER_PRIORITY	"NORMAL:-VERS-ALL:+VERS-TLS1.3:+PSK:+ECDHE-PSK:+DHE-PSK:" \
			"-CIPHER-ALL:+AES-128-GCM:%ALLOW_SMALL_RECORDS"
#define TAG_LEN		16	/* AES-128-GCM */
#define REC_APPDATA	23
#define EXT_RECORD_SIZE_LIMIT	28
#define PDU_LEN		128	/* ICReq and ICResp */
#define PDU_ICREQ	0x00
#define PDU_ICRESP	0x01
#define MAX_RECORDS	256

enum { EXIT_OK = 0, EXIT_ERROR = 1, EXIT_OVERSIZE = 2 };

struct record {
	unsigned char type;
	unsigned int len;
};

/* The byte stream from the target, cut into TLS records. */
struct wire {
	int fd;
	unsigned char hdr[5];
	size_t hdr_len;		/* header bytes of the next record seen so far */
	size_t body_left;	/* bytes of the current record still to come */
	size_t n;		/* records seen (the first MAX_RECORDS kept) */
	size_t n_handshake;	/* of them, before the handshake was done */
	struct record rec[MAX_RECORDS];
	int target_limit;	/* the target's record_size_limit, -1: none */
	time_t deadline;	/* for the whole exchange */
};

/* GnuTLS asks to be called again (it also says GNUTLS_E_AGAIN on a
 * blocking socket, e.g. with a handshake message in several records):
 * until the deadline. */
static bool again(const struct wire *w, int r)
{
	return (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED) && time(NULL) < w->deadline;
}

static void wire_header(struct wire *w)
{
	unsigned int len = (w->hdr[3] << 8) | w->hdr[4];

	if (w->n < MAX_RECORDS)
		w->rec[w->n] = (struct record){ .type = w->hdr[0], .len = len };
	w->n++;
	w->body_left = len;
	w->hdr_len = 0;
}

static void wire_feed(struct wire *w, const unsigned char *p, size_t len)
{
	while (len) {
		size_t k;

		if (w->body_left) {
			k = len < w->body_left ? len : w->body_left;
			w->body_left -= k;
		} else {
			k = 1;
			w->hdr[w->hdr_len++] = *p;
			if (w->hdr_len == sizeof(w->hdr))
				wire_header(w);
		}
		p += k;
		len -= k;
	}
}

static ssize_t wire_pull(gnutls_transport_ptr_t ptr, void *buf, size_t len)
{
	struct wire *w = ptr;
	ssize_t r = recv(w->fd, buf, len, 0);

	if (r > 0)
		wire_feed(w, buf, r);
	return r;
}

static ssize_t wire_push(gnutls_transport_ptr_t ptr, const void *buf, size_t len)
{
	struct wire *w = ptr;

	return send(w->fd, buf, len, MSG_NOSIGNAL);
}

static int wire_pull_timeout(gnutls_transport_ptr_t ptr, unsigned int ms)
{
	struct wire *w = ptr;
	struct pollfd pfd = { .fd = w->fd, .events = POLLIN };

	return poll(&pfd, 1, ms == GNUTLS_INDEFINITE_TIMEOUT ? -1 : (int)ms);
}

static int tcp_connect(const char *host, const char *port)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai;
	struct timeval tv = { .tv_sec = 1 };
	int fd;

	if (getaddrinfo(host, port, &hints, &ai) != 0)
		return -1;
	fd = socket(ai->ai_family, SOCK_STREAM, 0);
	/* Never wait for the target forever: a second at a time, up to the
	 * deadline (again()). */
	if (fd >= 0 && (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
			setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0 ||
			connect(fd, ai->ai_addr, ai->ai_addrlen) < 0)) {
		close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	return fd;
}

static int read_key(const char *path, unsigned char *key, size_t size)
{
	FILE *f = fopen(path, "rb");
	size_t n;

	if (!f)
		return -1;
	n = fread(key, 1, size, f);
	/* Exactly @size bytes: no more in the file. */
	if (n == size && fgetc(f) != EOF)
		n = 0;
	fclose(f);
	return n == size ? 0 : -1;
}

static int ext_record_limit(void *ctx, unsigned int tls_id, const unsigned char *data,
			    unsigned int size)
{
	struct wire *w = ctx;

	if (tls_id == EXT_RECORD_SIZE_LIMIT && size == 2)
		w->target_limit = (data[0] << 8) | data[1];
	return 0;
}

/* The target's EncryptedExtensions: did it take our record_size_limit
 * (a TLS 1.3 server answers with its own)? */
static int hook_ee(gnutls_session_t s, unsigned int htype, unsigned int when,
		   unsigned int incoming, const gnutls_datum_t *msg)
{
	if (incoming && msg && msg->size)
		gnutls_ext_raw_parse(gnutls_session_get_ptr(s), ext_record_limit, msg, 0);
	return 0;
}

/* A client session over @w with the PSK "NVMe0R01 HOSTNQN SUBNQN". */
static int session_open(gnutls_session_t *ret, struct wire *w, gnutls_psk_client_credentials_t *cc,
			const char *identity, unsigned char *key, size_t max_recv,
			int seconds)
{
	gnutls_datum_t k = { key, 32 };
	gnutls_session_t s;
	int r;

	if ((r = gnutls_init(&s, GNUTLS_CLIENT)) < 0)
		return r;
	*ret = s;
	gnutls_session_set_ptr(s, w);
	gnutls_transport_set_ptr(s, w);
	gnutls_transport_set_pull_function(s, wire_pull);
	gnutls_transport_set_push_function(s, wire_push);
	gnutls_transport_set_pull_timeout_function(s, wire_pull_timeout);
	gnutls_handshake_set_timeout(s, seconds * 1000);
	gnutls_handshake_set_hook_function(s, GNUTLS_HANDSHAKE_ENCRYPTED_EXTENSIONS,
					   GNUTLS_HOOK_POST, hook_ee);
	if ((r = gnutls_priority_set_direct(s, PEER_PRIORITY, NULL)) < 0 ||
	    (r = gnutls_record_set_max_recv_size(s, max_recv)) < 0 ||
	    (r = gnutls_psk_allocate_client_credentials(cc)) < 0 ||
	    (r = gnutls_psk_set_client_credentials(*cc, identity, &k, GNUTLS_PSK_KEY_RAW)) < 0)
		return r;
	return gnutls_credentials_set(s, GNUTLS_CRD_PSK, *cc);
}

static void put_le32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = v >> (8 * i);
}

static uint32_t get_le32(const unsigned char *p)
{
	return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
}

/* NVMe/TCP ICReq: common header (type, flags, hlen, pdo, plen), then
 * pfv 0 (1.0), hpda 0, no digests, maxr2t 0; the rest reserved. */
static void icreq_build(unsigned char *pdu)
{
	memset(pdu, 0, PDU_LEN);
	pdu[0] = PDU_ICREQ;
	pdu[2] = PDU_LEN;
	put_le32(pdu + 4, PDU_LEN);
}

static int send_all(gnutls_session_t s, const unsigned char *p, size_t len)
{
	while (len) {
		ssize_t r = gnutls_record_send(s, p, len);

		if (again(gnutls_session_get_ptr(s), r))
			continue;
		if (r < 0)
			return r;
		p += r;
		len -= r;
	}
	return 0;
}

static int recv_all(gnutls_session_t s, unsigned char *p, size_t len)
{
	while (len) {
		ssize_t r = gnutls_record_recv(s, p, len);

		if (again(gnutls_session_get_ptr(s), r))
			continue;
		if (r == 0)
			return GNUTLS_E_PREMATURE_TERMINATION;
		if (r < 0)
			return r;
		p += r;
		len -= r;
	}
	return 0;
}

/* Checks the ICResp and prints it; -1 if it is not one. */
static int icresp_check(const unsigned char *pdu)
{
	if (pdu[0] != PDU_ICRESP || pdu[2] != PDU_LEN || get_le32(pdu + 4) != PDU_LEN) {
		printf("icresp: not an ICResp: type 0x%02x hlen %u plen %u\n", pdu[0], pdu[2],
		       get_le32(pdu + 4));
		return -1;
	}
	printf("icresp: %u bytes: pfv %u cpda %u digest 0x%02x maxdata %u\n", PDU_LEN,
	       pdu[8] | pdu[9] << 8, pdu[10], pdu[11], get_le32(pdu + 12));
	return 0;
}

static void print_records(const struct wire *w)
{
	size_t kept = w->n < MAX_RECORDS ? w->n : MAX_RECORDS;

	printf("records: handshake");
	for (size_t i = 0; i < kept; i++)
		printf("%s %u/%u", i == w->n_handshake ? "; then" : "", w->rec[i].type,
		       w->rec[i].len);
	printf("%s%s\n", w->n_handshake >= kept ? "; then none" : "",
	       w->n > kept ? " ..." : "");
}

/* Protected records longer than @max, and the longest one. */
static size_t count_over(const struct wire *w, unsigned int max, unsigned int *longest)
{
	size_t kept = w->n < MAX_RECORDS ? w->n : MAX_RECORDS, over = 0;

	*longest = 0;
	for (size_t i = 0; i < kept; i++) {
		if (w->rec[i].type != REC_APPDATA)
			continue;
		if (w->rec[i].len > *longest)
			*longest = w->rec[i].len;
		over += w->rec[i].len > max;
	}
	return over;
}

/* The ICReq out, the ICResp in; a GnuTLS error or -1 for a bad ICResp. */
static int exchange(gnutls_session_t s)
{
	unsigned char pdu[PDU_LEN];
	int r;

	icreq_build(pdu);
	if ((r = send_all(s, pdu, sizeof(pdu))) < 0) {
		printf("icresp: none: sending the ICReq failed: %s\n", gnutls_strerror(r));
		return r;
	}
	if ((r = recv_all(s, pdu, sizeof(pdu))) < 0) {
		printf("icresp: none: %s\n", gnutls_strerror(r));
		return r;
	}
	return icresp_check(pdu);
}

static int verdict(const struct wire *w, int r, size_t max_recv)
{
	unsigned int max = max_recv + 1 + TAG_LEN, longest;
	size_t over = count_over(w, max, &longest);

	if (over || r == GNUTLS_E_RECORD_OVERFLOW) {
		printf("verdict: oversize: %zu protected record(s) over %u bytes, the longest %u%s\n",
		       over, max, longest, r == GNUTLS_E_RECORD_OVERFLOW ?
		       " (GnuTLS: record overflow)" : "");
		return EXIT_OVERSIZE;
	}
	if (r) {
		printf("verdict: error: no valid ICResp\n");
		return EXIT_ERROR;
	}
	printf("verdict: ok: ICResp in %zu record(s), every protected record within %u bytes "
	       "(the longest %u)\n", w->n - w->n_handshake, max, longest);
	return EXIT_OK;
}

/* Handshake, then the ICReq/ICResp exchange; the exit status. */
static int run(gnutls_session_t s, struct wire *w, size_t max_recv)
{
	int r;

	do {
		r = gnutls_handshake(s);
	} while (again(w, r));
	w->n_handshake = w->n;
	if (r < 0) {
		printf("handshake: failed: %s\n", gnutls_strerror(r));
		print_records(w);
		printf("verdict: error: the handshake failed\n");
		return EXIT_ERROR;
	}
	printf("handshake: %s, record_size_limit %zu sent, ", gnutls_ciphersuite_get(s),
	       max_recv + 1);
	if (w->target_limit < 0)
		printf("none received\n");
	else
		printf("%d received\n", w->target_limit);
	r = exchange(s);
	print_records(w);
	return verdict(w, r, max_recv);
}

static void __attribute__((noreturn)) usage(void)
{
	fprintf(stderr, "usage: nvme-tls-peer [-m BYTES] [-t SECONDS] HOST PORT HOSTNQN SUBNQN "
		"KEYFILE\n");
	exit(EXIT_ERROR);
}

int main(int argc, char **argv)
{
	gnutls_psk_client_credentials_t cc = NULL;
	struct wire w = { .fd = -1, .target_limit = -1 };
	gnutls_session_t s = NULL;
	unsigned char key[32];
	size_t max_recv = 64;
	int c, r, seconds = 10;
	char *identity;

	while ((c = getopt(argc, argv, "m:t:")) != -1) {
		if (c == 'm')
			max_recv = strtoul(optarg, NULL, 10);
		else if (c == 't')
			seconds = atoi(optarg);
		else
			usage();
	}
	if (argc - optind != 5 || seconds <= 0)
		usage();
	if (read_key(argv[optind + 4], key, sizeof(key)) < 0) {
		printf("verdict: error: %s is not a 32-byte key\n", argv[optind + 4]);
		return EXIT_ERROR;
	}
	if (asprintf(&identity, "NVMe0R01 %s %s", argv[optind + 2], argv[optind + 3]) < 0)
		return EXIT_ERROR;
	w.deadline = time(NULL) + seconds;
	w.fd = tcp_connect(argv[optind], argv[optind + 1]);
	if (w.fd < 0) {
		printf("verdict: error: cannot connect to %s:%s: %s\n", argv[optind],
		       argv[optind + 1], strerror(errno));
		r = EXIT_ERROR;
	} else if ((r = session_open(&s, &w, &cc, identity, key, max_recv, seconds)) < 0) {
		printf("verdict: error: GnuTLS session setup: %s\n", gnutls_strerror(r));
		r = EXIT_ERROR;
	} else {
		r = run(s, &w, max_recv);
	}
	fflush(stdout);
	if (s)
		gnutls_deinit(s);
	if (cc)
		gnutls_psk_free_client_credentials(cc);
	if (w.fd >= 0)
		close(w.fd);
	free(identity);
	return r;
}
