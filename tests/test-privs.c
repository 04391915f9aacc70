// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit test of privs.c: after tlshd_privs_drop() a worker runs as an
 * unprivileged uid with at most CAP_NET_ADMIN, cannot regain privileges,
 * and is not dumpable.
 */
#include "build-config.h"

#include <linux/capability.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
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

int main(void)
{
	const struct tlshd_privs_ids ids = { .uid = 65534, .gid = 65534 };
	unsigned long long net_admin = 1ULL << CAP_NET_ADMIN;
	bool was_root = geteuid() == 0;
	gid_t groups[4];

	ok(tlshd_privs_drop(&ids) == 0, "privileges dropped");
	if (was_root) {
		uid_t r, e, s;

		getresuid(&r, &e, &s);
		ok(r == 65534 && e == 65534 && s == 65534, "root became uid 65534 (%u/%u/%u)",
		   (unsigned int)r, (unsigned int)e, (unsigned int)s);
		is_int(getgid(), 65534, "gid 65534");
		is_int(getgroups(4, groups), 0, "no supplementary groups");
		ok(setresuid(0, 0, 0) < 0, "and cannot become root again");
	}
	ok((status_hex("CapEff:") & ~net_admin) == 0, "effective set: CAP_NET_ADMIN at most");
	ok((status_hex("CapPrm:") & ~net_admin) == 0, "permitted set: CAP_NET_ADMIN at most");
	if (was_root)
		is_int(status_hex("CapEff:"), net_admin, "root keeps CAP_NET_ADMIN for DONE");
	if (was_root)
		is_int(status_hex("CapBnd:"), net_admin, "bounding set: CAP_NET_ADMIN alone");
	is_int(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0), 1, "no_new_privs set");
	is_int(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 0, "not dumpable");
	/* A second call finds nothing left to drop (as under the unit's
	 * bounding set) and must not need capset(2) to succeed. */
	ok(tlshd_privs_drop(&ids) == 0, "dropping again, already minimal, succeeds");
	if (was_root)
		is_int(status_hex("CapEff:"), net_admin, "CAP_NET_ADMIN still held");
	if (was_root) {
		char path[] = "/tmp/tlshd-test-privs-XXXXXX";
		int fd = mkstemp(path);

		ok(fd >= 0 && fchown(fd, 0, 0) < 0,
		   "a dropped capability (CAP_CHOWN) is really gone");
		unlink(path);
	}
	return tap_done();
}
