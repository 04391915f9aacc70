/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The middle of the handshake engine, for tls.c only: what each role
 * and auth mode adds to a session (credentials, names, checks). Each
 * function returns 0 or a failure recorded with tlshd_tls_fail().
 */
#pragma once

#include <stdbool.h>

#include "tls-session.h"

/* tls-client.c: the kernel sent CLIENTHELLO. */
int tlshd_client_psk_open(struct tlshd_handshake *hs);
int tlshd_client_x509_open(struct tlshd_handshake *hs);

/* tls-server.c: the kernel sent SERVERHELLO. */
int tlshd_server_psk_open(struct tlshd_handshake *hs);
/* After the handshake: the suite's hash is the one the key calls for. */
int tlshd_server_psk_check(struct tlshd_handshake *hs);
int tlshd_server_x509_open(struct tlshd_handshake *hs);

/* tls-x509.c: certificate selection and verification for both roles. */

/* Installs the retrieve and verify callbacks on loaded credentials. */
void tlshd_x509_attach(struct tlshd_creds *creds);

/*
 * Chooses the certificate we present (the kernel's keyring pair, else
 * @role's configured chain; @cert_required: one must exist), and
 * starts the session with @role's trust store and the x509 priority.
 */
int tlshd_x509_open(struct tlshd_handshake *hs, const struct tlshd_creds_role *role,
		    unsigned int flags, bool cert_required);
