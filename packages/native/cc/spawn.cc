// spawn(): clone3 a child into new namespaces from a libuv pool thread, run the prepared setup steps in
// it, execve; then watch its pidfd in the event loop. TypeScript (src/spawn.ts) has validated and
// normalized the spec into plain numbers and strings; this file only copies it into the ChildPlan.
#include <fcntl.h>
#include <linux/sched.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include <cmath>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "errors.h"
#include "module.h"
#include "spawn_clone.h"
#include "spawn_plan.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif
#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif

namespace tsb {
namespace {

constexpr size_t kChildStackSize = 256 * 1024;

const char* const kStepNames[] = {"mount",        "bindRemount", "mkdir",       "mknod",    "symlink",
                                  "writeFile",    "pivotRoot",   "chroot",      "maskPath", "readonlyPath",
                                  "sethostname",  "chdir",       "umask",       "openTree", "attachTree",
                                  "consolePty",   "loopbackUp"};

const char* const kSyscallNames[] = {
    "",         "prctl",      "getppid",   "dup",         "write",        "setns",      "close_range",
    "mount",    "mkdir",      "mknod",     "symlink",     "open",         "pivot_root", "umount2",
    "chdir",    "fchdir",     "chroot",    "stat",        "statfs",       "sethostname", "open_tree",
    "move_mount", "mount_setattr", "prlimit", "setsid",   "ioctl(TIOCSCTTY)", "capset", "setgroups",
    "setresgid", "setresuid", "getcwd",    "execve",      "execveat",     "mount",      "getcwd",
    "sendmsg",  "socket",     "seccomp"};
static_assert(sizeof kSyscallNames / sizeof kSyscallNames[0] == kSysCount, "one name per ChildSyscall");

int StepOpFromName(const std::string& name) {
  for (size_t i = 0; i < sizeof kStepNames / sizeof kStepNames[0]; i++)
    if (name == kStepNames[i]) return (int)i;
  return -1;
}

// ---- the sealed init memfd (CVE-2019-5736): one per init binary per process ----

struct CachedInit {
  dev_t dev;
  ino_t ino;
  off_t size;
  struct timespec mtime;
  int fd;
};

std::mutex gInitMutex;
std::map<std::string, CachedInit> gInitCache;

// Returns the memfd or -errno; *what names the failing syscall.
int InitMemfd(const std::string& path, const char** what) {
  std::lock_guard<std::mutex> lock(gInitMutex);
  struct stat st;
  *what = "stat";
  if (stat(path.c_str(), &st) != 0) return -errno;
  auto it = gInitCache.find(path);
  if (it != gInitCache.end() && it->second.dev == st.st_dev && it->second.ino == st.st_ino &&
      it->second.size == st.st_size && it->second.mtime.tv_sec == st.st_mtim.tv_sec &&
      it->second.mtime.tv_nsec == st.st_mtim.tv_nsec)
    return it->second.fd;
  *what = "open";
  int src = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (src < 0) return -errno;
  *what = "memfd_create";
  int mfd = memfd_create("tsbuild-init", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
  if (mfd < 0 && errno == EINVAL) mfd = memfd_create("tsbuild-init", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (mfd < 0) {
    int e = errno;
    close(src);
    return -e;
  }
  *what = "sendfile";
  off_t left = st.st_size;
  while (left > 0) {
    ssize_t n = sendfile(mfd, src, nullptr, (size_t)left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int e = n < 0 ? errno : EIO;
      close(src);
      close(mfd);
      return -e;
    }
    left -= n;
  }
  close(src);
  *what = "fcntl(F_ADD_SEALS)";
  if (fcntl(mfd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) != 0) {
    int e = errno;
    close(mfd);
    return -e;
  }
  // A replaced binary gets a new memfd; the old one stays open (a concurrent spawn may be using it).
  gInitCache[path] = CachedInit{st.st_dev, st.st_ino, st.st_size, st.st_mtim, mfd};
  return mfd;
}

// ---- reading the normalized spec ----

std::string Str(Napi::Value v) { return v.As<Napi::String>().Utf8Value(); }
bool Has(Napi::Object o, const char* key) {
  Napi::Value v = o.Get(key);
  return !v.IsUndefined() && !v.IsNull();
}
std::vector<std::string> StrArray(Napi::Value v) {
  std::vector<std::string> out;
  if (!v.IsArray()) return out;
  Napi::Array a = v.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); i++) out.push_back(Str(a.Get(i)));
  return out;
}
double Num(Napi::Object o, const char* key, double def = 0) {
  Napi::Value v = o.Get(key);
  return v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : def;
}
bool Bool(Napi::Object o, const char* key) { return o.Get(key).ToBoolean().Value(); }
uint64_t Limit(double v) { return (!std::isfinite(v) || v < 0) ? RLIM_INFINITY : (uint64_t)v; }

struct OwnedStep {
  std::string path, source, fstype, data;
  bool hasSource = false, hasFstype = false, hasData = false;
  ChildStep step{};
};

// ---- the process handle and its exit watcher ----

struct ProcState {
  int pid = -1;
  int pidfd = -1;
  bool reaped = false;
};

struct Watcher {
  uv_poll_t poll;
  napi_env env;
  std::shared_ptr<ProcState> state;
  Napi::FunctionReference onExit;
  std::unique_ptr<Napi::AsyncContext> context;
  bool closing = false;
};

void OnWatcherClosed(uv_handle_t* h) {
  Watcher* w = static_cast<Watcher*>(h->data);
  if (w->state->pidfd >= 0) close(w->state->pidfd);
  w->state->pidfd = -1;
  delete w;
}

void CloseWatcher(Watcher* w) {
  if (w->closing) return;
  w->closing = true;
  uv_poll_stop(&w->poll);
  uv_close(reinterpret_cast<uv_handle_t*>(&w->poll), OnWatcherClosed);
}

// The env is going away (worker thread exit) while the process still runs: stop watching it.
void OnEnvCleanup(void* arg) { CloseWatcher(static_cast<Watcher*>(arg)); }

void OnPidfdReadable(uv_poll_t* h, int status, int events) {
  Watcher* w = static_cast<Watcher*>(h->data);
  if (w->closing) return;
  siginfo_t si;
  memset(&si, 0, sizeof si);
  int r = waitid(static_cast<idtype_t>(P_PIDFD), (id_t)w->state->pidfd, &si, WEXITED | WNOHANG);
  if (r == 0 && si.si_pid == 0) return;  // not yet
  if (r != 0 && errno == EINTR) return;
  int waitErr = r == 0 ? 0 : errno;
  w->state->reaped = true;
  napi_remove_env_cleanup_hook(w->env, OnEnvCleanup, w);
  Napi::Env env(w->env);
  Napi::HandleScope scope(env);
  Napi::Value code = env.Null(), sig = env.Null();
  if (waitErr == 0 && si.si_code == CLD_EXITED) code = Napi::Number::New(env, si.si_status);
  if (waitErr == 0 && si.si_code != CLD_EXITED) sig = Napi::Number::New(env, si.si_status);
  Napi::FunctionReference cb = std::move(w->onExit);
  std::unique_ptr<Napi::AsyncContext> context = std::move(w->context);
  CloseWatcher(w);
  try {
    cb.MakeCallback(env.Global(), {code, sig, Napi::Number::New(env, waitErr)}, *context);
  } catch (const Napi::Error& e) {
    napi_fatal_exception(env, e.Value());
  }
}

Napi::Object MakeProcessObject(Napi::Env env, std::shared_ptr<ProcState> state) {
  Napi::Object obj = Napi::Object::New(env);
  obj.Set("pid", state->pid);
  obj.Set("kill", Napi::Function::New(
                      env,
                      [state](const Napi::CallbackInfo& info) -> Napi::Value {
                        Napi::Env env = info.Env();
                        if (state->reaped || state->pidfd < 0) return Napi::Boolean::New(env, false);
                        int sig = info[0].As<Napi::Number>().Int32Value();
                        if (syscall(SYS_pidfd_send_signal, state->pidfd, sig, nullptr, 0) != 0) {
                          if (errno == ESRCH) return Napi::Boolean::New(env, false);
                          ThrowSystemError(env, errno, "pidfd_send_signal");
                        }
                        return Napi::Boolean::New(env, true);
                      },
                      "kill"));
  return obj;
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

// ---- the worker that clones ----

class SpawnWorker : public Napi::AsyncWorker {
 public:
  SpawnWorker(Napi::Env env, Napi::Object spec, Napi::Function onExit)
      : Napi::AsyncWorker(env, "tsbuild:spawn"), deferred_(Napi::Promise::Deferred::New(env)) {
    onExit_ = Napi::Persistent(onExit);
    Parse(spec);
  }
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override { Run(); }
  void OnOK() override;

 private:
  void Parse(Napi::Object spec);
  void BuildPlan();
  void Run();
  void Finish(int pid, int pidfd);
  void ParentFail(int err, const char* syscall, const std::string& path) {
    parentErr_ = err;
    parentSyscall_ = syscall;
    parentPath_ = path;
  }
  Napi::Error ChildFailure(Napi::Env env);

  Napi::Promise::Deferred deferred_;
  Napi::FunctionReference onExit_;

  // spec (owned copies)
  std::vector<std::string> argv_, envp_, candidates_, cgroupProcs_;
  std::vector<OwnedStep> steps_;
  std::vector<std::pair<int, std::string>> joins_;  // CLONE_NEW* type, path
  std::vector<ChildRlimit> rlimits_;
  std::vector<std::string> rlimitNames_;
  std::vector<uint32_t> groups_;
  std::vector<uint8_t> seccomp_;  // struct sock_filter[], 8 bytes each
  std::string cwd_, cgroupDir_, initPath_, initName_ = "tsbuild-init";
  bool hasCwd_ = false, hasCgroupDir_ = false, useInit_ = false, vfork_ = true;
  uint64_t cloneFlags_ = 0;
  ChildPlan plan_{};

  // pointer views for the child
  std::vector<char*> argvPtrs_, envpPtrs_, initArgvPtrs_;
  std::vector<const char*> candPtrs_;
  std::vector<ChildStep> childSteps_;
  std::vector<int> cgroupFds_, joinFds_, joinTypes_;
  std::string initFlag_ = "-x", execOnlyFlag_ = "-e", endOfOptions_ = "--";
  bool initExecOnly_ = false;
  bool wantConsole_ = false;
  int terminalFd_ = -1;

  // outcome
  int parentErr_ = 0;
  const char* parentSyscall_ = "";
  std::string parentPath_;
  bool childFailed_ = false;
  ChildError childErr_{};
  int pid_ = -1, pidfd_ = -1;
};

void SpawnWorker::Parse(Napi::Object spec) {
  argv_ = StrArray(spec.Get("argv"));
  envp_ = StrArray(spec.Get("envp"));
  candidates_ = StrArray(spec.Get("candidates"));
  cloneFlags_ = (uint64_t)Num(spec, "cloneFlags");
  vfork_ = Bool(spec, "vfork");
  if ((hasCgroupDir_ = Has(spec, "cgroupDir"))) cgroupDir_ = Str(spec.Get("cgroupDir"));
  cgroupProcs_ = StrArray(spec.Get("cgroupProcs"));
  if ((hasCwd_ = Has(spec, "cwd"))) cwd_ = Str(spec.Get("cwd"));
  if ((useInit_ = Has(spec, "initPath"))) initPath_ = Str(spec.Get("initPath"));
  initExecOnly_ = Bool(spec, "initExecOnly");

  Napi::Array joins = spec.Get("joins").As<Napi::Array>();
  for (uint32_t i = 0; i < joins.Length(); i++) {
    Napi::Object j = joins.Get(i).As<Napi::Object>();
    joins_.emplace_back((int)Num(j, "type"), Str(j.Get("path")));
  }
  Napi::Array steps = spec.Get("steps").As<Napi::Array>();
  steps_.resize(steps.Length());
  for (uint32_t i = 0; i < steps.Length(); i++) {
    Napi::Object s = steps.Get(i).As<Napi::Object>();
    OwnedStep& o = steps_[i];
    o.step.op = StepOpFromName(Str(s.Get("op")));
    o.step.optional = Bool(s, "optional");
    if (Has(s, "path")) o.path = Str(s.Get("path"));
    if ((o.hasSource = Has(s, "source"))) o.source = Str(s.Get("source"));
    if ((o.hasFstype = Has(s, "fstype"))) o.fstype = Str(s.Get("fstype"));
    if ((o.hasData = Has(s, "data"))) o.data = Str(s.Get("data"));
    o.step.flags = (unsigned long)Num(s, "flags");
    o.step.mode = (uint32_t)Num(s, "mode");
    o.step.parents = Bool(s, "parents");
    o.step.recursive = Bool(s, "recursive");
    o.step.ifMissing = Bool(s, "ifMissing");
    o.step.slot = (int32_t)Num(s, "slot", -1);
    o.step.dev = makedev((unsigned)Num(s, "major"), (unsigned)Num(s, "minor"));
    if (o.step.op == kStepConsolePty) wantConsole_ = true;
  }
  Napi::Array rl = spec.Get("rlimits").As<Napi::Array>();
  for (uint32_t i = 0; i < rl.Length(); i++) {
    Napi::Object r = rl.Get(i).As<Napi::Object>();
    rlimits_.push_back(ChildRlimit{(int)Num(r, "resource"), Limit(Num(r, "soft")), Limit(Num(r, "hard"))});
    rlimitNames_.push_back(Str(r.Get("name")));
  }

  ChildPlan& p = plan_;
  p.setIds = Bool(spec, "setIds");
  p.uid = (uint32_t)Num(spec, "uid");
  p.gid = (uint32_t)Num(spec, "gid");
  Napi::Array groups = spec.Get("groups").As<Napi::Array>();
  for (uint32_t i = 0; i < groups.Length(); i++) groups_.push_back(groups.Get(i).As<Napi::Number>().Uint32Value());
  if ((p.hasCaps = Has(spec, "caps"))) {
    Napi::Object c = spec.Get("caps").As<Napi::Object>();
    p.bounding = (uint64_t)Num(c, "bounding");
    p.effective = (uint64_t)Num(c, "effective");
    p.permitted = (uint64_t)Num(c, "permitted");
    p.inheritable = (uint64_t)Num(c, "inheritable");
    p.ambient = (uint64_t)Num(c, "ambient");
  }
  p.lastCap = (int)Num(spec, "lastCap", 40);
  p.noNewPrivs = Bool(spec, "noNewPrivs");
  if (Has(spec, "seccomp")) {
    Napi::Buffer<uint8_t> filter = spec.Get("seccomp").As<Napi::Buffer<uint8_t>>();
    seccomp_.assign(filter.Data(), filter.Data() + filter.Length());
    p.seccompFlags = (unsigned)Num(spec, "seccompFlags");
  }
  p.terminal = Bool(spec, "terminal");
  p.pdeathsig = (int)Num(spec, "pdeathsig");
  Napi::Array stdio = spec.Get("stdio").As<Napi::Array>();
  for (uint32_t i = 0; i < 3; i++) p.stdio[i] = stdio.Get(i).As<Napi::Number>().Int32Value();
  BuildPlan();
}

// Pointer views into the owned strings; nothing moves after this.
void SpawnWorker::BuildPlan() {
  for (auto& s : argv_) argvPtrs_.push_back(&s[0]);
  argvPtrs_.push_back(nullptr);
  for (auto& s : envp_) envpPtrs_.push_back(&s[0]);
  envpPtrs_.push_back(nullptr);
  for (auto& s : candidates_) candPtrs_.push_back(s.c_str());
  // The init runs as: tsbuild-init -x <resolved path> [-e] -- argv...
  initArgvPtrs_.push_back(&initName_[0]);
  initArgvPtrs_.push_back(&initFlag_[0]);
  initArgvPtrs_.push_back(nullptr);  // filled by the child
  if (initExecOnly_) initArgvPtrs_.push_back(&execOnlyFlag_[0]);
  initArgvPtrs_.push_back(&endOfOptions_[0]);
  for (auto& s : argv_) initArgvPtrs_.push_back(&s[0]);
  initArgvPtrs_.push_back(nullptr);
  for (auto& o : steps_) {
    ChildStep s = o.step;
    s.path = o.path.c_str();
    s.source = o.hasSource ? o.source.c_str() : nullptr;
    s.fstype = o.hasFstype ? o.fstype.c_str() : nullptr;
    s.data = o.hasData ? o.data.c_str() : nullptr;
    s.dataLen = o.source.size();
    childSteps_.push_back(s);
  }
  ChildPlan& p = plan_;
  p.argv = argvPtrs_.data();
  p.envp = envpPtrs_.data();
  p.candidates = candPtrs_.data();
  p.ncandidates = (int)candPtrs_.size();
  p.memfd = -1;
  p.initArgv = initArgvPtrs_.data();
  p.initPathSlot = 2;
  p.steps = childSteps_.data();
  p.nsteps = (int)childSteps_.size();
  p.rlimits = rlimits_.data();
  p.nrlimits = (int)rlimits_.size();
  p.seccompFilter = seccomp_.empty() ? nullptr : seccomp_.data();
  p.seccompLen = (unsigned short)(seccomp_.size() / 8);
  p.groups = groups_.data();
  p.ngroups = (int)groups_.size();
  p.cwd = hasCwd_ ? cwd_.c_str() : nullptr;
  p.errfd = -1;
  p.consoleSock = -1;
}

void CloseAll(std::vector<int>& fds) {
  for (int fd : fds)
    if (fd >= 0) close(fd);
  fds.clear();
}

// Runs on a libuv pool thread: open what the child needs, clone, learn whether execve happened.
void SpawnWorker::Run() {
  ChildPlan& p = plan_;
  for (auto& path : cgroupProcs_) {
    int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
      ParentFail(errno, "open", path);
      CloseAll(cgroupFds_);
      return;
    }
    cgroupFds_.push_back(fd);
  }
  int pidJoinFd = -1;
  for (auto& j : joins_) {
    int fd = open(j.second.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      ParentFail(errno, "open", j.second);
      CloseAll(cgroupFds_);
      CloseAll(joinFds_);
      if (pidJoinFd >= 0) close(pidJoinFd);
      return;
    }
    // A pid namespace applies to children of the caller, so it is joined here, around clone.
    if (j.first == CLONE_NEWPID) {
      pidJoinFd = fd;
      continue;
    }
    joinFds_.push_back(fd);
    joinTypes_.push_back(j.first);
  }
  auto cleanup = [&](int cgroupDirFd, int selfPidNs, void* stack, int errR, int errW) {
    CloseAll(cgroupFds_);
    CloseAll(joinFds_);
    if (pidJoinFd >= 0) close(pidJoinFd);
    if (cgroupDirFd >= 0) close(cgroupDirFd);
    if (selfPidNs >= 0) close(selfPidNs);
    if (stack) munmap(stack, kChildStackSize);
    if (errR >= 0) close(errR);
    if (errW >= 0) close(errW);
  };
  int cgroupDirFd = -1;
  if (hasCgroupDir_) {
    cgroupDirFd = open(cgroupDir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (cgroupDirFd < 0) {
      ParentFail(errno, "open", cgroupDir_);
      return cleanup(-1, -1, nullptr, -1, -1);
    }
  }
  if (useInit_) {
    const char* what = "";
    int mfd = InitMemfd(initPath_, &what);
    if (mfd < 0) {
      ParentFail(-mfd, what, initPath_);
      return cleanup(cgroupDirFd, -1, nullptr, -1, -1);
    }
    p.memfd = mfd;
  }
  int selfPidNs = -1;
  if (pidJoinFd >= 0) {
    selfPidNs = open("/proc/thread-self/ns/pid", O_RDONLY | O_CLOEXEC);
    if (selfPidNs < 0) {
      ParentFail(errno, "open", "/proc/thread-self/ns/pid");
      return cleanup(cgroupDirFd, -1, nullptr, -1, -1);
    }
  }
  void* stack = nullptr;
  if (vfork_) {
    stack = mmap(nullptr, kChildStackSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK | MAP_NORESERVE,
                 -1, 0);
    if (stack == MAP_FAILED) {
      ParentFail(errno, "mmap", "");
      return cleanup(cgroupDirFd, selfPidNs, nullptr, -1, -1);
    }
    mprotect(stack, 4096, PROT_NONE);  // guard page
  }
  int errPipe[2];
  if (pipe2(errPipe, O_CLOEXEC) != 0) {
    ParentFail(errno, "pipe2", "");
    return cleanup(cgroupDirFd, selfPidNs, stack, -1, -1);
  }
  int console[2] = {-1, -1};
  if (wantConsole_ && socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, console) != 0) {
    ParentFail(errno, "socketpair", "");
    return cleanup(cgroupDirFd, selfPidNs, stack, errPipe[0], errPipe[1]);
  }
  p.consoleSock = console[1];
  p.errfd = errPipe[1];
  p.cgroupProcsFds = cgroupFds_.data();
  p.ncgroupProcs = (int)cgroupFds_.size();
  p.joinFds = joinFds_.data();
  p.joinTypes = joinTypes_.data();
  p.njoins = (int)joinFds_.size();
  p.nonDumpable = !vfork_;  // a CLONE_VM child shares the parent's mm, whose dumpable flag this is
  p.expectedPpid = (cloneFlags_ & CLONE_NEWPID) || pidJoinFd >= 0 ? 0 : getpid();

  int pidfd = -1;
  struct clone_args args;
  memset(&args, 0, sizeof args);
  args.flags = cloneFlags_ | CLONE_PIDFD;
  args.pidfd = (uint64_t)(uintptr_t)&pidfd;
  args.exit_signal = SIGCHLD;
  if (cgroupDirFd >= 0) {
    args.flags |= CLONE_INTO_CGROUP;
    args.cgroup = (uint64_t)cgroupDirFd;
  }
  if (vfork_) {
    args.flags |= CLONE_VM | CLONE_VFORK;
    args.stack = (uint64_t)(uintptr_t)stack;
    args.stack_size = kChildStackSize;
  }
  if (pidJoinFd >= 0 && setns(pidJoinFd, CLONE_NEWPID) != 0) {
    ParentFail(errno, "setns", joins_.empty() ? "" : "pid namespace");
    return cleanup(cgroupDirFd, selfPidNs, stack, errPipe[0], errPipe[1]);
  }
  // Blocked signals keep Node's handlers from running in the child before it resets them.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  // A CLONE_VM child that changes its uid makes the shared mm (Node's) non-dumpable (commit_creds):
  // give Node its flag back once the child has exec'd into its own mm.
  int wasDumpable = vfork_ ? prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) : -1;
  long pid = vfork_ ? Clone3OnStack(&args, ChildEntry, &plan_) : Clone3Fork(&args, &plan_);
  if (wasDumpable > 0 && prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != wasDumpable) prctl(PR_SET_DUMPABLE, wasDumpable, 0, 0, 0);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (pidJoinFd >= 0) setns(selfPidNs, CLONE_NEWPID);
  close(errPipe[1]);
  errPipe[1] = -1;
  if (pid < 0) {
    ParentFail((int)-pid, "clone3", "");
    return cleanup(cgroupDirFd, selfPidNs, stack, errPipe[0], -1);
  }
  // EOF: execve succeeded (the pipe is O_CLOEXEC). A record: the child failed and exits.
  ChildError rec;
  ssize_t n;
  do n = read(errPipe[0], &rec, sizeof rec);
  while (n < 0 && errno == EINTR);
  if (n == (ssize_t)sizeof rec) {
    childFailed_ = true;
    childErr_ = rec;
  } else if (n != 0) {
    ParentFail(n < 0 ? errno : EIO, "read", "spawn error pipe");
  }
  if (console[1] >= 0) close(console[1]);
  if (console[0] >= 0 && !childFailed_ && !parentErr_) {
    terminalFd_ = ReceiveFd(console[0]);
    if (terminalFd_ < 0) ParentFail(-terminalFd_, "recvmsg", "console socket");
  }
  if (console[0] >= 0) close(console[0]);
  if (childFailed_ || parentErr_) {
    // Kill first: after a parent-side failure the child may have exec'd already.
    if (!childFailed_) syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, nullptr, 0);
    siginfo_t si;
    while (waitid(static_cast<idtype_t>(P_PIDFD), (id_t)pidfd, &si, WEXITED) != 0 && errno == EINTR) {
    }
    close(pidfd);
  } else {
    pid_ = (int)pid;
    pidfd_ = pidfd;
  }
  cleanup(cgroupDirFd, selfPidNs, stack, errPipe[0], -1);
}

