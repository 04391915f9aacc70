// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests of keyring.c: the /proc/keys scan on captured lines, the check
 * of a client's PSK identity, finding a configured keyring only when root
 * owns it (a user's keyring of the same name is ignored), and the order a
 * server searches for a client's PSK identity: the kernel's keyring, then
 * the configured ones, never the session that started the daemon. The
 * live parts use this machine's kernel keyrings (root needed to give a
 * keyring away).
 */
#include "build-config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <keyutils.h>

#include "keyring.h"
#include "log.h"
#include "tap.h"

/* As a 6.12 kernel prints them (security/keys/proc.c). */
static const char proc_keys[] =
	"05c40fe4 I--Q---     1 perm 1f3f0000     0 65534 keyring   _uid_ses.0: 1\n"
	"1b3a5c11 I--Q---     1 perm 3f010000  1000  1000 keyring   .mykeys: 1\n"
	"0d2ef1a5 I------     1 perm 1f030000     0     0 keyring   .nvme: empty\n"
	"2a01c0de I--Q---     1 perm 3f010000     0     0 keyring   .mykeys: 2\n"
	"312702c5 I--Q---     1 perm 3f010000     0     0 keyring   tlshd: odd name: empty\n"
	"3f000001 I--Q---     1 perm 3f010000     0     0 user      .mykeys: 32\n"
	"3f000002 I--Q---     1 perm 3f010000     0     0 keyring   .mykeys2: empty\n"
	"3f000003 I--Q---     1 perm 3f010000     0     0 keyring   .my: 1\n"
	"zzzzzzzz garbage\n"
	"3f000004 I--Q---     1 perm 3f010000     0     0 keyring   .mykeys";

static void test_scan(void)
{
	struct tlshd_keyring_entry e[4];
	size_t n;

	n = tlshd_keyring_scan(proc_keys, strlen(proc_keys), ".mykeys", e, 4);
	is_int(n, 2, "two keyrings described .mykeys (not the user key, .mykeys2 or .my)");
	ok(n == 2 && e[0].serial == 0x1b3a5c11 && e[0].uid == 1000, "a user's, listed first");
	ok(n == 2 && e[1].serial == 0x2a01c0de && e[1].uid == 0, "then root's");
	n = tlshd_keyring_scan(proc_keys, strlen(proc_keys), ".nvme", e, 4);
	ok(n == 1 && e[0].serial == 0x0d2ef1a5 && e[0].uid == 0, "the kernel's .nvme");
	n = tlshd_keyring_scan(proc_keys, strlen(proc_keys), "tlshd: odd name", e, 4);
	ok(n == 1 && e[0].serial == 0x312702c5, "a description holding ': ' matches whole");
	n = tlshd_keyring_scan(proc_keys, strlen(proc_keys), "tlshd", e, 4);
	is_int(n, 0, "and not by its first word");
	n = tlshd_keyring_scan(proc_keys, strlen(proc_keys), ".mykeys", e, 1);
	is_int(n, 1, "at most @max entries");
	n = tlshd_keyring_scan(proc_keys, 100, ".nvme", e, 4);
	is_int(n, 0, "a text cut mid-line finds nothing beyond the cut");
}

static void test_identity_ok(void)
{
	static const unsigned char nvme[] = "NVMe0R01 nqn.2014-08.org.nvmexpress:uuid:1 nqn.x";
	unsigned char id[TLSHD_PSK_IDENTITY_MAX + 1];

	ok(tlshd_keyring_identity_ok(nvme, sizeof(nvme) - 1), "an NVMe identity is accepted");
	ok(!tlshd_keyring_identity_ok(nvme, 0), "an empty one is not");
	ok(!tlshd_keyring_identity_ok(nvme, sizeof(nvme)), "nor one holding its NUL");
	ok(!tlshd_keyring_identity_ok((const unsigned char *)"a\nb", 3), "nor a newline");
	ok(!tlshd_keyring_identity_ok((const unsigned char *)"a\x7f", 2), "nor DEL");
	ok(!tlshd_keyring_identity_ok((const unsigned char *)"\xc3\xa9", 2), "nor UTF-8");
	memset(id, 'a', sizeof(id));
	ok(tlshd_keyring_identity_ok(id, TLSHD_PSK_IDENTITY_MAX), "1 KiB is accepted");
	ok(!tlshd_keyring_identity_ok(id, sizeof(id)), "a byte more is not");
}

/*
 * The live tests' keyring names carry this process's id: tlshd_keyring_find
 * looks names up in /proc/keys, which shows a root process every root-owned
 * keyring, so a second run at the same time (another build's make check,
 * another user space's on the same machine) would otherwise find ours.
 */
static char planted_name[64], given_name[64], missing_name[64], request_name[64], conf_name[64],
	kernel_name[64];

