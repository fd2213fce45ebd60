#ifndef EGRESS_CLINUX_SHIM_H
#define EGRESS_CLINUX_SHIM_H
// Linux headers that Glibc's Swift module does not carry: epoll, eventfd and timerfd, for the
// reactor; crypt for the listener's basic auth; malloc.h for mallopt.
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <sys/socket.h>
#include <crypt.h>
#include <stdlib.h>
#include <malloc.h>

/// Checks `password` against a crypt(5) hash (bcrypt "$2b$..." among them) with libxcrypt's
/// reentrant crypt_r. Returns 1 on a match, 0 otherwise.
static inline int egress_crypt_matches(const char *password, const char *hash) {
    struct crypt_data *data = calloc(1, sizeof(struct crypt_data));
    if (data == NULL) return 0;
    const char *out = crypt_r(password, hash, data);
    int ok = 0;
    if (out != NULL && out[0] != '*') {
        size_t n = 0;
        unsigned char diff = 0;
        while (hash[n] != 0 && out[n] != 0) { diff |= (unsigned char)(hash[n] ^ out[n]); n++; }
        ok = (diff == 0 && hash[n] == 0 && out[n] == 0);
    }
    free(data);
    return ok;
}

// accept4 is declared by glibc only under _GNU_SOURCE; declare it here.
extern int accept4(int sockfd, struct sockaddr *addr, socklen_t *addrlen, int flags);
// Likewise pthread_setname_np, which names the reactor thread.
#include <pthread.h>
extern int pthread_setname_np(pthread_t thread, const char *name);
extern int pthread_getname_np(pthread_t thread, char *name, size_t len);
/// A new bcrypt ("$2b$") hash of `password` at `cost`, written to `out` (at least 128 bytes).
/// Returns 1 on success.
static inline int egress_bcrypt_hash(const char *password, unsigned long cost, char *out, int outSize) {
    char salt[CRYPT_GENSALT_OUTPUT_SIZE];
    if (crypt_gensalt_rn("$2b$", cost, NULL, 0, salt, sizeof salt) == NULL) return 0;
    struct crypt_data *data = calloc(1, sizeof(struct crypt_data));
    if (data == NULL) return 0;
    const char *hash = crypt_r(password, salt, data);
    int ok = 0;
    if (hash != NULL && hash[0] != '*') {
        size_t n = 0;
        while (hash[n] != 0 && (int)n < outSize - 1) { out[n] = hash[n]; n++; }
        out[n] = 0;
        ok = hash[n] == 0;
    }
    free(data);
    return ok;
}

// Signals to a self-pipe: the agent's SIGTERM/SIGINT/SIGHUP handler only writes the signal's
// number to a non-blocking pipe (async-signal-safe, errno kept); a thread reads the other end.
// Whichever thread the kernel picks runs the handler, so no signal mask has to be set before
// the first thread starts. The fd lives in the one module that calls egress_signal_forward.
#include <signal.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>
static int egress_signal_pipe_fd = -1;
static inline void egress_signal_to_pipe(int signo) {
    int saved = errno;
    unsigned char b = (unsigned char)signo;
    if (egress_signal_pipe_fd >= 0) (void)!write(egress_signal_pipe_fd, &b, 1);
    errno = saved;
}
/// Sends `signo` to the pipe whose write end is `fd` from now on. Returns sigaction's result.
static inline int egress_signal_forward(int signo, int fd) {
    egress_signal_pipe_fd = fd;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = egress_signal_to_pipe;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    return sigaction(signo, &sa, NULL);
}

// pidfds (Linux 5.3+), so managed mode signals the very dockerd whose /proc/PID/comm it checked:
// a pid reused between the check and the signal makes pidfd_send_signal fail (ESRCH) instead of
// hitting another process. -1 with errno ENOSYS on older kernels.
#include <sys/syscall.h>
static inline int egress_pidfd_open(int pid) {
#ifdef SYS_pidfd_open
    return (int)syscall(SYS_pidfd_open, pid, 0);
#else
    errno = ENOSYS; return -1;
#endif
}
static inline int egress_pidfd_send_signal(int pidfd, int signo) {
#ifdef SYS_pidfd_send_signal
    return (int)syscall(SYS_pidfd_send_signal, pidfd, signo, NULL, 0);
#else
    errno = ENOSYS; return -1;
#endif
}
// Child processes for the operator's actions (EgressNet's SpawnedProcess): the pidfd above turns
// "the child exited" into a readable descriptor the epoll reactor can wait on, so no thread ever
// blocks in waitpid.
/// posix_spawn's "close every descriptor from `low` up" (glibc 2.34), declared here because
/// Glibc's Swift module may not show it. `actions` is a posix_spawn_file_actions_t, typed as a
/// plain pointer so that this header need not include <spawn.h> (Glibc's module has it).
extern int posix_spawn_file_actions_addclosefrom_np(void *actions, int low);
// pipe2 is declared by glibc only under _GNU_SOURCE.
extern int pipe2(int pipefd[2], int flags);
/// si_pid of a siginfo_t (a macro over a union the importer does not show).
static inline pid_t egress_siginfo_pid(const siginfo_t *info) { return info->si_pid; }
#endif
