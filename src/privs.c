// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Capability and uid handling with the raw capset(2) interface (no
 * libcap).
 */
#include "build-config.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdint.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "privs.h"

void tlshd_privs_worker_ids(struct tlshd_privs_ids *ret)
{
	struct passwd *pw = getpwnam(TLSHD_PRIVS_USER);

	ret->uid = pw ? pw->pw_uid : TLSHD_PRIVS_NOBODY;
	ret->gid = pw ? pw->pw_gid : TLSHD_PRIVS_NOBODY;
	/* A "tlshd" account that is root is no drop at all. */
	if (ret->uid == 0 || ret->gid == 0) {
		ret->uid = TLSHD_PRIVS_NOBODY;
		ret->gid = TLSHD_PRIVS_NOBODY;
	}
}

/* Highest capability this kernel knows, from /proc or by probing. */
static int privs_last_cap(void)
{
	int cap = CAP_LAST_CAP;

	while (prctl(PR_CAPBSET_READ, cap + 1, 0, 0, 0) >= 0)
		cap++;
	return cap;
}

/* Whether the process holds nothing beyond CAP_NET_ADMIN already: then
 * there is nothing to drop, and capset(2) is not needed. */
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

/* Whether CAP_SETPCAP is effective, which shrinking the bounding set
 * needs (true if that cannot be read: then it is tried). */
static bool privs_setpcap(void)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2] = { { 0 } };

	if (syscall(SYS_capget, &hdr, data) < 0)
		return true;
	return data[CAP_TO_INDEX(CAP_SETPCAP)].effective & CAP_TO_MASK(CAP_SETPCAP);
}

/* Before the uid switch, which clears the effective set. Without
 * CAP_SETPCAP (the shipped unit's bounding set is already the three
 * capabilities tlshd uses) every drop would fail with EPERM: one
 * capget(2) instead of a prctl(2) per capability in every worker. */
static int privs_drop_bounding(int last, int keep)
{
	if (!privs_setpcap())
		return 0;
	for (int cap = 0; cap <= last; cap++) {
		if (cap == keep)
			continue;
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL &&
		    errno != EPERM)
			return -errno;
	}
	return 0;
}

/* Root to @ids, keeping the permitted capabilities across the switch
 * (the effective set is cleared by it and restored by privs_keep()). */
static int privs_switch_ids(const struct tlshd_privs_ids *ids)
{
	if (!ids || geteuid() != 0)
		return 0;
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		return -errno;
	if (setgroups(0, NULL) < 0 || setresgid(ids->gid, ids->gid, ids->gid) < 0 ||
	    setresuid(ids->uid, ids->uid, ids->uid) < 0)
		return -errno;
	if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
		return -errno;
	return 0;
}

/* Effective and permitted: CAP_NET_ADMIN alone (none if not held, or
 * if !@net_admin). */
static int privs_keep(bool net_admin)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2] = { { 0 } };

	if (!net_admin)
		return syscall(SYS_capset, &hdr, data) < 0 ? -errno : 0;
	data[CAP_TO_INDEX(CAP_NET_ADMIN)].effective = CAP_TO_MASK(CAP_NET_ADMIN);
	data[CAP_TO_INDEX(CAP_NET_ADMIN)].permitted = CAP_TO_MASK(CAP_NET_ADMIN);
	if (syscall(SYS_capset, &hdr, data) == 0)
		return 0;
	data[CAP_TO_INDEX(CAP_NET_ADMIN)].effective = 0;
	data[CAP_TO_INDEX(CAP_NET_ADMIN)].permitted = 0;
	return syscall(SYS_capset, &hdr, data) < 0 ? -errno : 0;
}

static int privs_drop(const struct tlshd_privs_ids *ids, bool net_admin)
{
	int last = privs_last_cap(), r;

	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		return -errno;
	if (net_admin && !(ids && geteuid() == 0) && privs_minimal(last))
		goto no_new_privs;
	r = privs_drop_bounding(last, net_admin ? CAP_NET_ADMIN : -1);
	if (!r)
		r = privs_switch_ids(ids);
	if (!r)
		r = privs_keep(net_admin);
	if (r < 0)
		return r;
	/* The uid switch made the process dumpable again. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		return -errno;
no_new_privs:
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
	return 0;
}

int tlshd_privs_drop(const struct tlshd_privs_ids *ids)
{
	return privs_drop(ids, true);
}

int tlshd_privs_drop_all(const struct tlshd_privs_ids *ids)
{
	return privs_drop(ids, false);
}
