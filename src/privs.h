/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Privilege reduction for workers. A worker parses bytes from the
 * network; once the kernel has handed it a request it keeps only what it
 * still needs: CAP_NET_ADMIN for DONE.
 */
#pragma once

/*
 * Drops every capability but CAP_NET_ADMIN (effective, permitted,
 * inheritable and bounding sets), sets no_new_privs, and makes the
 * process non-dumpable so its keys cannot be read through ptrace or a
 * core file. Returns 0 or a negative errno; on failure the caller must
 * not go on with the request's data.
 */
int tlshd_privs_drop(void);
