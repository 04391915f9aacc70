// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The worker's system call filter (see seccomp.h): a classic BPF program
 * of an allowlist, no libseccomp.
 */
#include "build-config.h"

#include <errno.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <termios.h>

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

#include "seccomp.h"

#if defined(__x86_64__)
#define SECCOMP_ARCH	AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define SECCOMP_ARCH	AUDIT_ARCH_AARCH64
#else
#define SECCOMP_ARCH	0	/* not filtered: see tlshd_seccomp_install() */
#endif

/*
 * What a worker calls after ACCEPT, and why:
 *   read write readv writev recvfrom recvmsg sendto sendmsg
 *                     the consumer's socket (GnuTLS transport), the
 *                     report socket (outcome, logging), the journal,
 *                     the key holder (signatures)
 *   poll ppoll        waiting for the peer within the deadline
 *   getsockopt setsockopt getpeername getsockname
 *                     TCP_NODELAY, the socket checks, kTLS (TCP_ULP,
 *                     TLS_TX, TLS_RX, TLS_TX_MAX_PAYLOAD_LEN), the
 *                     time-out of the wait for the key holder
 *   close shutdown    the consumer's socket
 *   keyctl            reading and searching the keys it possesses
 *   getrandom         GnuTLS's random numbers
 *   brk mmap munmap mremap mprotect madvise
 *                     the allocator
 *   futex rt_sigprocmask rt_sigreturn
 *                     libc internals (locks, signal masks)
 *   restart_syscall   a poll or sleep resumed after a stop (SIGSTOP and
 *                     SIGCONT: a debugger, the cgroup freezer)
 *   clock_gettime clock_nanosleep nanosleep gettimeofday
 *                     the deadline (vDSO fallbacks)
 *   getpid gettid getuid geteuid getgid getegid
 *                     logging, libc
 *   fstat newfstatat lseek fcntl
 *                     stdio on standard error
 *   ioctl (TCGETS, TCGETS2 only)
 *                     stdio asking whether stderr is a terminal (glibc
 *                     2.42 and later ask with TCGETS2)
 *   prctl (PR_SET_NAME only)
 *                     a spare, confined while it waits, takes the name
 *                     of a busy worker when its request comes
 *   exit exit_group   the end
 */
/* What both lists allow, grouped by purpose (the program sorts them for
 * its search): messages, the allocator, libc internals, time, ids,
 * stdio, the end (reasons above). */
#ifdef SYS_poll
#define SECCOMP_POLL	SYS_poll,
#else
#define SECCOMP_POLL
#endif
#define SECCOMP_BOTH								\
	SYS_read, SYS_write, SYS_readv, SYS_writev,				\
	SYS_recvfrom, SYS_recvmsg, SYS_sendto, SYS_sendmsg,			\
	SYS_ppoll, SECCOMP_POLL							\
	SYS_close,								\
	SYS_getrandom,								\
	SYS_brk, SYS_mmap, SYS_munmap, SYS_mremap, SYS_mprotect, SYS_madvise,	\
	SYS_futex, SYS_rt_sigprocmask, SYS_rt_sigreturn, SYS_restart_syscall,	\
	SYS_clock_gettime, SYS_clock_nanosleep, SYS_nanosleep, SYS_gettimeofday, \
	SYS_getpid, SYS_gettid, SYS_getuid, SYS_geteuid, SYS_getgid, SYS_getegid, \
	SYS_newfstatat, SYS_fstat, SYS_lseek, SYS_fcntl,			\
	SYS_exit, SYS_exit_group,

static const int seccomp_worker[] = {
	SECCOMP_BOTH
	SYS_getsockopt, SYS_setsockopt, SYS_getpeername, SYS_getsockname,
	SYS_shutdown,
	SYS_keyctl,
};

/*
 * What the key holder calls once its keys are loaded: the worker's less
 * everything about sockets but moving messages (no socket options, no
 * shutdown, no names), and no keyctl:
 *   read write readv writev recvfrom recvmsg sendto sendmsg
 *                     requests and signatures, workers' connections
 *                     handed over by the parent (SCM_RIGHTS), logging
 *   poll ppoll        waiting for them
 *   close             a worker's connection once it ends
 *   getrandom         blinding and nonces of the signatures
 *   the allocator, libc internals (restart_syscall included), time, ids
 *   and stdio as for a worker
 */
