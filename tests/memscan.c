// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * memscan: looks for private keys in a running process's memory. The VM
 * suite runs it against the daemon's processes in the middle of an X.509
 * handshake (tests/vm/guest/scenarios.sh, "keyless workers").
 *
 *   memscan PID KEYFILE...
 *
 * For each PEM private key it derives the secret numbers (ECDSA and
 * EdDSA: the private value; RSA: d, p and q), each as written (big-endian)
 * and byte-reversed (as GMP and nettle keep them in memory on a
 * little-endian machine), and takes the first line of the file's base64
 * text (a copy of the file itself). It stops PID (SIGSTOP), reads every readable
 * mapping through /proc/PID/mem, and lets it go on (SIGCONT). One line
 * per key: "KEYFILE: found NAME ORDER at ADDR in MAPPING" or
 * "KEYFILE: absent". Exit status 0 when no key was found, 1 when one
 * was, 2 when the scan could not be made, 3 when PID had ended (or was a
 * zombie, with no memory left to search) before it could be searched.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#define MAX_NEEDLES	9
#define CHUNK		(1 << 20)
#define MIN_NEEDLE	16

struct needle {
	char name[32];
	unsigned char *bytes;
	size_t len;
};

struct key {
	const char *file;
	struct needle n[MAX_NEEDLES];
	unsigned int count;
	bool found;
};

/* @d without leading zeros, as written and reversed. */
static void add_number(struct key *k, const char *name, const gnutls_datum_t *d)
{
	size_t skip = 0;

	while (skip < d->size && !d->data[skip])
		skip++;
	if (d->size - skip < MIN_NEEDLE || k->count + 2 > MAX_NEEDLES)
		return;
	for (int rev = 0; rev < 2; rev++) {
		struct needle *n = &k->n[k->count++];

		n->len = d->size - skip;
		n->bytes = malloc(n->len);
		if (!n->bytes)
			exit(2);
		for (size_t i = 0; i < n->len; i++)
			n->bytes[i] = rev ? d->data[d->size - 1 - i] : d->data[skip + i];
		snprintf(n->name, sizeof(n->name), "%s %s", name, rev ? "reversed" : "as written");
	}
}

/* The first base64 line of the PEM text, as a needle of its own. */
static void add_pem_line(struct key *k, const gnutls_datum_t *pem)
{
	const char *p = memmem(pem->data, pem->size, "-----\n", 6), *end;
	struct needle *n;

	if (!p || k->count >= MAX_NEEDLES)
		return;
	p += 6;
	end = memchr(p, '\n', pem->size - (p - (const char *)pem->data));
	if (!end || end - p < MIN_NEEDLE)
		return;
	n = &k->n[k->count++];
	n->len = end - p;
	n->bytes = malloc(n->len);
	if (!n->bytes)
		exit(2);
	memcpy(n->bytes, p, n->len);
	snprintf(n->name, sizeof(n->name), "PEM text");
}

static int load_key(struct key *k, const char *file)
{
	gnutls_datum_t pem, a = { 0 }, b = { 0 }, c = { 0 }, d = { 0 }, e = { 0 }, f = { 0 };
	gnutls_x509_privkey_t x;
	gnutls_ecc_curve_t curve;
	int pk, r;

	k->file = file;
	if (gnutls_load_file(file, &pem) < 0) {
		fprintf(stderr, "memscan: cannot read %s\n", file);
		return -1;
	}
	gnutls_x509_privkey_init(&x);
	r = gnutls_x509_privkey_import2(x, &pem, GNUTLS_X509_FMT_PEM, NULL, 0);
	add_pem_line(k, &pem);
	gnutls_free(pem.data);
	if (r < 0) {
		fprintf(stderr, "memscan: %s: %s\n", file, gnutls_strerror(r));
		gnutls_x509_privkey_deinit(x);
		return -1;
	}
	pk = gnutls_x509_privkey_get_pk_algorithm(x);
	if (pk == GNUTLS_PK_RSA || pk == GNUTLS_PK_RSA_PSS) {
		/* n, e, d, p, q, u */
		r = gnutls_x509_privkey_export_rsa_raw2(x, &a, &b, &c, &d, &e, &f, NULL, NULL);
		if (!r) {
			add_number(k, "d", &c);
			add_number(k, "p", &d);
			add_number(k, "q", &e);
		}
	} else {
		/* curve, x, y, k (EdDSA: y empty) */
		r = gnutls_x509_privkey_export_ecc_raw(x, &curve, &a, &b, &c);
		if (!r)
			add_number(k, "private value", &c);
	}
	gnutls_free(a.data);
	gnutls_free(b.data);
	gnutls_free(c.data);
	gnutls_free(d.data);
	gnutls_free(e.data);
	gnutls_free(f.data);
	gnutls_x509_privkey_deinit(x);
	if (r < 0 || !k->count) {
		fprintf(stderr, "memscan: %s: no secret number to look for\n", file);
		return -1;
	}
	return 0;
}

