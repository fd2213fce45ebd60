// Preloaded only under valgrind (Tests/Bench/profile.sh). libdispatch parks the main thread of
// `dispatchMain()` in sigsuspend() with a signal mask in read-only memory; valgrind 3.19's
// rt_sigsuspend wrapper edits the mask in place and dies with SIGSEGV. Pass a writable copy.
#define _GNU_SOURCE
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

int sigsuspend(const sigset_t *mask) {
    sigset_t copy = *mask;
    return (int)syscall(SYS_rt_sigsuspend, &copy, 8);
}