static const int seccomp_keyholder[] = {
	SECCOMP_BOTH
};

struct seccomp_list {
	const int *nr;
	size_t n;
};

static const struct seccomp_list seccomp_lists[] = {
	[TLSHD_SECCOMP_WORKER] = { seccomp_worker, sizeof(seccomp_worker) / sizeof(int) },
	[TLSHD_SECCOMP_KEYHOLDER] = { seccomp_keyholder, sizeof(seccomp_keyholder) / sizeof(int) },
};

/* The longer list: the worker's. */
#define N_ALLOWED	(sizeof(seccomp_worker) / sizeof(seccomp_worker[0]))
_Static_assert(sizeof(seccomp_keyholder) <= sizeof(seccomp_worker),
	       "the program is sized for the longest list");
/* TCGETS2 is _IOR('T', 0x2A, struct termios2), whose header clashes with
 * <termios.h>; struct termios2 is 44 bytes wherever it exists. */
#define SECCOMP_TCGETS2	_IOR('T', 0x2A, char[44])

/* Calls allowed with some arguments only: the argument (its low 32
 * bits) must be one of the values. */
struct seccomp_rule {
	int nr;
	unsigned int arg;
	unsigned int n;
	unsigned int value[2];
};

static const struct seccomp_rule seccomp_rules[] = {
	/* ioctl(fd, TCGETS or TCGETS2, ...): stdio's isatty() */
	{ SYS_ioctl, 1, 2, { TCGETS, SECCOMP_TCGETS2 } },
	/* prctl(PR_SET_NAME, ...): a dispatched spare's new name */
	{ SYS_prctl, 0, 1, { PR_SET_NAME } },
};
#define N_RULES		(sizeof(seccomp_rules) / sizeof(seccomp_rules[0]))
/* A rule's instructions: its dispatch, a load, its values, a jump to
 * kill. */
#define N_RULE_INSNS	(1 + 1 + 2 + 1)

/*
 * The program: arch check (3), load nr (1), a dispatch per rule, a
 * binary search of the sorted list, the rules' argument checks, kill
 * (1), allow (1).
 * The search's nodes are "nr >= pivot" tests; its leaves compare at most
 * SECCOMP_LEAF calls each and jump to kill when none matches. The kernel
 * runs the program at install for every system call number to build its
 * cache of calls that are always allowed, and JIT-compiles it: a search
 * of ~6 steps instead of a scan of ~45 is a third less of the install's
 * time (measured natively, 155 -> 105 us), which every worker pays.
 * Bound: a node per leaf at most, a leaf per call at most, each leaf one
 * JA more than its calls.
 */
#define SECCOMP_LEAF	4
#define N_INSNS		(3 + 1 + 3 * N_ALLOWED + N_RULES * N_RULE_INSNS + 1 + 1)
_Static_assert(N_INSNS < 256, "jump offsets of the filter must fit in 8 bits");

struct seccomp_prog {
	struct sock_filter *f;
	size_t n;
	/* Jumps to kill or allow, patched once those are placed. */
	size_t to_allow[N_INSNS], n_allow;
	size_t to_kill[N_INSNS], n_kill;
};

static void seccomp_sort(int *nr, size_t n)
{
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0 && nr[j - 1] > nr[j]; j--) {
			int t = nr[j];

			nr[j] = nr[j - 1];
			nr[j - 1] = t;
		}
}

/* Searches nr[lo, hi): equal jumps to allow, nothing equal to kill. */
static void seccomp_tree(struct seccomp_prog *p, const int *nr, size_t lo, size_t hi)
{
	size_t mid, node;

	if (hi - lo <= SECCOMP_LEAF) {
		for (size_t i = lo; i < hi; i++) {
			p->to_allow[p->n_allow++] = p->n;
			p->f[p->n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K,
								    (unsigned int)nr[i], 0, 0);
		}
		p->to_kill[p->n_kill++] = p->n;
		p->f[p->n++] = (struct sock_filter)BPF_STMT(BPF_JMP | BPF_JA, 0);
		return;
	}
	mid = lo + (hi - lo) / 2;
	node = p->n++;
	seccomp_tree(p, nr, lo, mid);
	/* nr >= nr[mid]: the upper half, which starts here. */
	p->f[node] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, (unsigned int)nr[mid],
						  (unsigned char)(p->n - node - 1), 0);
	seccomp_tree(p, nr, mid, hi);
}

