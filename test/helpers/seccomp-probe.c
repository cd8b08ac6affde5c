/*
 * seccomp-probe: tries the syscalls a confined container must not make (and some it must), each by
 * raw number, and prints one "name=OK" or "name=ERRNONAME" line per probe named on the command line.
 * Built static by the tests (cc -static) and copied into a container's rootfs.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef AF_ALG
#define AF_ALG 38
#endif
#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif

static long report(const char *name, long r) {
  if (r < 0) printf("%s=%s\n", name, strerrorname_np(errno));
  else printf("%s=OK\n", name);
  return r;
}

static void *thread_main(void *arg) { return arg; }

/* fork-like probes: the child leaves at once, the parent reports and reaps it. */
static void forked(const char *name, long pid) {
  if (pid == 0) _exit(0);
  report(name, pid);
  if (pid > 0) waitpid((pid_t)pid, NULL, 0);
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  for (int i = 1; i < argc; i++) {
    const char *p = argv[i];
    errno = 0;
    if (!strcmp(p, "unshare-user")) report(p, syscall(SYS_unshare, CLONE_NEWUSER));
    else if (!strcmp(p, "unshare-mount")) report(p, syscall(SYS_unshare, CLONE_NEWNS));
    else if (!strcmp(p, "keyctl")) report(p, syscall(SYS_keyctl, 0 /* GET_KEYRING_ID */, -3 /* session */, 0));
    else if (!strcmp(p, "add_key")) report(p, syscall(SYS_add_key, "user", "probe", "x", 1, -3));
    else if (!strcmp(p, "userfaultfd")) report(p, syscall(SYS_userfaultfd, 0));
    else if (!strcmp(p, "io_uring_setup")) {
      char params[120] = {0};
      report(p, syscall(SYS_io_uring_setup, 1, params));
    } else if (!strcmp(p, "bpf")) report(p, syscall(SYS_bpf, 0, NULL, 0));
    else if (!strcmp(p, "perf_event_open")) report(p, syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0));
    else if (!strcmp(p, "kexec_load")) report(p, syscall(SYS_kexec_load, 0, 0, NULL, 0));
    else if (!strcmp(p, "open_by_handle_at")) report(p, syscall(SYS_open_by_handle_at, AT_FDCWD, NULL, 0));
    else if (!strcmp(p, "mount")) report(p, syscall(SYS_mount, "none", "/mnt", "tmpfs", 0, NULL));
    else if (!strcmp(p, "clone3")) {
      struct clone_args args;
      memset(&args, 0, sizeof args);
      args.exit_signal = SIGCHLD;
      forked(p, syscall(SYS_clone3, &args, sizeof args));
    } else if (!strcmp(p, "clone-newns")) forked(p, syscall(SYS_clone, CLONE_NEWNS | SIGCHLD, 0, 0, 0, 0));
    else if (!strcmp(p, "clone-newuser")) forked(p, syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0));
    else if (!strcmp(p, "fork")) forked(p, fork());
    else if (!strcmp(p, "thread")) {
      pthread_t t;
      int e = pthread_create(&t, NULL, thread_main, NULL);
      if (e == 0) pthread_join(t, NULL);
      errno = e;
      report(p, e ? -1 : 0);
    } else if (!strcmp(p, "socket-alg")) report(p, socket(AF_ALG, SOCK_SEQPACKET, 0));
    else if (!strcmp(p, "socket-vsock")) report(p, socket(AF_VSOCK, SOCK_STREAM, 0));
    else if (!strcmp(p, "socket-inet")) report(p, socket(AF_INET, SOCK_STREAM, 0));
    else if (!strcmp(p, "personality-query")) report(p, syscall(SYS_personality, 0xffffffffUL));
    else if (!strcmp(p, "personality-norandom")) report(p, syscall(SYS_personality, ADDR_NO_RANDOMIZE));
    else if (!strcmp(p, "chown")) {
      int fd = open("/tmp/probe-chown", O_CREAT | O_WRONLY, 0644);
      if (fd >= 0) close(fd);
      report(p, chown("/tmp/probe-chown", 1000, 1000));
    } else if (!strcmp(p, "ptrace-child")) {
      pid_t child = fork();
      if (child == 0) {
        pause();
        _exit(0);
      }
      long r = report(p, ptrace(PTRACE_ATTACH, child, NULL, NULL));
      if (r == 0) {
        waitpid(child, NULL, 0);
        ptrace(PTRACE_DETACH, child, NULL, NULL);
      }
      kill(child, SIGKILL);
      waitpid(child, NULL, 0);
    } else if (!strcmp(p, "x32-getpid")) report(p, syscall(0x40000000 | SYS_getpid));
    else if (!strcmp(p, "unknown-old")) report(p, syscall(400));
    else if (!strcmp(p, "unknown-new")) report(p, syscall(1000));
    else if (!strcmp(p, "euid")) printf("euid=%d\n", (int)geteuid());
    else {
      fprintf(stderr, "seccomp-probe: unknown probe %s\n", p);
      return 2;
    }
  }
  return 0;
}
