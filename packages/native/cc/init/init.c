/*
 * tsbuild-init: the tiny PID 1 of a container (the role tini plays for Docker).
 *
 *   tsbuild-init [-x FILE] [-e] -- CMD [ARG...]
 *
 * Runs CMD as its only direct child (looked up in the container's PATH, or FILE when -x names the
 * already resolved path), forwards every signal but its own faults and terminal stops to it, reaps
 * every process that is orphaned to it, and exits with the child's exit code or 128+signal. Signals are
 * kept blocked and taken with sigwaitinfo: a PID 1 drops signals it has no handler for, but blocked
 * signals are always queued.
 *
 * -e only execs CMD in place (no fork, no reaping): a trampoline that keeps CMD as PID 1.
 *
 * spawn() runs it from a sealed memfd, so /proc/self/exe is not a host file while the command is being
 * exec'd (a `#!/proc/self/exe` script would otherwise run host node) nor afterwards as /proc/1/exe
 * (CVE-2019-5736). Built static: it must run in any rootfs.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

/* Signals never taken over (like tini): synchronous faults of this process itself and the terminal
   stop signals; every other signal is forwarded to the command. */
static const int kNotForwarded[] = {SIGFPE, SIGILL, SIGSEGV, SIGBUS, SIGABRT, SIGTRAP, SIGSYS, SIGTTIN, SIGTTOU};

static void run_child(const char *file, char **cmd, const sigset_t *mask, int forked) {
  /* With a terminal, the command gets its own foreground process group (like tini), so keyboard
     signals reach it once and not through this process. */
  if (forked && isatty(STDIN_FILENO)) {
    setpgid(0, 0);
    signal(SIGTTOU, SIG_IGN);
    tcsetpgrp(STDIN_FILENO, getpid());
    signal(SIGTTOU, SIG_DFL);
  }
  sigprocmask(SIG_SETMASK, mask, NULL);
  if (file)
    execv(file, cmd);
  else
    execvp(cmd[0], cmd);
  int err = errno;
  fprintf(stderr, "tsbuild-init: exec %s: %s\n", file ? file : cmd[0], strerror(err));
  _exit(err == ENOENT || err == ENOTDIR ? 127 : 126);
}

int main(int argc, char **argv) {
  /* "--" is required: run as a script's interpreter (`#!/proc/self/exe`), the kernel passes no options,
     and re-running the script would recurse. */
  const char *file = NULL;
  int exec_only = 0, ended = 0, i = 1;
  for (; i < argc && argv[i][0] == '-'; i++) {
    if (strcmp(argv[i], "--") == 0) {
      ended = 1;
      i++;
      break;
    }
    if (strcmp(argv[i], "-x") == 0 && i + 1 < argc) {
      file = argv[++i];
    } else if (strcmp(argv[i], "-e") == 0) {
      exec_only = 1;
    } else {
      break;
    }
  }
  if (!ended || i >= argc) {
    fprintf(stderr, "usage: tsbuild-init [-x FILE] [-e] -- CMD [ARG...]\n");
    return 125;
  }
  char **cmd = argv + i;
  if (exec_only) {
    sigset_t none;
    sigemptyset(&none);
    run_child(file, cmd, &none, 0);
  }
  if (getpid() != 1) prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);

  sigset_t waited, original;
  sigfillset(&waited);
  for (size_t k = 0; k < sizeof kNotForwarded / sizeof kNotForwarded[0]; k++) sigdelset(&waited, kNotForwarded[k]);
  sigprocmask(SIG_BLOCK, &waited, &original);

  pid_t child = fork();
  if (child < 0) {
    fprintf(stderr, "tsbuild-init: fork: %s\n", strerror(errno));
    return 125;
  }
  if (child == 0) run_child(file, cmd, &original, 1);

  int status = 0, done = 0;
  while (!done) {
    siginfo_t info;
    int sig = sigwaitinfo(&waited, &info);
    if (sig < 0) continue; /* EINTR */
    if (sig != SIGCHLD) {
      kill(child, sig);
      continue;
    }
    for (;;) {
      int st;
      pid_t pid = waitpid(-1, &st, WNOHANG);
      if (pid <= 0) break;
      if (pid == child) {
        status = st;
        done = 1;
      }
    }
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + WTERMSIG(status);
}
