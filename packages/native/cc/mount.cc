// Mount and namespace syscalls: mount(2)/umount2, the new mount API (fsopen/fsconfig/fsmount/move_mount),
// pivot_root, chroot, unshare, setns, sethostname. Flags arrive as numbers computed in TypeScript.
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <optional>
#include <string>
#include <vector>

#include "args.h"
#include "async.h"
#include "errors.h"
#include "module.h"

// glibc 2.36 wrappers and constants are not everywhere yet: use raw syscalls and our own constants
// (values from the kernel UAPI, linux/mount.h).
#ifndef SYS_move_mount
#define SYS_move_mount 429
#endif
#ifndef SYS_fsopen
#define SYS_fsopen 430
#endif
#ifndef SYS_fsconfig
#define SYS_fsconfig 431
#endif
#ifndef SYS_fsmount
#define SYS_fsmount 432
#endif
#ifndef SYS_pivot_root
#define SYS_pivot_root 155
#endif

namespace tsb {
namespace {

constexpr unsigned kFsopenCloexec = 0x1;
constexpr unsigned kFsconfigSetFlag = 0;
constexpr unsigned kFsconfigSetString = 1;
constexpr unsigned kFsconfigCmdCreate = 6;
constexpr unsigned kFsmountCloexec = 0x1;
constexpr unsigned kMoveMountFEmptyPath = 0x4;

int Fsopen(const char* fstype) { return syscall(SYS_fsopen, fstype, kFsopenCloexec); }
int Fsconfig(int fd, unsigned cmd, const char* key, const char* value) {
  return syscall(SYS_fsconfig, fd, cmd, key, value, 0);
}

// After a failed fsconfig the kernel queues messages on the context fd ("e overlay: too many lower
// directories, limit is 500"); each read returns one. Joined, they explain the errno.
std::string KernelLog(int fsfd) {
  std::string log;
  char line[1024];
  for (;;) {
    ssize_t n = read(fsfd, line, sizeof line);
    if (n <= 0) break;
    std::string msg(line, n);
    while (!msg.empty() && msg.back() == '\n') msg.pop_back();
    if (msg.size() > 2 && msg[1] == ' ') msg.erase(0, 2);  // drop the "e "/"w "/"i " severity prefix
    if (!log.empty()) log += "; ";
    log += msg;
  }
  return log;
}

std::string Joined(const std::string& a, const std::string& b) {
  if (a.empty()) return b;
  if (b.empty()) return a;
  return a + ": " + b;
}

// The blocking calls, written once as functions of clean values returning a Failure; each is exported
// twice: `name` (a promise, on a libuv pool thread) and `nameSync` (on the JS thread).

struct MountArgs {
  std::optional<std::string> source, type, data;
  std::string target;
  unsigned long flags;
};

Failure DoMount(const MountArgs& a) {
  if (mount(CStrOrNull(a.source), a.target.c_str(), CStrOrNull(a.type), a.flags, CStrOrNull(a.data)) == 0) return {};
  int err = errno;
  std::string detail = a.source ? "source '" + *a.source + "'" : "";
  if (a.type) detail = Joined(detail, "type " + *a.type);
  return {err, "mount", a.target, detail};
}

// mount(source|null, target, fstype|null, flags, data|null)
MountArgs ReadMountArgs(const Napi::CallbackInfo& info, const char* fn) {
  Args args(info, fn);
  return {args.Nullable<std::string>(0, "source"), args.Nullable<std::string>(2, "type"),
          args.Nullable<std::string>(4, "data"), args.Get<std::string>(1, "target"),
          static_cast<unsigned long>(args.Get<int64_t>(3, "flags"))};
}
Napi::Value Mount(const Napi::CallbackInfo& info) {
  MountArgs a = ReadMountArgs(info, "mount");
  return SyscallWorker::Queue(info.Env(), "tsbuild:mount", [a] { return DoMount(a); });
}
Napi::Value MountSync(const Napi::CallbackInfo& info) {
  MountArgs a = ReadMountArgs(info, "mountSync");
  return SyscallWorker::RunNow(info.Env(), [&a] { return DoMount(a); });
}

// umount(target, flags): umount2 with MNT_DETACH/MNT_FORCE/UMOUNT_NOFOLLOW.
Failure DoUmount(const std::string& target, int flags) {
  if (umount2(target.c_str(), flags) == 0) return {};
  return {errno, "umount2", target, ""};
}
Napi::Value Umount(const Napi::CallbackInfo& info) {
  Args args(info, "umount");
  std::string target = args.Get<std::string>(0, "target");
  int flags = args.Get<int32_t>(1, "flags");
  return SyscallWorker::Queue(info.Env(), "tsbuild:umount", [target, flags] { return DoUmount(target, flags); });
}
Napi::Value UmountSync(const Napi::CallbackInfo& info) {
  Args args(info, "umountSync");
  std::string target = args.Get<std::string>(0, "target");
  int flags = args.Get<int32_t>(1, "flags");
  return SyscallWorker::RunNow(info.Env(), [&] { return DoUmount(target, flags); });
}

// fsconfigProbe(fstype, key, value): whether fsopen(fstype) accepts this string parameter (for example
// overlay's "lowerdir+", new in Linux 6.7). Never mounts anything.
Napi::Value FsconfigProbe(const Napi::CallbackInfo& info) {
  Args args(info, "fsconfigProbe");
  std::string fstype = args.Get<std::string>(0, "fstype"), key = args.Get<std::string>(1, "key"),
              value = args.Get<std::string>(2, "value");
  Fd fsfd(Fsopen(fstype.c_str()));
  bool ok = fsfd.ok() && Fsconfig(fsfd.get(), kFsconfigSetString, key.c_str(), value.c_str()) == 0;
  return Napi::Boolean::New(info.Env(), ok);
}

struct FsMountArgs {
  std::string fstype;
  std::vector<std::string> keys;
  std::vector<std::optional<std::string>> values;  // nullopt: a flag
  unsigned attrs;
  std::string target;
};

// fsopen, one fsconfig per key (a null value sets a flag), create the superblock, fsmount with
// MOUNT_ATTR_* flags, move_mount onto target. errno is saved before the kernel log is read.
Failure DoFsMount(const FsMountArgs& a) {
  Fd fsfd(Fsopen(a.fstype.c_str()));
  if (!fsfd.ok()) return {errno, "fsopen", a.target, a.fstype};
  for (size_t i = 0; i < a.keys.size(); i++) {
    const std::string& key = a.keys[i];
    const std::optional<std::string>& value = a.values[i];
    unsigned cmd = value ? kFsconfigSetString : kFsconfigSetFlag;
    if (Fsconfig(fsfd.get(), cmd, key.c_str(), CStrOrNull(value)) != 0) {
      int err = errno;
      std::string what = value ? key + "=" + *value : key;
      return {err, "fsconfig", a.target, Joined(a.fstype + " option " + what, KernelLog(fsfd.get()))};
    }
  }
  if (Fsconfig(fsfd.get(), kFsconfigCmdCreate, nullptr, nullptr) != 0) {
    int err = errno;
    std::string log = KernelLog(fsfd.get());
    if (log.empty()) log = "the kernel gave no reason here; dmesg may have one";
    return {err, "fsconfig", a.target, "creating the " + a.fstype + " superblock: " + log};
  }
  Fd mfd(syscall(SYS_fsmount, fsfd.get(), kFsmountCloexec, a.attrs));
  if (!mfd.ok()) {
    int err = errno;
    return {err, "fsmount", a.target, KernelLog(fsfd.get())};
  }
  if (syscall(SYS_move_mount, mfd.get(), "", AT_FDCWD, a.target.c_str(), kMoveMountFEmptyPath) != 0)
    return {errno, "move_mount", a.target, ""};
  return {};
}

// fsmount(fstype, keys[], values[], attrFlags, target)
FsMountArgs ReadFsMountArgs(const Napi::CallbackInfo& info, const char* fn) {
  Args args(info, fn);
  FsMountArgs a{args.Get<std::string>(0, "fstype"), args.List<std::string>(1, "keys"),
                args.NullableList<std::string>(2, "values"), args.Get<uint32_t>(3, "attrFlags"),
                args.Get<std::string>(4, "target")};
  if (a.keys.size() != a.values.size())
    throw Napi::TypeError::New(info.Env(), std::string(fn) + ": keys and values must have the same length");
  return a;
}
Napi::Value FsMount(const Napi::CallbackInfo& info) {
  FsMountArgs a = ReadFsMountArgs(info, "fsmount");
  return SyscallWorker::Queue(info.Env(), "tsbuild:fsmount", [a] { return DoFsMount(a); });
}
Napi::Value FsMountSync(const Napi::CallbackInfo& info) {
  FsMountArgs a = ReadFsMountArgs(info, "fsmountSync");
  return SyscallWorker::RunNow(info.Env(), [&a] { return DoFsMount(a); });
}

// The calls below change the calling thread's (or process's) root, namespaces or hostname: they must
// run on the JS thread itself, never on a pool thread, so they stay synchronous.

Napi::Value PivotRoot(const Napi::CallbackInfo& info) {
  Args args(info, "pivotRoot");
  std::string newRoot = args.Get<std::string>(0, "newRoot"), putOld = args.Get<std::string>(1, "putOld");
  if (syscall(SYS_pivot_root, newRoot.c_str(), putOld.c_str()) != 0) {
    int err = errno;
    ThrowSystemError(info.Env(), err, "pivot_root", newRoot, "put_old '" + putOld + "'");
  }
  return info.Env().Undefined();
}

Napi::Value Chroot(const Napi::CallbackInfo& info) {
  std::string path = Args(info, "chroot").Get<std::string>(0, "path");
  if (chroot(path.c_str()) != 0) ThrowSystemError(info.Env(), errno, "chroot", path);
  return info.Env().Undefined();
}

Napi::Value Sethostname(const Napi::CallbackInfo& info) {
  std::string name = Args(info, "sethostname").Get<std::string>(0, "name");
  if (sethostname(name.data(), name.size()) != 0) ThrowSystemError(info.Env(), errno, "sethostname", "", name);
  return info.Env().Undefined();
}

// unshare(cloneFlags): affects the calling thread only (see src/mount.ts).
Napi::Value Unshare(const Napi::CallbackInfo& info) {
  if (unshare(Args(info, "unshare").Get<int32_t>(0, "flags")) != 0) ThrowSystemError(info.Env(), errno, "unshare");
  return info.Env().Undefined();
}

// setns(fd | path, nstype). Joining a mount namespace needs an fs_struct of our own: Node's threads share
// one, so the calling thread first unshares CLONE_FS (it keeps its cwd and root, only unshared).
Napi::Value Setns(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Args args(info, "setns");
  int nstype = args.Get<int32_t>(1, "nstype");
  std::string path = info[0].IsString() ? args.Get<std::string>(0, "pathOrFd") : "";
  Fd opened(path.empty() ? -1 : open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!path.empty() && !opened.ok()) ThrowSystemError(env, errno, "open", path);
  int fd = path.empty() ? args.Get<int32_t>(0, "pathOrFd") : opened.get();
  if ((nstype == 0 || (nstype & CLONE_NEWNS)) && unshare(CLONE_FS) != 0) ThrowSystemError(env, errno, "unshare", path);
  if (setns(fd, nstype) != 0) ThrowSystemError(env, errno, "setns", path);
  return env.Undefined();
}

}  // namespace

void InitMount(Napi::Env env, Napi::Object exports) {
  Register(env, exports,
           {{"mount", Mount}, {"mountSync", MountSync}, {"umount", Umount}, {"umountSync", UmountSync},
            {"fsconfigProbe", FsconfigProbe}, {"fsmount", FsMount}, {"fsmountSync", FsMountSync},
            {"pivotRoot", PivotRoot}, {"chroot", Chroot}, {"sethostname", Sethostname}, {"unshare", Unshare},
            {"setns", Setns}});
}

}  // namespace tsb
