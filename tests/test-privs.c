// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit test of privs.c: after tlshd_privs_drop_all() a worker runs as an
 * unprivileged uid with no capability, cannot regain privileges, and is
 * not dumpable.
 */
#include "build-config.h"

#include <linux/capability.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <grp.h>

#include "privs.h"
#include "tap.h"

static unsigned long long status_hex(const char *field)
{
	unsigned long long v = ~0ULL;
	char line[256];
	FILE *f = fopen("/proc/self/status", "r");

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, field, strlen(field)))
			sscanf(line + strlen(field), "%llx", &v);
	if (f)
		fclose(f);
	return v;
}

/* In a child: root without CAP_SETPCAP, as under the shipped unit (its
 * bounding set holds CAP_NET_ADMIN, CAP_SETUID, CAP_SETGID and CAP_KILL):
 * the bounding set cannot shrink, and the drop must still succeed. */
static void test_without_setpcap(const struct tlshd_privs_ids *ids)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2] = { { 0 } };
	unsigned long long bnd = status_hex("CapBnd:");
	int status = -1;
	pid_t pid = fork();

	if (pid == 0) {
		int fail = 0;

		data[0].effective = data[0].permitted = CAP_TO_MASK(CAP_NET_ADMIN) |
			CAP_TO_MASK(CAP_SETUID) | CAP_TO_MASK(CAP_SETGID) | CAP_TO_MASK(CAP_KILL);
		if (syscall(SYS_capset, &hdr, data) < 0)
			_exit(10);
		fail |= tlshd_privs_drop_all(ids) != 0;
		fail |= (getuid() != 65534) << 1;
		fail |= (status_hex("CapEff:") != 0) << 2;
		fail |= (status_hex("CapPrm:") != 0) << 3;
		fail |= (status_hex("CapBnd:") != bnd) << 4;
		fail |= (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1) << 5;
		_exit(fail);
	}
	waitpid(pid, &status, 0);
	ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	   "without CAP_SETPCAP: uid 65534, no capability, bounding set as it was, "
	   "no_new_privs (child status %#x)", status);
}

int main(void)
{
	const struct tlshd_privs_ids ids = { .uid = 65534, .gid = 65534 };
	bool was_root = geteuid() == 0;
	gid_t groups[4];

	if (was_root)
		test_without_setpcap(&ids);
	ok(tlshd_privs_drop_all(&ids) == 0, "privileges dropped");
	if (was_root) {
		uid_t r, e, s;

		getresuid(&r, &e, &s);
		ok(r == 65534 && e == 65534 && s == 65534, "root became uid 65534 (%u/%u/%u)",
		   (unsigned int)r, (unsigned int)e, (unsigned int)s);
		is_int(getgid(), 65534, "gid 65534");
		is_int(getgroups(4, groups), 0, "no supplementary groups");
		ok(setresuid(0, 0, 0) < 0, "and cannot become root again");
	}
	is_int(status_hex("CapEff:"), 0, "effective set: empty");
	is_int(status_hex("CapPrm:"), 0, "permitted set: empty");
	is_int(status_hex("CapInh:"), 0, "inheritable set: empty");
	if (was_root)
		is_int(status_hex("CapBnd:"), 0, "bounding set: empty (root had CAP_SETPCAP)");
	is_int(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0), 1, "no_new_privs set");
	is_int(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 0, "not dumpable");
	/* A second call finds nothing left to drop (as under the unit's
	 * bounding set) and must not need capset(2) to succeed. */
	ok(tlshd_privs_drop_all(&ids) == 0, "dropping again, already minimal, succeeds");
	is_int(status_hex("CapEff:"), 0, "and holds nothing");
	if (was_root) {
		char path[] = "/tmp/tlshd-test-privs-XXXXXX";
		int fd = mkstemp(path);

		ok(fd >= 0 && fchown(fd, 0, 0) < 0,
		   "a dropped capability (CAP_CHOWN) is really gone");
		unlink(path);
	}
	return tap_done();
}
