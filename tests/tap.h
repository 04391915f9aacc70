/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Minimal TAP producer for the unit tests: every check prints one
 * "ok"/"not ok" line with the expression and its location on failure;
 * tap_done() prints the plan and sets the exit status; tap_skip_all()
 * skips the whole program.
 */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned int tap_count, tap_failed;

static inline bool tap_check(bool ok, const char *file, int line, const char *expr,
			     const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static inline bool tap_check(bool ok, const char *file, int line, const char *expr,
			     const char *fmt, ...)
{
	va_list ap;

	tap_count++;
	printf("%s %u - ", ok ? "ok" : "not ok", tap_count);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (!ok) {
		tap_failed++;
		printf("#   failed: %s\n#   at %s:%d\n", expr, file, line);
	}
	fflush(stdout);
	return ok;
}

#define ok(expr, ...)	tap_check(!!(expr), __FILE__, __LINE__, #expr, __VA_ARGS__)
#define is_int(got, want, ...)							\
	({									\
		long long _g = (got), _w = (want);				\
		bool _r = tap_check(_g == _w, __FILE__, __LINE__, #got " == " #want, __VA_ARGS__); \
		if (!_r)							\
			printf("#   got %lld, want %lld\n", _g, _w);		\
		_r;								\
	})

#define is_str(got, want, ...)							\
	({									\
		const char *_g = (got), *_w = (want);				\
		bool _r = tap_check(_g && _w && !strcmp(_g, _w), __FILE__, __LINE__,	\
				    #got " equals " #want, __VA_ARGS__);	\
		if (!_r)							\
			printf("#   got '%s', want '%s'\n", _g ? _g : "(null)",	\
			       _w ? _w : "(null)");				\
		_r;								\
	})

/* The one way a test program skips: a "1..0 # SKIP" plan and exit 0
 * (automake's TAP driver counts any non-zero exit as an error). */
static inline int tap_skip_all(const char *reason)
{
	printf("1..0 # SKIP %s\n", reason);
	return EXIT_SUCCESS;
}

static inline int tap_done(void)
{
	printf("1..%u\n", tap_count);
	return tap_failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
