// The parent's half of a spawn, on a libuv pool thread: open the fds the child needs (cgroup.procs
// files, namespaces to join, the cgroup dir, the init memfd), clone3, then learn from the error pipe
// whether execve happened. A child that failed is reaped here; its ChildError goes back to JS.
#include <fcntl.h>
#include <linux/sched.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include "spawn_clone.h"
#include "spawn_parent.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

namespace tsb {
namespace {

constexpr size_t kChildStackSize = 256 * 1024;

void CloseAll(std::vector<int>& fds) {
  for (int fd : fds)
    if (fd >= 0) close(fd);
  fds.clear();
}

// The pty master a consolePty step sent (already queued: the child has exec'd). Returns fd or -errno.
int ReceiveFd(int sock) {
  char byte;
  struct iovec iov = {&byte, 1};
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(int))];
  } control;
  struct msghdr msg;
  memset(&msg, 0, sizeof msg);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.buf;
  msg.msg_controllen = sizeof control.buf;
  ssize_t n;
  do n = recvmsg(sock, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  if (n < 0) return -errno;
  struct cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
  if (!cmsg || cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS) return -EBADMSG;
  int fd;
  memcpy(&fd, CMSG_DATA(cmsg), sizeof fd);
  return fd;
}

// Every fd and mapping one launch holds, released on every path.
struct LaunchFds {
  std::vector<int> cgroupProcs, joins, joinTypes;
  int pidJoin = -1, cgroupDir = -1, selfPidNs = -1, errR = -1, errW = -1;
  int console[2] = {-1, -1};
  void* stack = nullptr;
  ~LaunchFds() {
    CloseAll(cgroupProcs);
    CloseAll(joins);
    for (int fd : {pidJoin, cgroupDir, selfPidNs, errR, errW, console[0], console[1]})
      if (fd >= 0) close(fd);
    if (stack) munmap(stack, kChildStackSize);
  }
};

}  // namespace

