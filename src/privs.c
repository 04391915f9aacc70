// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Capability handling with the raw capset(2) interface (no libcap).
 */
#include "build-config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
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

/* Whether the process holds nothing beyond CAP_NET_ADMIN already, as
 * under tlshd.service's CapabilityBoundingSet: then there is nothing to
 * drop, and capset(2) can stay forbidden by the unit's syscall filter. */
static bool privs_minimal(int last)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2] = { { 0 } };
	const uint32_t keep = CAP_TO_MASK(CAP_NET_ADMIN);

	if (syscall(SYS_capget, &hdr, data) < 0)
		return false;
	if ((data[0].permitted & ~keep) || data[1].permitted ||
	    data[0].inheritable || data[1].inheritable)
		return false;
	for (int cap = 0; cap <= last; cap++)
		if (cap != CAP_NET_ADMIN && prctl(PR_CAPBSET_READ, cap, 0, 0, 0) == 1)
			return false;
	return true;
}

int tlshd_privs_drop(void)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2] = { { 0 } };
	int last = privs_last_cap();

	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		return -errno;
	if (privs_minimal(last))
		goto no_new_privs;
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
no_new_privs:
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
	return 0;
}