std::string Quote(const std::string& s) { return "\"" + s + "\""; }

Napi::Error SpawnWorker::ChildFailure(Napi::Env env) {
  const ChildError& e = childErr_;
  int sc = e.syscall >= 0 && e.syscall < kSysCount ? e.syscall : 0;
  std::string syscall = kSyscallNames[sc];
  std::string what, path, stepName;
  int exitCode = 125;
  switch (e.phase) {
    case kPhaseExec: {
      path = e.index >= 0 && e.index < (int)candidates_.size() ? candidates_[e.index]
                                                                 : (argv_.empty() ? "" : argv_[0]);
      what = syscall + " " + Quote(path);
      if (e.index < 0) what += " (not found in the container's PATH)";
      exitCode = (e.err == ENOENT || e.err == ENOTDIR) ? 127 : 126;
      break;
    }
    case kPhaseStep: {
      const OwnedStep& s = steps_[e.index];
      stepName = kStepNames[s.step.op];
      path = s.path;
      what = "setup step " + std::to_string(e.index) + " (" + stepName;
      if (s.step.op == kStepMount || s.step.op == kStepBindRemount) {
        if (s.hasFstype) what += " " + s.fstype;
        if (s.hasSource) what += " " + Quote(s.source);
        what += " on";
      } else if (s.step.op == kStepOpenTree) {
        path = s.source;
      }
      what += " " + Quote(path) + "): " + syscall;
      if (sc == kSysNotDevNull) what += " (/dev/null is not the null device 1:3)";
      break;
    }
    case kPhaseSetns:
      for (auto& j : joins_)
        if (e.index >= 0 && e.index < (int)joinTypes_.size() && j.first == joinTypes_[e.index]) path = j.second;
      what = "setns " + Quote(path);
      break;
    case kPhaseCgroup:
      path = e.index < (int)cgroupProcs_.size() ? cgroupProcs_[e.index] : "";
      what = "joining cgroup " + Quote(path);
      break;
    case kPhaseRlimit:
      what = "setting rlimit " + (e.index < (int)rlimitNames_.size() ? rlimitNames_[e.index] : std::string("?"));
      break;
    case kPhaseCwd:
      path = hasCwd_ ? cwd_ : "";
      what = sc == kSysCwdOutside ? "the working directory " + Quote(path) + " is outside the container root"
                                  : syscall + " to the working directory " + Quote(path);
      break;
    case kPhaseStdio:
      what = "setting up stdio fd " + std::to_string(e.index);
      break;
    case kPhaseIds:
      what = "switching to uid " + std::to_string(plan_.uid) + " gid " + std::to_string(plan_.gid) + ": " + syscall;
      break;
    case kPhaseCaps:
      what = "setting capabilities: " + syscall;
      break;
    case kPhaseTerminal:
      what = "making stdin the controlling terminal: " + syscall;
      break;
    case kPhaseNoNewPrivs:
      what = "setting no_new_privs";
      break;
    case kPhaseDeathSignal:
      what = "setting the parent-death signal";
      break;
    case kPhaseSeccomp:
      what = "installing the seccomp filter";
      break;
    default:
      what = "setting up the child: " + syscall;
  }
  std::string msg = what + ": " + ErrnoName(e.err) + " (" + strerror(e.err) + ")";
  Napi::Error err = Napi::Error::New(env, msg);
  err.Set("code", Napi::String::New(env, ErrnoName(e.err)));
  err.Set("errno", Napi::Number::New(env, e.err));
  err.Set("syscall", Napi::String::New(env, syscall));
  if (!path.empty()) err.Set("path", Napi::String::New(env, path));
  if (e.phase == kPhaseStep) {
    err.Set("step", Napi::Number::New(env, e.index));
    err.Set("stepName", Napi::String::New(env, stepName));
  }
  err.Set("exitCode", Napi::Number::New(env, exitCode));
  return err;
}