/* Searches one mapping; reports each key's first find. */
static void scan_range(int mem, unsigned long start, unsigned long end, const char *what,
		       struct key *keys, int nkeys, unsigned char *buf, size_t overlap,
		       unsigned long long *total)
{
	size_t kept = 0;

	for (unsigned long at = start; at < end;) {
		size_t want = end - at < CHUNK ? end - at : CHUNK;
		ssize_t n = pread(mem, buf + kept, want, (off_t)at);

		if (n <= 0)
			return;		/* unreadable (guard pages, vvar) */
		*total += n;
		for (int i = 0; i < nkeys; i++) {
			for (unsigned int j = 0; j < keys[i].count && !keys[i].found; j++) {
				const struct needle *nd = &keys[i].n[j];
				unsigned char *hit = memmem(buf, kept + n, nd->bytes, nd->len);

				if (!hit)
					continue;
				keys[i].found = true;
				printf("%s: found %s at 0x%lx in %s\n", keys[i].file, nd->name,
				       at - kept + (unsigned long)(hit - buf), what);
			}
		}
		kept += n;
		if (kept > overlap) {
			memmove(buf, buf + kept - overlap, overlap);
			kept = overlap;
		}
		at += n;
	}
}

#define GONE	(-2)

static bool gone(int err)
{
	return err == ESRCH || err == ENOENT;
}

/* 0 when searched, GONE when PID has no memory left, -1 on other errors. */
static int scan(pid_t pid, struct key *keys, int nkeys)
{
	char path[64], line[512];
	unsigned long long total = 0;
	unsigned int mappings = 0;
	size_t overlap = 0;
	unsigned char *buf;
	FILE *maps;
	int mem;

	for (int i = 0; i < nkeys; i++)
		for (unsigned int j = 0; j < keys[i].count; j++)
			if (keys[i].n[j].len > overlap)
				overlap = keys[i].n[j].len;
	buf = malloc(CHUNK + overlap);
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	maps = fopen(path, "r");
	snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
	mem = open(path, O_RDONLY);
	if (!buf || !maps || mem < 0) {
		int err = errno;

		fprintf(stderr, "memscan: cannot read pid %d: %s\n", (int)pid, strerror(err));
		return gone(err) ? GONE : -1;
	}
	while (fgets(line, sizeof(line), maps)) {
		unsigned long start, end;
		char perms[8], what[256] = "[anonymous]";

		if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %255[^\n]", &start, &end, perms, what) < 3)
			continue;
		if (perms[0] != 'r' || !strcmp(what, "[vvar]") || !strcmp(what, "[vsyscall]"))
			continue;
		mappings++;
		scan_range(mem, start, end, what, keys, nkeys, buf, overlap - 1, &total);
	}
	fclose(maps);
	close(mem);
	free(buf);
	fprintf(stderr, "memscan: pid %d: %llu bytes in %u mappings searched\n", (int)pid, total,
		mappings);
	if (!total)
		fprintf(stderr, "memscan: pid %d: no memory to search (exited?)\n", (int)pid);
	return total ? 0 : GONE;
}

int main(int argc, char **argv)
{
	struct key keys[8] = { 0 };
	int nkeys = argc - 2, r, found = 0;
	pid_t pid;

	if (argc < 3 || nkeys > 8) {
		fprintf(stderr, "usage: memscan PID KEYFILE...\n");
		return 2;
	}
	pid = atoi(argv[1]);
	for (int i = 0; i < nkeys; i++)
		if (load_key(&keys[i], argv[i + 2]) < 0)
			return 2;
	if (kill(pid, SIGSTOP) < 0) {
		int err = errno;

		fprintf(stderr, "memscan: cannot stop pid %d: %s\n", (int)pid, strerror(err));
		return gone(err) ? 3 : 2;
	}
	r = scan(pid, keys, nkeys);
	kill(pid, SIGCONT);
	if (r < 0)
		return r == GONE ? 3 : 2;
	for (int i = 0; i < nkeys; i++) {
		if (!keys[i].found)
			printf("%s: absent\n", keys[i].file);
		found += keys[i].found;
	}
	return found ? 1 : 0;
}