LaunchResult Launch(SpawnRequest& req) {
  LaunchResult out;
  auto fail = [&out](int err, const char* syscall, const std::string& path) {
    out.parent = Failure{err, syscall, path, ""};
    return out;
  };
  ChildPlan& p = req.plan;
  LaunchFds fds;
  for (auto& path : req.cgroupProcs) {
    int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return fail(errno, "open", path);
    fds.cgroupProcs.push_back(fd);
  }
  for (auto& j : req.joins) {
    int fd = open(j.second.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fail(errno, "open", j.second);
    // A pid namespace applies to children of the caller, so it is joined here, around clone.
    if (j.first == CLONE_NEWPID) {
      fds.pidJoin = fd;
      continue;
    }
    fds.joins.push_back(fd);
    fds.joinTypes.push_back(j.first);
  }
  if (req.hasCgroupDir) {
    fds.cgroupDir = open(req.cgroupDir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fds.cgroupDir < 0) return fail(errno, "open", req.cgroupDir);
  }
  if (req.useInit) {
    Failure initFailure;
    int mfd = InitMemfd(req.initPath, &initFailure);
    if (mfd < 0) {
      out.parent = initFailure;
      return out;
    }
    p.memfd = mfd;  // cached for the process: not closed here
  }
  if (fds.pidJoin >= 0) {
    fds.selfPidNs = open("/proc/thread-self/ns/pid", O_RDONLY | O_CLOEXEC);
    if (fds.selfPidNs < 0) return fail(errno, "open", "/proc/thread-self/ns/pid");
  }
  if (req.vfork) {
    void* stack = mmap(nullptr, kChildStackSize, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK | MAP_NORESERVE, -1, 0);
    if (stack == MAP_FAILED) return fail(errno, "mmap", "");
    fds.stack = stack;
    mprotect(stack, 4096, PROT_NONE);  // guard page
  }
  int errPipe[2];
  if (pipe2(errPipe, O_CLOEXEC) != 0) return fail(errno, "pipe2", "");
  fds.errR = errPipe[0];
  fds.errW = errPipe[1];
  if (req.wantConsole && socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, fds.console) != 0)
    return fail(errno, "socketpair", "");
  p.consoleSock = fds.console[1];
  p.errfd = fds.errW;
  p.cgroupProcsFds = fds.cgroupProcs.data();
  p.ncgroupProcs = (int)fds.cgroupProcs.size();
  p.joinFds = fds.joins.data();
  p.joinTypes = fds.joinTypes.data();
  p.njoins = (int)fds.joins.size();
  p.nonDumpable = !req.vfork;  // a CLONE_VM child shares the parent's mm, whose dumpable flag this is
  p.expectedPpid = (req.cloneFlags & CLONE_NEWPID) || fds.pidJoin >= 0 ? 0 : getpid();

  int pidfd = -1;
  struct clone_args args;
  memset(&args, 0, sizeof args);
  args.flags = req.cloneFlags | CLONE_PIDFD;
  args.pidfd = (uint64_t)(uintptr_t)&pidfd;
  args.exit_signal = SIGCHLD;
  if (fds.cgroupDir >= 0) {
    args.flags |= CLONE_INTO_CGROUP;
    args.cgroup = (uint64_t)fds.cgroupDir;
  }
  if (req.vfork) {
    args.flags |= CLONE_VM | CLONE_VFORK;
    args.stack = (uint64_t)(uintptr_t)fds.stack;
    args.stack_size = kChildStackSize;
  }
  if (fds.pidJoin >= 0 && setns(fds.pidJoin, CLONE_NEWPID) != 0) return fail(errno, "setns", "pid namespace");
  // Blocked signals keep Node's handlers from running in the child before it resets them.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  // A CLONE_VM child that changes its uid makes the shared mm (Node's) non-dumpable (commit_creds):
  // give Node its flag back once the child has exec'd into its own mm.
  int wasDumpable = req.vfork ? prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) : -1;
  long pid = req.vfork ? Clone3OnStack(&args, ChildEntry, &req.plan) : Clone3Fork(&args, &req.plan);
  if (wasDumpable > 0 && prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != wasDumpable) prctl(PR_SET_DUMPABLE, wasDumpable, 0, 0, 0);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (fds.pidJoin >= 0) setns(fds.selfPidNs, CLONE_NEWPID);
  close(fds.errW);
  fds.errW = -1;
  if (pid < 0) return fail((int)-pid, "clone3", "");
  // EOF: execve succeeded (the pipe is O_CLOEXEC). A record: the child failed and exits.
  ChildError rec;
  ssize_t n;
  do n = read(fds.errR, &rec, sizeof rec);
  while (n < 0 && errno == EINTR);
  if (n == (ssize_t)sizeof rec) {
    out.childFailed = true;
    out.child = rec;
  } else if (n != 0) {
    out.parent = Failure{n < 0 ? errno : EIO, "read", "spawn error pipe", ""};
  }
  if (fds.console[1] >= 0) {
    close(fds.console[1]);
    fds.console[1] = -1;
  }
  if (fds.console[0] >= 0 && !out.childFailed && !out.parent) {
    out.terminalFd = ReceiveFd(fds.console[0]);
    if (out.terminalFd < 0) out.parent = Failure{-out.terminalFd, "recvmsg", "console socket", ""};
  }
  if (out.childFailed || out.parent) {
    // Kill first: after a parent-side failure the child may have exec'd already.
    if (!out.childFailed) syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, nullptr, 0);
    siginfo_t si;
    while (waitid(static_cast<idtype_t>(P_PIDFD), (id_t)pidfd, &si, WEXITED) != 0 && errno == EINTR) {
    }
    close(pidfd);
  } else {
    out.pid = (int)pid;
    out.pidfd = pidfd;
  }
  return out;
}

}  // namespace tsb