void SpawnWorker::OnOK() {
  Napi::Env env = Env();
  if (parentErr_) {
    Napi::Error err = SystemError(env, parentErr_, parentSyscall_, parentPath_);
    err.Set("exitCode", Napi::Number::New(env, 125));
    deferred_.Reject(err.Value());
    return;
  }
  if (childFailed_) {
    deferred_.Reject(ChildFailure(env).Value());
    return;
  }
  auto state = std::make_shared<ProcState>();
  state->pid = pid_;
  state->pidfd = pidfd_;
  uv_loop_t* loop = nullptr;
  napi_get_uv_event_loop(env, &loop);
  Watcher* w = new Watcher();
  w->env = env;
  w->state = state;
  w->onExit = std::move(onExit_);
  w->context = std::make_unique<Napi::AsyncContext>(env, "tsbuild:process");
  w->poll.data = w;
  int r = uv_poll_init(loop, &w->poll, pidfd_);
  bool initialized = r == 0;
  if (r == 0) r = uv_poll_start(&w->poll, UV_READABLE, OnPidfdReadable);
  if (r != 0) {
    // Cannot watch it: do not leave it running unobserved.
    syscall(SYS_pidfd_send_signal, pidfd_, SIGKILL, nullptr, 0);
    siginfo_t si;
    waitid(static_cast<idtype_t>(P_PIDFD), (id_t)pidfd_, &si, WEXITED);
    state->reaped = true;
    if (initialized) {
      CloseWatcher(w);  // closes the pidfd
    } else {
      close(pidfd_);
      state->pidfd = -1;
      delete w;
    }
    deferred_.Reject(SystemError(env, -r, "uv_poll_start").Value());
    return;
  }
  napi_add_env_cleanup_hook(env, OnEnvCleanup, w);
  Napi::Object proc = MakeProcessObject(env, state);
  if (terminalFd_ >= 0) proc.Set("terminalFd", terminalFd_);
  deferred_.Resolve(proc);
}

