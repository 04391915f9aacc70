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

/* Whether the process holds no capability already, nor could regain one
 * (its bounding set is empty): then capset(2) is not needed. */
static bool privs_minimal(int last)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2] = { { 0 } };

	if (syscall(SYS_capget, &hdr, data) < 0)
		return false;
	if (data[0].permitted || data[1].permitted || data[0].inheritable || data[1].inheritable)
		return false;
	for (int cap = 0; cap <= last; cap++)
		if (prctl(PR_CAPBSET_READ, cap, 0, 0, 0) == 1)
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
 * CAP_SETPCAP (the shipped unit's bounding set is already the four
 * capabilities the daemon uses) every drop would fail with EPERM: one
 * capget(2) instead of a prctl(2) per capability in every worker. */
static int privs_drop_bounding(int last)
{
	if (!privs_setpcap())
		return 0;
	for (int cap = 0; cap <= last; cap++)
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL &&
		    errno != EPERM)
			return -errno;
	return 0;
}

/* Root to @ids (no supplementary groups), which clears the effective
 * and permitted sets of a root process. */
static int privs_switch_ids(const struct tlshd_privs_ids *ids)
{
	if (!ids || geteuid() != 0)
		return 0;
	if (setgroups(0, NULL) < 0 || setresgid(ids->gid, ids->gid, ids->gid) < 0 ||
	    setresuid(ids->uid, ids->uid, ids->uid) < 0)
		return -errno;
	return 0;
}

/* Effective, permitted and inheritable: empty (also for a process that
 * was not root, whose sets the uid switch left alone). */
static int privs_clear(void)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2] = { { 0 } };

	return syscall(SYS_capset, &hdr, data) < 0 ? -errno : 0;
}

int tlshd_privs_drop_all(const struct tlshd_privs_ids *ids)
{
	int last = privs_last_cap(), r;

	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		return -errno;
	if (!(ids && geteuid() == 0) && privs_minimal(last))
		goto no_new_privs;
	r = privs_drop_bounding(last);
	if (!r)
		r = privs_switch_ids(ids);
	if (!r)
		r = privs_clear();
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