static void name_keyrings(void)
{
	int pid = (int)getpid();

	snprintf(planted_name, sizeof(planted_name), "tlshd-test-planted-%d", pid);
	snprintf(given_name, sizeof(given_name), "tlshd-test-given-%d", pid);
	snprintf(missing_name, sizeof(missing_name), "tlshd-test-no-such-ring-%d", pid);
	snprintf(request_name, sizeof(request_name), "tlshd-test-request-%d", pid);
	snprintf(conf_name, sizeof(conf_name), "tlshd-test-conf-%d", pid);
	snprintf(kernel_name, sizeof(kernel_name), "tlshd-test-kernel-%d", pid);
}

static key_serial_t ring(const char *name, key_serial_t parent)
{
	return add_key("keyring", name, NULL, 0, parent);
}

static key_serial_t psk(const char *identity, unsigned char fill, key_serial_t where)
{
	unsigned char k[32];

	memset(k, fill, sizeof(k));
	return add_key("user", identity, k, sizeof(k), where);
}

/* Users' keyrings of a configured name, made before and after root's, in
 * random serial order: whichever /proc/keys lists first, root's wins. */
static void test_find_roots_only(void)
{
	key_serial_t planted[3], mine = -1, k;
	bool given = true;

	for (int i = 0; i < 3; i++) {
		planted[i] = ring(planted_name, KEY_SPEC_SESSION_KEYRING);
		if (keyctl_chown(planted[i], 1000 + i, -1) < 0)
			given = false;
		if (i == 1)
			mine = ring(planted_name, KEY_SPEC_SESSION_KEYRING);
	}
	if (!given || mine < 0) {
		ok(true, "# SKIP cannot give keyrings away here (not root?)");
		return;
	}
	is_int(tlshd_keyring_find(planted_name), mine,
	       "a configured name finds root's keyring, never a user's of the same name");
	k = ring(given_name, KEY_SPEC_SESSION_KEYRING);
	keyctl_chown(k, 1000, -1);
	is_int(tlshd_keyring_find(given_name), -ENOKEY,
	       "a name only a user's keyring carries finds nothing");
	is_int(tlshd_keyring_find(missing_name), -ENOKEY, "a missing name: ENOKEY");
}

static void test_search_order(void)
{
	char *names[] = { conf_name, NULL }, where[128] = "";
	key_serial_t req, conf, in_req, in_conf, only_conf, only_session, k;

	req = ring(request_name, KEY_SPEC_SESSION_KEYRING);
	conf = ring(conf_name, KEY_SPEC_SESSION_KEYRING);
	in_req = psk("NVMe0R01 both", 0x11, req);
	in_conf = psk("NVMe0R01 both", 0x22, conf);
	only_conf = psk("NVMe0R01 conf-only", 0x33, conf);
	only_session = psk("NVMe0R01 session-only", 0x44, KEY_SPEC_SESSION_KEYRING);
	if (req < 0 || conf < 0 || in_req < 0 || in_conf < 0 || only_conf < 0 ||
	    only_session < 0) {
		ok(false, "cannot build the test keyrings: %s", strerror(errno));
		return;
	}
	/* What a worker's tlshd_tls_prepare() does while it is root. */
	tlshd_keyring_possess((const char *const *)names);
	k = tlshd_keyring_search("user", "NVMe0R01 both", req, where, sizeof(where));
	is_int(k, in_req, "the keyring the kernel named comes first");
	ok(strstr(where, "request") != NULL, "and the log says so: %s", where);
	k = tlshd_keyring_search("user", "NVMe0R01 conf-only", req, where, sizeof(where));
	is_int(k, only_conf, "then the configured keyrings");
	ok(strstr(where, "tlshd-test-conf") != NULL, "named in the log: %s", where);
	k = tlshd_keyring_search("user", "NVMe0R01 both", 0, where, sizeof(where));
	is_int(k, in_conf, "without a named keyring: the process keyring (empty here), then "
	       "the configured ones");
	k = tlshd_keyring_search("user", "NVMe0R01 session-only", req, where, sizeof(where));
	is_int(k, -ENOKEY, "a key reached only through the daemon's session is never used");
	k = tlshd_keyring_search("user", "NVMe0R01 session-only", 0, where, sizeof(where));
	is_int(k, -ENOKEY, "not even when the kernel named no keyring");
}

/*
 * The kernel links the consumer's keyring into the process keyring of
 * the daemon, which sends ACCEPT; the daemon takes it out again and the
 * request's worker (a child: process keyrings are not inherited) links it
 * into its own, where the search finds it.
 */
