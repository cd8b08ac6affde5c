// The spawned child between clone and execve. Rules (REFERENCE §4.9): raw syscalls only, from buffers the
// parent prepared; no malloc, stdio, std::string, exceptions or errno (a CLONE_VM child shares the
// parent's memory and TLS). Any failure is written to the error pipe as a ChildError and the child exits.
#include <errno.h>  // the E* constants only; the child never reads errno
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/socket.h>
#include <sys/sysmacros.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <net/if.h>

#include "spawn_plan.h"
#include "spawn_sys.h"

#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif
#ifndef OPEN_TREE_CLOEXEC
#define OPEN_TREE_CLOEXEC O_CLOEXEC
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif
#ifndef MOVE_MOUNT_F_EMPTY_PATH
#define MOVE_MOUNT_F_EMPTY_PATH 0x00000004
#endif
#ifndef MOUNT_ATTR_RDONLY
#define MOUNT_ATTR_RDONLY 0x00000001
#define MOUNT_ATTR_NOSUID 0x00000002
#define MOUNT_ATTR_NODEV 0x00000004
#define MOUNT_ATTR_NOEXEC 0x00000008
#endif
#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

namespace tsb {
namespace {

using sys::call;
using sys::err_of;
using sys::L;

constexpr int kExitSetup = 125;
constexpr int kExitCannotExec = 126;
constexpr int kExitNotFound = 127;

struct KernelMountAttr {
  uint64_t attr_set, attr_clr, propagation, userns_fd;
};

// State local to the child (lives on the child's stack).
struct Child {
  const ChildPlan* plan;
  int treeFds[kMaxTreeSlots];
};

[[noreturn]] void Fail(const ChildPlan* p, int phase, int index, int err, int syscall) {
  ChildError e{phase, index, err, syscall};
  call(SYS_write, p->errfd, L(&e), sizeof e);
  int code = kExitSetup;
  if (phase == kPhaseExec) code = (err == ENOENT || err == ENOTDIR) ? kExitNotFound : kExitCannotExec;
  sys::exit_now(code);
}

// Writes "/proc/self/fd/<fd>" into buf.
const char* FdPath(char* buf, int fd) {
  const char prefix[] = "/proc/self/fd/";
  size_t n = 0;
  for (; prefix[n]; n++) buf[n] = prefix[n];
  char digits[12];
  int nd = 0;
  unsigned v = (unsigned)fd;
  do {
    digits[nd++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  while (nd) buf[n++] = digits[--nd];
  buf[n] = 0;
  return buf;
}

long Mount(const char* src, const char* target, const char* type, unsigned long flags, const char* data) {
  return call(SYS_mount, L(src), L(target), L(type), L(flags), L(data));
}

constexpr unsigned long kPropagation = MS_PRIVATE | MS_SLAVE | MS_SHARED | MS_UNBINDABLE;

// mount(2) as a caller thinks of it: propagation changes, binds that need a second remount call for
// their per-mount flags, and ordinary mounts. Returns 0 or a positive errno (and the failing syscall).
int DoMount(const ChildStep& s, int* sc) {
  *sc = kSysMount;
  unsigned long prop = s.flags & kPropagation;
  unsigned long rec = s.flags & MS_REC;
  unsigned long rest = s.flags & ~(kPropagation | MS_REC);
  long r = 0;
  if (rest == 0 && prop) return err_of(Mount(nullptr, s.path, nullptr, prop | rec, nullptr));
  if (rest & MS_REMOUNT) {
    r = Mount(s.source, s.path, s.fstype, rest, s.data);
  } else if (rest & MS_BIND) {
    r = Mount(s.source ? s.source : s.path, s.path, nullptr, MS_BIND | rec, nullptr);
    unsigned long extra = rest & ~MS_BIND;
    if (r == 0 && extra) r = Mount(nullptr, s.path, nullptr, MS_BIND | MS_REMOUNT | extra, nullptr);
  } else {
    r = Mount(s.source, s.path, s.fstype, rest, s.data);
  }
  if (r == 0 && prop) r = Mount(nullptr, s.path, nullptr, prop | rec, nullptr);
  return err_of(r);
}

int MkdirOne(const char* path, uint32_t mode) {
  int e = err_of(call(SYS_mkdirat, AT_FDCWD, L(path), mode));
  return e == EEXIST ? 0 : e;
}

int DoMkdir(const ChildStep& s) {
  if (!s.parents) return MkdirOne(s.path, s.mode);
  char buf[4096];
  size_t n = sys::cstrlen(s.path);
  if (n >= sizeof buf) return ENAMETOOLONG;
  for (size_t i = 0; i <= n; i++) {
    buf[i] = s.path[i];
    if ((s.path[i] == '/' && i > 0) || s.path[i] == 0) {
      buf[i] = 0;
      int e = MkdirOne(buf, s.mode);
      if (e) return e;
      buf[i] = s.path[i];
    }
  }
  return 0;
}

int DoWriteFile(const ChildStep& s, int* sc) {
  *sc = kSysOpen;
  int flags = O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC | (s.ifMissing ? O_EXCL : O_TRUNC);
  long fd = call(SYS_openat, AT_FDCWD, L(s.path), flags, s.mode);
  if (fd == -EEXIST && s.ifMissing) return 0;
  if (fd < 0) return err_of(fd);
  size_t off = 0;
  int e = 0;
  while (off < s.dataLen) {
    long w = call(SYS_write, fd, L(s.source + off), s.dataLen - off);
    if (w == -EINTR) continue;
    if (w < 0) {
      *sc = kSysWrite;
      e = err_of(w);
      break;
    }
    off += (size_t)w;
  }
  call(SYS_close, fd);
  return e;
}

// runc's pivot_root dance: pivot_root(".", ".") stacks the old root under the new one, which is then
// made a slave (so the detach does not propagate to the host) and lazily unmounted.
int DoPivotRoot(const ChildStep& s, int* sc) {
  *sc = kSysOpen;
  long oldRoot = call(SYS_openat, AT_FDCWD, L("/"), O_DIRECTORY | O_RDONLY | O_CLOEXEC);
  if (oldRoot < 0) return err_of(oldRoot);
  long newRoot = call(SYS_openat, AT_FDCWD, L(s.path), O_DIRECTORY | O_RDONLY | O_CLOEXEC);
  int e = err_of(newRoot);
  if (!e) {
    *sc = kSysFchdir;
    e = err_of(call(SYS_fchdir, newRoot));
  }
  if (!e) {
    *sc = kSysPivotRoot;
    e = err_of(call(SYS_pivot_root, L("."), L(".")));
  }
  if (!e) {
    *sc = kSysFchdir;
    e = err_of(call(SYS_fchdir, oldRoot));
  }
  if (!e) {
    *sc = kSysMount;
    e = err_of(Mount(nullptr, ".", nullptr, MS_SLAVE | MS_REC, nullptr));
  }
  if (!e) {
    *sc = kSysUmount;
    e = err_of(call(SYS_umount2, L("."), MNT_DETACH));
  }
  if (!e) {
    *sc = kSysChdir;
    e = err_of(call(SYS_chdir, L("/")));
  }
  if (newRoot >= 0) call(SYS_close, newRoot);
  call(SYS_close, oldRoot);
  return e;
}

// Masks a path: a file gets the container's /dev/null (verified to be char 1:3, CVE-2025-31133), a
// directory a read-only tmpfs. Both are mounted through /proc/self/fd so nothing is re-resolved.
int DoMaskPath(const ChildStep& s, int* sc) {
  *sc = kSysOpen;
  long fd = call(SYS_openat, AT_FDCWD, L(s.path), O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (fd == -ENOENT) return 0;  // nothing to mask
  if (fd < 0) return err_of(fd);
  struct stat st;
  char target[40], source[40];
  int e = 0;
  *sc = kSysStat;
  e = err_of(call(SYS_newfstatat, fd, L(""), L(&st), AT_EMPTY_PATH));
  if (!e && S_ISDIR(st.st_mode)) {
    *sc = kSysMount;
    e = err_of(Mount("tmpfs", FdPath(target, (int)fd), "tmpfs", MS_RDONLY, "nr_blocks=1,nr_inodes=1"));
  } else if (!e) {
    *sc = kSysOpen;
    long nul = call(SYS_openat, AT_FDCWD, L("/dev/null"), O_PATH | O_NOFOLLOW | O_CLOEXEC);
    e = err_of(nul);
    struct stat ns;
    if (!e) {
      *sc = kSysStat;
      e = err_of(call(SYS_newfstatat, nul, L(""), L(&ns), AT_EMPTY_PATH));
    }
    if (!e && (!S_ISCHR(ns.st_mode) || ns.st_rdev != makedev(1, 3))) {
      *sc = kSysNotDevNull;
      e = EPERM;
    }
    if (!e) {
      *sc = kSysMount;
      e = err_of(Mount(FdPath(source, (int)nul), FdPath(target, (int)fd), nullptr, MS_BIND, nullptr));
    }
    if (nul >= 0) call(SYS_close, nul);
  }
  call(SYS_close, fd);
  return e;
}

// Binds a path onto itself and remounts it read-only, keeping its nosuid/nodev/noexec.
int DoReadonlyPath(const ChildStep& s, int* sc) {
  *sc = kSysMount;
  long r = Mount(s.path, s.path, nullptr, MS_BIND | MS_REC, nullptr);
  if (r == -ENOENT) return 0;
  if (r < 0) return err_of(r);
  struct statfs fs;
  *sc = kSysStatfs;
  r = call(SYS_statfs, L(s.path), L(&fs));
  if (r < 0) return err_of(r);
  unsigned long keep = (unsigned long)fs.f_flags & (MS_NOSUID | MS_NODEV | MS_NOEXEC);
  *sc = kSysMount;
  return err_of(Mount(nullptr, s.path, nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY | keep, nullptr));
}

// Detaches a copy of a host tree before pivot_root so it can be attached inside the root afterwards
// without resolving the target on the host (the target lies in the container's untrusted rootfs).
int DoOpenTree(Child& c, const ChildStep& s, int* sc) {
  *sc = kSysOpenTree;
  unsigned flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (s.recursive ? AT_RECURSIVE : 0);
  long fd = call(SYS_open_tree, AT_FDCWD, L(s.source), flags);
  if (fd < 0) return err_of(fd);
  c.treeFds[s.slot] = (int)fd;
  return 0;
}

int DoAttachTree(Child& c, const ChildStep& s, int* sc) {
  int fd = c.treeFds[s.slot];
  if (fd < 0) return EBADF;
  uint64_t attrs = 0;
  if (s.flags & MS_RDONLY) attrs |= MOUNT_ATTR_RDONLY;
  if (s.flags & MS_NOSUID) attrs |= MOUNT_ATTR_NOSUID;
  if (s.flags & MS_NODEV) attrs |= MOUNT_ATTR_NODEV;
  if (s.flags & MS_NOEXEC) attrs |= MOUNT_ATTR_NOEXEC;
  int e = 0;
  if (attrs) {
    KernelMountAttr attr{attrs, 0, 0, 0};
    *sc = kSysMountSetattr;
    e = err_of(call(SYS_mount_setattr, fd, L(""), AT_EMPTY_PATH | (s.recursive ? AT_RECURSIVE : 0), L(&attr),
                    sizeof attr));
  }
  if (!e) {
    *sc = kSysMoveMount;
    e = err_of(call(SYS_move_mount, fd, L(""), AT_FDCWD, L(s.path), MOVE_MOUNT_F_EMPTY_PATH));
  }
  call(SYS_close, fd);
  c.treeFds[s.slot] = -1;
  return e;
}

// A pseudo-terminal from the container's own devpts (so ttyname works inside): the slave becomes
// fds 0-2, the master goes to the parent over the console socket (runc's console-socket design).
int DoConsolePty(const ChildPlan* p, const ChildStep& s, int* sc) {
  *sc = kSysOpen;
  long master = call(SYS_openat, AT_FDCWD, L(s.path), O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0) return err_of(master);
  int e = 0, unlock = 0;
  long slave = -1;
  *sc = kSysIoctl;
  e = err_of(call(SYS_ioctl, master, TIOCSPTLCK, L(&unlock)));
  if (!e) {
    slave = call(SYS_ioctl, master, TIOCGPTPEER, O_RDWR | O_NOCTTY);
    e = err_of(slave);
  }
  for (int i = 0; !e && i < 3; i++) {
    *sc = kSysDup;
    e = err_of(call(SYS_dup3, slave, i, 0));
  }
  if (!e) {
    char byte = 't';
    struct iovec iov = {&byte, 1};
    union {
      struct cmsghdr align;
      char buf[CMSG_SPACE(sizeof(int))];
    } control;
    for (char& b : control.buf) b = 0;
    struct msghdr msg;
    char* raw = reinterpret_cast<char*>(&msg);
    for (size_t i = 0; i < sizeof msg; i++) raw[i] = 0;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.buf;
    msg.msg_controllen = sizeof control.buf;
    struct cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int));
    int masterFd = (int)master;
    char* data = reinterpret_cast<char*>(CMSG_DATA(cmsg));
    for (size_t i = 0; i < sizeof masterFd; i++) data[i] = reinterpret_cast<char*>(&masterFd)[i];
    *sc = kSysSendmsg;
    e = p->consoleSock < 0 ? EBADF : err_of(call(SYS_sendmsg, p->consoleSock, L(&msg), 0));
  }
  if (slave >= 0) call(SYS_close, slave);
  call(SYS_close, master);
  return e;
}

// A new network namespace starts with `lo` down; Docker and runc bring it up so 127.0.0.1 works.
int DoLoopbackUp(int* sc) {
  *sc = kSysSocket;
  long fd = call(SYS_socket, AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return err_of(fd);
  struct ifreq ifr;
  char* raw = reinterpret_cast<char*>(&ifr);
  for (size_t i = 0; i < sizeof ifr; i++) raw[i] = 0;
  ifr.ifr_name[0] = 'l';
  ifr.ifr_name[1] = 'o';
  *sc = kSysIoctl;
  int e = err_of(call(SYS_ioctl, fd, SIOCGIFFLAGS, L(&ifr)));
  if (!e) {
    ifr.ifr_flags = (short)(ifr.ifr_flags | IFF_UP | IFF_RUNNING);
    e = err_of(call(SYS_ioctl, fd, SIOCSIFFLAGS, L(&ifr)));
  }
  call(SYS_close, fd);
  return e;
}

int RunStep(Child& c, const ChildStep& s, int* sc) {
  switch (s.op) {
    case kStepMount:
    case kStepBindRemount:
      return DoMount(s, sc);
    case kStepMkdir:
      *sc = kSysMkdir;
      return DoMkdir(s);
    case kStepMknod:
      *sc = kSysMknod;
      return err_of(call(SYS_mknodat, AT_FDCWD, L(s.path), s.mode, L(s.dev)));
    case kStepSymlink:
      *sc = kSysSymlink;
      return err_of(call(SYS_symlinkat, L(s.source), AT_FDCWD, L(s.path)));
    case kStepWriteFile:
      return DoWriteFile(s, sc);
    case kStepPivotRoot:
      return DoPivotRoot(s, sc);
    case kStepChroot: {
      *sc = kSysChroot;
      int e = err_of(call(SYS_chroot, L(s.path)));
      if (!e) {
        *sc = kSysChdir;
        e = err_of(call(SYS_chdir, L("/")));
      }
      return e;
    }
    case kStepMaskPath:
      return DoMaskPath(s, sc);
    case kStepReadonlyPath:
      return DoReadonlyPath(s, sc);
    case kStepSethostname:
      *sc = kSysSethostname;
      return err_of(call(SYS_sethostname, L(s.path), sys::cstrlen(s.path)));
    case kStepChdir:
      *sc = kSysChdir;
      return err_of(call(SYS_chdir, L(s.path)));
    case kStepUmask:
      call(SYS_umask, s.mode);
      return 0;
    case kStepOpenTree:
      return DoOpenTree(c, s, sc);
    case kStepAttachTree:
      return DoAttachTree(c, s, sc);
    case kStepConsolePty:
      return DoConsolePty(c.plan, s, sc);
    case kStepLoopbackUp:
      return DoLoopbackUp(sc);
  }
  return EINVAL;
}

// Stdio: the sources may themselves be 0..2 in any permutation, so copy them above 2 first.
void SetupStdio(const ChildPlan* p) {
  long tmp[3];
  for (int i = 0; i < 3; i++) {
    tmp[i] = call(SYS_fcntl, p->stdio[i], F_DUPFD_CLOEXEC, 3);
    if (tmp[i] < 0) Fail(p, kPhaseStdio, i, err_of(tmp[i]), kSysDup);
  }
  for (int i = 0; i < 3; i++) {
    long r = call(SYS_dup3, tmp[i], i, 0);
    if (r < 0) Fail(p, kPhaseStdio, i, err_of(r), kSysDup);
    call(SYS_close, tmp[i]);
  }
}

// Closes every fd >= 3 except the error pipe, the init memfd and the console socket.
void CloseOtherFds(const ChildPlan* p) {
  int keep[3] = {p->errfd, p->memfd, p->consoleSock};
  for (int i = 1; i < 3; i++)  // sort the three
    for (int j = i; j > 0 && keep[j] < keep[j - 1]; j--) {
      int t = keep[j];
      keep[j] = keep[j - 1];
      keep[j - 1] = t;
    }
  unsigned lo = 3;
  for (int k : keep) {
    if (k < 0) continue;
    if ((unsigned)k > lo) {
      long r = call(SYS_close_range, lo, (unsigned)k - 1, 0);
      if (r < 0) Fail(p, kPhaseCloseFds, 0, err_of(r), kSysCloseRange);
    }
    lo = (unsigned)k + 1;
  }
  long r = call(SYS_close_range, lo, ~0U, 0);
  if (r < 0) Fail(p, kPhaseCloseFds, 0, err_of(r), kSysCloseRange);
}

void SetupCaps(const ChildPlan* p) {
  if (p->hasCaps) {
    for (int c = 0; c <= p->lastCap; c++) {
      if (p->bounding & (1ULL << c)) continue;
      long r = call(SYS_prctl, PR_CAPBSET_DROP, c, 0, 0, 0);
      if (r < 0 && r != -EINVAL) Fail(p, kPhaseCaps, c, err_of(r), kSysPrctl);
    }
  }
  if (p->setIds) {
    if (p->hasCaps) call(SYS_prctl, PR_SET_KEEPCAPS, 1, 0, 0, 0);
    long r = call(SYS_setgroups, p->ngroups, L(p->groups));
    if (r < 0) Fail(p, kPhaseIds, 0, err_of(r), kSysSetgroups);
    r = call(SYS_setresgid, p->gid, p->gid, p->gid);
    if (r < 0) Fail(p, kPhaseIds, 0, err_of(r), kSysSetresgid);
    r = call(SYS_setresuid, p->uid, p->uid, p->uid);
    if (r < 0) Fail(p, kPhaseIds, 0, err_of(r), kSysSetresuid);
    if (p->hasCaps) call(SYS_prctl, PR_SET_KEEPCAPS, 0, 0, 0, 0);
    // Changing credentials clears the parent-death signal (commit_creds): arm it again, as runc does.
    if (p->pdeathsig > 0) {
      r = call(SYS_prctl, PR_SET_PDEATHSIG, p->pdeathsig, 0, 0, 0);
      if (r < 0) Fail(p, kPhaseDeathSignal, 0, err_of(r), kSysPrctl);
      if (p->expectedPpid > 0 && call(SYS_getppid) != p->expectedPpid) sys::exit_now(kExitSetup);
    }
  }
  if (p->hasCaps) {
    __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2];
    data[0].effective = (uint32_t)p->effective;
    data[1].effective = (uint32_t)(p->effective >> 32);
    data[0].permitted = (uint32_t)p->permitted;
    data[1].permitted = (uint32_t)(p->permitted >> 32);
    data[0].inheritable = (uint32_t)p->inheritable;
    data[1].inheritable = (uint32_t)(p->inheritable >> 32);
    long r = call(SYS_capset, L(&hdr), L(data));
    if (r < 0) Fail(p, kPhaseCaps, -1, err_of(r), kSysCapset);
    call(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
    for (int c = 0; c <= p->lastCap; c++) {
      if (!(p->ambient & (1ULL << c))) continue;
      r = call(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0);
      if (r < 0) Fail(p, kPhaseCaps, c, err_of(r), kSysPrctl);
    }
  }
}

// chdir to the cwd, then refuse a cwd outside the root (a leaked host dir fd, CVE-2024-21626).
void SetupCwd(const ChildPlan* p, bool done) {
  if (p->cwd && !done) {
    long r = call(SYS_chdir, L(p->cwd));
    if (r < 0) Fail(p, kPhaseCwd, 0, err_of(r), kSysChdir);
  }
  char buf[4096];
  long r = call(SYS_getcwd, L(buf), sizeof buf);
  if (r < 0) Fail(p, kPhaseCwd, 0, err_of(r), kSysGetcwd);
  if (buf[0] != '/') Fail(p, kPhaseCwd, 0, ENOENT, kSysCwdOutside);
}

void ResetSignals() {
  uint64_t act[4] = {0, 0, 0, 0};  // SIG_DFL, no flags, no restorer, empty mask
  for (int sig = 1; sig <= 64; sig++) call(SYS_rt_sigaction, sig, L(act), 0, 8);
}

void UnblockSignals() {
  uint64_t none = 0;
  call(SYS_rt_sigprocmask, SIG_SETMASK, L(&none), 0, 8);
}

// Loads the caller's seccomp filter. From here on every syscall of this process and its children
// goes through it, including the few the child still makes before execve.
void InstallSeccomp(const ChildPlan* p) {
  if (p->seccompLen == 0) return;
  struct sock_fprog prog;
  prog.len = p->seccompLen;
  prog.filter = static_cast<struct sock_filter*>(const_cast<void*>(p->seccompFilter));
  long r = call(SYS_seccomp, SECCOMP_SET_MODE_FILTER, p->seccompFlags, L(&prog));
  if (r < 0) Fail(p, kPhaseSeccomp, 0, err_of(r), kSysSeccomp);
}

bool IsNotFound(int e) { return e == ENOENT || e == ENOTDIR; }

// execvp's rules over the prepared candidates: not-found moves on, EACCES is remembered, anything
// else stops. Returns only on failure.
[[noreturn]] void ExecDirect(const ChildPlan* p) {
  int seenAccess = -1, lastErr = ENOENT, lastIdx = -1;
  for (int i = 0; i < p->ncandidates; i++) {
    int e = err_of(call(SYS_execve, L(p->candidates[i]), L(p->argv), L(p->envp)));
    if (e == EACCES) {
      if (seenAccess < 0) seenAccess = i;
    } else if (!IsNotFound(e)) {
      Fail(p, kPhaseExec, i, e, kSysExecve);
    }
    lastErr = e;
    lastIdx = i;
  }
  if (seenAccess >= 0) Fail(p, kPhaseExec, seenAccess, EACCES, kSysExecve);
  Fail(p, kPhaseExec, p->ncandidates == 1 ? lastIdx : -1, lastErr, kSysExecve);
}

// With an init, the command is resolved here (so missing or non-executable commands still fail the
// spawn with 127/126) and handed to the sealed init, which execs it as PID 1's child.
[[noreturn]] void ExecInit(const ChildPlan* p) {
  int seenAccess = -1, found = -1;
  for (int i = 0; i < p->ncandidates && found < 0; i++) {
    struct stat st;
    int e = err_of(call(SYS_newfstatat, AT_FDCWD, L(p->candidates[i]), L(&st), 0));
    if (IsNotFound(e)) continue;
    if (e) Fail(p, kPhaseExec, i, e, kSysExecve);
    if (!S_ISREG(st.st_mode) || err_of(call(SYS_faccessat, AT_FDCWD, L(p->candidates[i]), X_OK))) {
      if (seenAccess < 0) seenAccess = i;
      continue;
    }
    found = i;
  }
  if (found < 0) {
    if (seenAccess >= 0) Fail(p, kPhaseExec, seenAccess, EACCES, kSysExecve);
    Fail(p, kPhaseExec, p->ncandidates == 1 ? 0 : -1, ENOENT, kSysExecve);
  }
  p->initArgv[p->initPathSlot] = const_cast<char*>(p->candidates[found]);
  UnblockSignals();
  int e = err_of(call(SYS_execveat, p->memfd, L(""), L(p->initArgv), L(p->envp), AT_EMPTY_PATH));
  Fail(p, kPhaseExec, found, e, kSysExecveat);
}

}  // namespace

void ChildMain(const ChildPlan* p) {
  Child c;
  c.plan = p;
  for (int& fd : c.treeFds) fd = -1;

  if (p->nonDumpable) call(SYS_prctl, PR_SET_DUMPABLE, 0, 0, 0, 0);
  if (p->pdeathsig > 0) {
    long r = call(SYS_prctl, PR_SET_PDEATHSIG, p->pdeathsig, 0, 0, 0);
    if (r < 0) Fail(p, kPhaseDeathSignal, 0, err_of(r), kSysPrctl);
    // The parent may have died before the signal was armed.
    if (p->expectedPpid > 0 && call(SYS_getppid) != p->expectedPpid) sys::exit_now(kExitSetup);
  }
  call(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC);
  SetupStdio(p);
  for (int i = 0; i < p->ncgroupProcs; i++) {
    long r = call(SYS_write, p->cgroupProcsFds[i], L("0"), 1);
    if (r < 0) Fail(p, kPhaseCgroup, i, err_of(r), kSysWrite);
  }
  for (int i = 0; i < p->njoins; i++) {
    long r = call(SYS_setns, p->joinFds[i], p->joinTypes[i]);
    if (r < 0) Fail(p, kPhaseSetns, i, err_of(r), kSysSetns);
  }
  CloseOtherFds(p);

  for (int i = 0; i < p->nsteps; i++) {
    int sc = kSysNone;
    int e = RunStep(c, p->steps[i], &sc);
    if (e == ENOENT && p->steps[i].optional) continue;
    if (e) Fail(p, kPhaseStep, i, e, sc);
  }
  for (int i = 0; i < p->nrlimits; i++) {
    struct rlimit64 {
      uint64_t cur, max;
    } rl{p->rlimits[i].soft, p->rlimits[i].hard};
    long r = call(SYS_prlimit64, 0, p->rlimits[i].resource, L(&rl), 0);
    if (r < 0) Fail(p, kPhaseRlimit, i, err_of(r), kSysPrlimit);
  }
  if (p->terminal) {
    long r = call(SYS_setsid);
    if (r < 0) Fail(p, kPhaseTerminal, 0, err_of(r), kSysSetsid);
    r = call(SYS_ioctl, 0, TIOCSCTTY, 0);
    if (r < 0) Fail(p, kPhaseTerminal, 0, err_of(r), kSysIoctl);
  }
  if (p->noNewPrivs) {
    long r = call(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    if (r < 0) Fail(p, kPhaseNoNewPrivs, 0, err_of(r), kSysPrctl);
  }
  // chdir while still privileged (the cwd may be unreadable by the target user), check it after.
  bool cwdDone = false;
  if (p->cwd) {
    long r = call(SYS_chdir, L(p->cwd));
    if (r < 0 && r != -EACCES) Fail(p, kPhaseCwd, 0, err_of(r), kSysChdir);
    cwdDone = r == 0;
  }
  // Without no_new_privs, loading a filter needs CAP_SYS_ADMIN, which the container's own capability
  // set usually lacks: load it while the child still has all of them (runc's order). With
  // no_new_privs it goes last, so the filter never sees the setup.
  if (!p->noNewPrivs) InstallSeccomp(p);
  SetupCaps(p);
  SetupCwd(p, cwdDone);
  ResetSignals();
  if (p->noNewPrivs) InstallSeccomp(p);
  if (p->memfd >= 0) ExecInit(p);
  UnblockSignals();
  ExecDirect(p);
}

int ChildEntry(void* plan) { ChildMain(static_cast<const ChildPlan*>(plan)); }

}  // namespace tsb