/* Points the jumps recorded in @at (@n of them) at @target. */
static void seccomp_patch(struct seccomp_prog *p, const size_t *at, size_t n, size_t target)
{
	for (size_t i = 0; i < n; i++) {
		struct sock_filter *j = &p->f[at[i]];

		if (BPF_OP(j->code) == BPF_JA)
			j->k = (unsigned int)(target - at[i] - 1);
		else
			j->jt = (unsigned char)(target - at[i] - 1);
	}
}

/* @rule's argument check, which its dispatch at @from jumps to. */
static void seccomp_args(struct seccomp_prog *p, const struct seccomp_rule *rule, size_t from)
{
	struct sock_filter *f = p->f;

	f[from] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned int)rule->nr,
					       (unsigned char)(p->n - from - 1), 0);
	f[p->n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
						 offsetof(struct seccomp_data, args[rule->arg]));
	for (unsigned int v = 0; v < rule->n; v++) {
		p->to_allow[p->n_allow++] = p->n;
		f[p->n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, rule->value[v],
							 0, 0);
	}
	p->to_kill[p->n_kill++] = p->n;
	f[p->n++] = (struct sock_filter)BPF_STMT(BPF_JMP | BPF_JA, 0);
}

static size_t seccomp_build(const struct seccomp_list *list, struct sock_filter *f)
{
	struct seccomp_prog p = { .f = f };
	size_t rule_at[N_RULES];
	int nr[N_ALLOWED];

	for (size_t i = 0; i < list->n; i++)
		nr[i] = list->nr[i];
	seccomp_sort(nr, list->n);
	f[p.n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
						offsetof(struct seccomp_data, arch));
	f[p.n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SECCOMP_ARCH, 1, 0);
	f[p.n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
	f[p.n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
						offsetof(struct seccomp_data, nr));
	for (size_t r = 0; r < N_RULES; r++)
		rule_at[r] = p.n++;
	seccomp_tree(&p, nr, 0, list->n);
	for (size_t r = 0; r < N_RULES; r++)
		seccomp_args(&p, &seccomp_rules[r], rule_at[r]);
	seccomp_patch(&p, p.to_kill, p.n_kill, p.n);
	f[p.n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
	seccomp_patch(&p, p.to_allow, p.n_allow, p.n);
	f[p.n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	return p.n;
}

size_t tlshd_seccomp_program(enum tlshd_seccomp_profile profile, struct sock_filter *f,
			     size_t max)
{
	if ((size_t)profile >= sizeof(seccomp_lists) / sizeof(seccomp_lists[0]) ||
	    max < N_INSNS)
		return 0;
	return seccomp_build(&seccomp_lists[profile], f);
}

const int *tlshd_seccomp_allowed(enum tlshd_seccomp_profile profile, size_t *ret_n)
{
	if ((size_t)profile >= sizeof(seccomp_lists) / sizeof(seccomp_lists[0]))
		return NULL;
	*ret_n = seccomp_lists[profile].n;
	return seccomp_lists[profile].nr;
}

bool tlshd_seccomp_disabled(void)
{
#ifdef TLSHD_SANITIZERS
	return true;
#else
	return false;
#endif
}

int tlshd_seccomp_install(enum tlshd_seccomp_profile profile)
{
	struct sock_filter insns[N_INSNS];
	struct sock_fprog prog = { .filter = insns };

	/* An architecture whose numbers this list does not name is left to
	 * the unit's filter rather than broken; so is a sanitizer build,
	 * whose runtime needs calls the list rules out. */
	if (!SECCOMP_ARCH || tlshd_seccomp_disabled())
		return 0;
	if ((size_t)profile >= sizeof(seccomp_lists) / sizeof(seccomp_lists[0]))
		return -EINVAL;
	prog.len = seccomp_build(&seccomp_lists[profile], insns);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0)
		return -errno;
	return 0;
}