static void test_hand_over(void)
{
	char where[128] = "";
	key_serial_t kring, key, *left = NULL;
	long len;
	int status;
	pid_t pid;

	kring = ring(kernel_name, KEY_SPEC_SESSION_KEYRING);
	key = psk("NVMe0R01 handed", 0x55, kring);
	if (kring < 0 || key < 0 || keyctl_link(kring, KEY_SPEC_PROCESS_KEYRING) < 0) {
		ok(false, "cannot build the test keyrings: %s", strerror(errno));
		return;
	}
	is_int(tlshd_keyring_take_accepted(), kring, "the keyring linked at ACCEPT is found");
	len = keyctl_read_alloc(KEY_SPEC_PROCESS_KEYRING, (void **)&left);
	is_int(len, 0, "and unlinked: the daemon possesses none of its keys");
	free(left);
	is_int(tlshd_keyring_take_accepted(), 0, "the next ACCEPT starts from nothing");
	is_int(tlshd_keyring_search("user", "NVMe0R01 handed", 0, where, sizeof(where)), -ENOKEY,
	       "the daemon's search no longer reaches its keys");
	pid = fork();
	if (pid == 0) {
		if (tlshd_keyring_adopt(kring) < 0)
			_exit(1);
		_exit(tlshd_keyring_search("user", "NVMe0R01 handed", 0, where, sizeof(where)) ==
		      key && strstr(where, "the kernel linked") ? 0 : 2);
	}
	waitpid(pid, &status, 0);
	ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	   "a worker that adopts it finds the key as the kernel's (status %d)",
	   WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

/*
 * A spare's job keyring: made by the parent before the fork (several in
 * a row, each surviving the next), linked by the spare while it is root;
 * the spare then leaves root, and the parent links the request's keyring
 * into it at dispatch and lets the job keyring go. The spare reaches the
 * key through it, and only through it: the request's keyring here sits
 * in the parent's thread keyring, which no child inherits.
 */
static void test_job_ring(void)
{
	char where[128] = "", c = 0, name[80], *desc = NULL;
	key_serial_t kring, key, j1, j2;
	int up[2], down[2], status;
	pid_t pid;

	snprintf(name, sizeof(name), "%s-job", kernel_name);
	kring = ring(name, KEY_SPEC_THREAD_KEYRING);
	key = psk("NVMe0R01 for a spare", 0x66, kring);
	j1 = tlshd_keyring_job_new(1);
	j2 = tlshd_keyring_job_new(2);
	if (kring < 0 || key < 0 || pipe(up) < 0 || pipe(down) < 0) {
		ok(false, "cannot build the test keyrings: %s", strerror(errno));
		return;
	}
	ok(j1 > 0 && j2 > 0 && j1 != j2, "two job keyrings in a row (%d, %d)", j1, j2);
	if (keyctl_describe_alloc(j1, &desc) < 0)
		desc = NULL;
	ok(desc && strstr(desc, ";tlshd:job:1"), "the first outlives the making of the second (%s)",
	   desc ? desc : "gone");
	free(desc);
	pid = fork();
	if (pid == 0) {
		int r = tlshd_keyring_adopt(j1);

		(void)!write(up[1], &c, 1);
		(void)!read(down[0], &c, 1);
		if (r < 0)
			_exit(1);
		if (geteuid() == 0 && (setresgid(65534, 65534, 65534) < 0 ||
				       setresuid(65534, 65534, 65534) < 0))
			_exit(3);
		_exit(tlshd_keyring_search("user", "NVMe0R01 for a spare", 0, where,
					   sizeof(where)) == key ? 0 : 2);
	}
	(void)!read(up[0], &c, 1);
	is_int(tlshd_keyring_job_give(j1, kring), 0, "the parent links a keyring into it");
	tlshd_keyring_job_drop(j1);
	tlshd_keyring_job_drop(j2);
	(void)!write(down[1], &c, 1);
	waitpid(pid, &status, 0);
	ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	   "the spare, root left, finds the key through its job keyring (status %d)",
	   WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	pid = fork();
	if (pid == 0)
		_exit(tlshd_keyring_search("user", "NVMe0R01 for a spare", 0, where,
					   sizeof(where)) == -ENOKEY ? 0 : 2);
	waitpid(pid, &status, 0);
	ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	   "another child, without the job keyring, does not (status %d)",
	   WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	close(up[0]);
	close(up[1]);
	close(down[0]);
	close(down[1]);
}

int main(void)
{
	tlshd_log_open(TLSHD_LOG_STDERR);
	test_scan();
	test_identity_ok();
	name_keyrings();
	if (keyctl_join_session_keyring(NULL) < 0) {
		printf("# kernel keyrings unavailable: live checks skipped\n");
		return tap_done();
	}
	test_find_roots_only();
	test_search_order();
	test_hand_over();
	test_job_ring();
	return tap_done();
}
