/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Shared by the libFuzzer targets (built with --enable-fuzzing): the
 * entry points, quiet logging, and the invariant check that turns a
 * wrong result into a crash libFuzzer reports.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "log.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Where fuzz_assert() reports: the real stderr. */
static FILE *fuzz_report;

/*
 * The parsers log every rejection, which would otherwise cost more than
 * the parsing. libFuzzer and the sanitizers write their reports to file
 * descriptor 2 themselves, so only stdio's stderr, the one the log module
 * writes to, goes to /dev/null. TLSHD_FUZZ_VERBOSE=1 keeps the log, to
 * see why a given input is rejected.
 */
static inline void fuzz_quiet_log(void)
{
	FILE *null;

	fuzz_report = stderr;
	tlshd_log_open(TLSHD_LOG_STDERR);
	if (getenv("TLSHD_FUZZ_VERBOSE"))
		return;
	null = fopen("/dev/null", "w");
	if (null)
		stderr = null;
}

#define fuzz_assert(expr)							\
	do {									\
		if (!(expr)) {							\
			fprintf(fuzz_report, "%s:%d: invariant broken: %s\n",	\
				__FILE__, __LINE__, #expr);			\
			abort();						\
		}								\
	} while (0)
