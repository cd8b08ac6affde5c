/*
 * tsbuild-userns: runs a command as root of the user's user + mount namespace (the rootless entry,
 * issue 15). One namespace per user is kept alive by a small keeper process, as podman's pause
 * process does, so that later commands (exec into a detached container) share it.
 *
 *   tsbuild-userns --keep PIDFILE FILE [ARG...]   make the namespace (fd 3: a socket to the parent)
 *   tsbuild-userns --join PID FILE [ARG...]       enter the namespace the keeper PID holds
 *
 * --keep: Node is multithreaded, so it cannot unshare(CLONE_NEWUSER) itself; this single-threaded
 * helper does, and the parent (outside, where the setuid newuidmap/newgidmap run) maps it:
 *   1. unshare(CLONE_NEWUSER | CLONE_NEWNS), then write "R" on fd 3 (or "E<errno>" and exit 125);
 *   2. the parent runs newuidmap/newgidmap on this pid and writes "G" (EOF: it gave up; exit 125);
 *   3. mounts are made slaves (host mounts still appear inside, ours never reach the host), a keeper
 *      child is forked that writes its pid to PIDFILE and waits forever; then "K" on fd 3, fd 3 is
 *      closed and FILE is exec'd. Its uid and gid are 0 inside, so execve grants it the full
 *      capability set of the namespace.
 * --join: setns into the keeper's user and mount namespaces (allowed to the namespace's owner),
 * back to the same working directory, exec FILE.
 * Built static, like tsbuild-init.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#define SYNC_FD 3

static void report(char tag, int err) {
  char buf[24];
  int n = snprintf(buf, sizeof buf, "%c%d", tag, err);
  if (write(SYNC_FD, buf, (size_t)n) < 0) { /* the parent is gone; the exit status says enough */ }
}

static void run(char **cmd) {
  execv(cmd[0], cmd);
  fprintf(stderr, "tsbuild-userns: cannot execute %s: %s\n", cmd[0], strerror(errno));
  exit(125);
}

/* The keeper: holds the namespaces open for later commands. Detached from the session and the
   terminal, it records its pid and sleeps until killed. */
static void keep(const char *pidfile, int ready_fd) {
  setsid();
  int null = open("/dev/null", O_RDWR);
  if (null >= 0) {
    dup2(null, 0);
    dup2(null, 1);
    dup2(null, 2);
    if (null > 2) close(null);
  }
  if (chdir("/") != 0) { /* the namespace stays usable from any directory */ }
  close(SYNC_FD);
  char buf[24];
  int n = snprintf(buf, sizeof buf, "%d\n", (int)getpid());
  char tmp[PATH_MAX];
  snprintf(tmp, sizeof tmp, "%s.%d", pidfile, (int)getpid());
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  int ok = fd >= 0 && write(fd, buf, (size_t)n) == n && close(fd) == 0 && rename(tmp, pidfile) == 0;
  if (write(ready_fd, ok ? "K" : "F", 1) < 0) { /* the parent reads EOF */ }
  close(ready_fd);
  if (!ok) _exit(1);
  sigset_t all;
  sigfillset(&all);
  sigdelset(&all, SIGTERM);
  sigdelset(&all, SIGKILL);
  sigprocmask(SIG_SETMASK, &all, NULL);
  for (;;) pause();
}

static int make(const char *pidfile, char **cmd) {
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
  if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) != 0) {
    report('M', errno);
    return 125;
  }
  int ready[2];
  if (pipe2(ready, O_CLOEXEC) != 0) {
    report('P', errno);
    return 125;
  }
  pid_t keeper = fork();
  if (keeper < 0) {
    report('P', errno);
    return 125;
  }
  if (keeper == 0) {
    close(ready[0]);
    keep(pidfile, ready[1]);
  }
  close(ready[1]);
  char k = 0;
  do n = read(ready[0], &k, 1);
  while (n < 0 && errno == EINTR);
  close(ready[0]);
  if (n != 1 || k != 'K') {
    report('F', 0);
    return 125;
  }
  if (write(SYNC_FD, "K", 1) != 1) return 125;
  close(SYNC_FD);
  run(cmd);
  return 125;
}

static int join(const char *pid, char **cmd) {
  char path[64], cwd[PATH_MAX];
  if (!getcwd(cwd, sizeof cwd)) strcpy(cwd, "/");
  snprintf(path, sizeof path, "/proc/%s/ns/user", pid);
  int user = open(path, O_RDONLY | O_CLOEXEC);
  snprintf(path, sizeof path, "/proc/%s/ns/mnt", pid);
  int mnt = open(path, O_RDONLY | O_CLOEXEC);
  if (user < 0 || mnt < 0 || setns(user, CLONE_NEWUSER) != 0 || setns(mnt, CLONE_NEWNS) != 0) {
    fprintf(stderr, "tsbuild-userns: cannot enter the user namespace of process %s: %s\n", pid, strerror(errno));
    return 125;
  }
  close(user);
  close(mnt);
  if (chdir(cwd) != 0 && chdir("/") != 0) return 125;
  run(cmd);
  return 125;
}

int main(int argc, char **argv) {
  if (argc < 4 || (strcmp(argv[1], "--keep") != 0 && strcmp(argv[1], "--join") != 0)) {
    fprintf(stderr, "usage: tsbuild-userns --keep PIDFILE FILE [ARG...] | --join PID FILE [ARG...]\n");
    return 125;
  }
  if (strcmp(argv[1], "--join") == 0) return join(argv[2], argv + 3);
  /* Dies with the process that maps it, so a killed CLI leaves no half-made namespace (the keeper,
     forked later, does not inherit this). */
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() == 1) return 125;
  return make(argv[2], argv + 3);
}
