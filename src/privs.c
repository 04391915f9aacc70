// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Capability handling with the raw capset(2) interface (no libcap).
 */
#include "build-config.h"

#include <errno.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "privs.h"

/* Highest capability this kernel knows, from /proc or by probing. */
static int privs_last_cap(void)
{
	int cap = CAP_LAST_CAP;

	while (prctl(PR_CAPBSET_READ, cap + 1, 0, 0, 0) >= 0)
		cap++;
	return cap;
}

int tlshd_privs_drop(void)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2] = { { 0 } };
	int last = privs_last_cap();

	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		return -errno;
	/* Shrinking the bounding set needs CAP_SETPCAP, so it goes first.
	 * Without CAP_SETPCAP (already unprivileged) EPERM is expected. */
	for (int cap = 0; cap <= last; cap++) {
		if (cap == CAP_NET_ADMIN)
			continue;
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL &&
		    errno != EPERM)
			return -errno;
	}
	data[CAP_TO_INDEX(CAP_NET_ADMIN)].effective = CAP_TO_MASK(CAP_NET_ADMIN);
	data[CAP_TO_INDEX(CAP_NET_ADMIN)].permitted = CAP_TO_MASK(CAP_NET_ADMIN);
	if (syscall(SYS_capset, &hdr, data) < 0) {
		/* Not holding CAP_NET_ADMIN at all: drop everything. */
		data[CAP_TO_INDEX(CAP_NET_ADMIN)].effective = 0;
		data[CAP_TO_INDEX(CAP_NET_ADMIN)].permitted = 0;
		if (syscall(SYS_capset, &hdr, data) < 0)
			return -errno;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
	return 0;
}
