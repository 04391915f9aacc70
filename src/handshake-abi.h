/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The kernel's "handshake" generic netlink family, version 1.
 *
 * Debian 12's linux-libc-dev predates <linux/handshake.h>, and newer
 * kernels keep adding attributes, so the numbers the daemon relies on are
 * spelled out here with a TLSHD_ prefix that cannot clash with a system
 * header. They are kernel ABI (Documentation/netlink/specs/handshake.yaml):
 * numbers are only ever added, never reused.
 */
#pragma once

#define TLSHD_HS_FAMILY_NAME		"handshake"
#define TLSHD_HS_MCGRP_TLSHD		"tlshd"

enum {
	TLSHD_HS_CMD_READY		= 1,
	TLSHD_HS_CMD_ACCEPT		= 2,
	TLSHD_HS_CMD_DONE		= 3,
};

enum {
	TLSHD_HS_HANDLER_CLASS_TLSHD	= 1,
};

/* HANDSHAKE_A_ACCEPT_MESSAGE_TYPE values */
enum {
	TLSHD_HS_MSG_CLIENTHELLO	= 1,
	TLSHD_HS_MSG_SERVERHELLO	= 2,
};

/* HANDSHAKE_A_ACCEPT_AUTH_MODE values */
enum {
	TLSHD_HS_AUTH_UNAUTH		= 1,
	TLSHD_HS_AUTH_PSK		= 2,
	TLSHD_HS_AUTH_X509		= 3,
};

/* Attributes of the nested "x509" set (inside ACCEPT CERTIFICATE) */
enum {
	TLSHD_HS_A_X509_CERT		= 1,	/* s32 key serial, DER */
	TLSHD_HS_A_X509_PRIVKEY		= 2,	/* s32 key serial, DER */
};

/* ACCEPT request and reply attributes */
enum {
	TLSHD_HS_A_ACCEPT_SOCKFD	= 1,	/* s32 */
	TLSHD_HS_A_ACCEPT_HANDLER_CLASS	= 2,	/* u32, request and READY only */
	TLSHD_HS_A_ACCEPT_MESSAGE_TYPE	= 3,	/* u32 */
	TLSHD_HS_A_ACCEPT_TIMEOUT	= 4,	/* u32, milliseconds */
	TLSHD_HS_A_ACCEPT_AUTH_MODE	= 5,	/* u32 */
	TLSHD_HS_A_ACCEPT_PEER_IDENTITY	= 6,	/* u32 key serial, multi-attr */
	TLSHD_HS_A_ACCEPT_CERTIFICATE	= 7,	/* nest of x509 */
	TLSHD_HS_A_ACCEPT_PEERNAME	= 8,	/* NUL-terminated string */
	TLSHD_HS_A_ACCEPT_KEYRING	= 9,	/* u32 keyring serial, 6.17+ */
};

/* DONE request attributes. The kernel validates DONE strictly: an
 * attribute it does not know makes it reject the whole message. */
enum {
	TLSHD_HS_A_DONE_STATUS		= 1,	/* u32, positive errno */
	TLSHD_HS_A_DONE_SOCKFD		= 2,	/* s32 */
	TLSHD_HS_A_DONE_REMOTE_AUTH	= 3,	/* u32 key serial, multi-attr */
};
