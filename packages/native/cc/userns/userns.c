/*
 * tsbuild-userns: enters a new user + mount namespace, waits for its parent to write the uid/gid maps,
 * then execs a command as root of that namespace (the rootless entry, issue 15).
 *
 *   tsbuild-userns FILE [ARG...]        (fd 3: a socket to the parent)
 *
 * Node is multithreaded, so it cannot unshare(CLONE_NEWUSER) itself; this single-threaded helper does,
 * and the parent (outside, where the setuid newuidmap/newgidmap run) maps it:
 *   1. unshare(CLONE_NEWUSER | CLONE_NEWNS), then write "R" on fd 3 (or "E<errno>" and exit 125);
 *   2. the parent runs newuidmap/newgidmap on this pid and writes "G" (EOF: it gave up; exit 125);
 *   3. the mount namespace is made private (mounts made inside never reach the host), fd 3 is closed,
 *      and FILE is exec'd. Its uid and gid are now 0 inside, so execve grants it the full capability
 *      set of the namespace.
 * Built static, like tsbuild-init.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <unistd.h>

#define SYNC_FD 3

static void report(char tag, int err) {
  char buf[24];
  int n = snprintf(buf, sizeof buf, "%c%d", tag, err);
  if (write(SYNC_FD, buf, (size_t)n) < 0) { /* the parent is gone; the exit status says enough */ }
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: tsbuild-userns FILE [ARG...] (fd 3: the parent's socket)\n");
    return 125;
  }
  /* Dies with the process that maps it, so a killed CLI leaves no namespace running on its own. */
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() == 1) return 125;
  if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) {
    report('E', errno);
    return 125;
  }
  if (write(SYNC_FD, "R", 1) != 1) return 125;
  char go = 0;
  ssize_t n;
  do n = read(SYNC_FD, &go, 1);
  while (n < 0 && errno == EINTR);
  if (n != 1 || go != 'G') return 125;
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) {
    report('M', errno);
    return 125;
  }
  close(SYNC_FD);
  execv(argv[1], argv + 1);
  fprintf(stderr, "tsbuild-userns: cannot execute %s: %s\n", argv[1], strerror(errno));
  return 125;
}
