// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit test of privs.c: after tlshd_privs_drop() a worker holds at most
 * CAP_NET_ADMIN, cannot regain privileges, and is not dumpable.
 */
#include "build-config.h"

#include <linux/capability.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

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
	unsigned long long net_admin = 1ULL << CAP_NET_ADMIN;
	bool was_root = geteuid() == 0;

	ok(tlshd_privs_drop() == 0, "privileges dropped");
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
	ok(tlshd_privs_drop() == 0, "dropping again, already minimal, succeeds");
	if (was_root)
		is_int(status_hex("CapEff:"), net_admin, "CAP_NET_ADMIN still held");
	if (was_root) {
		char path[] = "/tmp/tlshd-test-privs-XXXXXX";
		int fd = mkstemp(path);

		ok(fd >= 0 && fchown(fd, 65534, 65534) < 0,
		   "a dropped capability (CAP_CHOWN) is really gone");
		unlink(path);
	}
	return tap_done();
}