// spawn(spec, onExit(exitCode|null, signal|null, waitErrno)) -> Promise<{pid, kill(signo)}>
Napi::Value Spawn(const Napi::CallbackInfo& info) {
  auto* worker = new SpawnWorker(info.Env(), info[0].As<Napi::Object>(), info[1].As<Napi::Function>());
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

// getrlimit(resource) -> [soft, hard], Infinity for RLIM_INFINITY (TS clamps requested limits to these).
Napi::Value GetRlimit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  struct rlimit rl;
  if (getrlimit((__rlimit_resource_t)info[0].As<Napi::Number>().Int32Value(), &rl) != 0)
    ThrowSystemError(env, errno, "getrlimit");
  auto num = [&](rlim_t v) {
    return Napi::Number::New(env, v == RLIM_INFINITY ? INFINITY : (double)v);
  };
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, num(rl.rlim_cur));
  out.Set(1u, num(rl.rlim_max));
  return out;
}

// setCloexec(fd, on): fds handed to children must not be CLOEXEC only if passed by number (e.g. to
// a host helper); spawn itself dup2s stdio, so this is for callers and tests.
Napi::Value SetCloexec(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  bool on = info[1].ToBoolean().Value();
  int flags = fcntl(fd, F_GETFD);
  if (flags < 0) ThrowSystemError(env, errno, "fcntl");
  flags = on ? (flags | FD_CLOEXEC) : (flags & ~FD_CLOEXEC);
  if (fcntl(fd, F_SETFD, flags) != 0) ThrowSystemError(env, errno, "fcntl");
  return env.Undefined();
}

}  // namespace

void InitSpawn(Napi::Env env, Napi::Object exports) {
  exports.Set("spawn", Napi::Function::New(env, Spawn, "spawn"));
  exports.Set("getrlimit", Napi::Function::New(env, GetRlimit, "getrlimit"));
  exports.Set("setCloexec", Napi::Function::New(env, SetCloexec, "setCloexec"));
}

}  // namespace tsb
