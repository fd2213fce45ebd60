#ifndef EGRESS_CLINUX_SHIM_H
#define EGRESS_CLINUX_SHIM_H
// Linux headers that Glibc's Swift module does not carry: epoll and eventfd, for the reactor.
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

// accept4 is declared by glibc only under _GNU_SOURCE; declare it here.
extern int accept4(int sockfd, struct sockaddr *addr, socklen_t *addrlen, int flags);
#endif
