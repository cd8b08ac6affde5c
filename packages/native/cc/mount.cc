// Mount and namespace syscalls: mount(2)/umount2, the new mount API (fsopen/fsconfig/fsmount/move_mount),
// pivot_root, chroot, unshare, setns, sethostname. Flags arrive as numbers computed in TypeScript.
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "args.h"
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

// mount(source|null, target, fstype|null, flags, data|null)
Napi::Value Mount(const Napi::CallbackInfo& info) {
  auto source = OptStr(info[0]), type = OptStr(info[2]), data = OptStr(info[4]);
  std::string target = Str(info[1]);
  unsigned long flags = static_cast<unsigned long>(Int64(info[3]));
  if (mount(CStrOrNull(source), target.c_str(), CStrOrNull(type), flags, CStrOrNull(data)) != 0) {
    std::string detail = source ? "source '" + *source + "'" : "";
    if (type) detail = Joined(detail, "type " + *type);
    ThrowSystemError(info.Env(), errno, "mount", target, detail);
  }
  return info.Env().Undefined();
}

// umount(target, flags): umount2 with MNT_DETACH/MNT_FORCE/UMOUNT_NOFOLLOW.
Napi::Value Umount(const Napi::CallbackInfo& info) {
  std::string target = Str(info[0]);
  if (umount2(target.c_str(), Int(info[1])) != 0) ThrowSystemError(info.Env(), errno, "umount2", target);
  return info.Env().Undefined();
}

// fsconfigProbe(fstype, key, value): whether fsopen(fstype) accepts this string parameter (for example
// overlay's "lowerdir+", new in Linux 6.7). Never mounts anything.
Napi::Value FsconfigProbe(const Napi::CallbackInfo& info) {
  std::string fstype = Str(info[0]), key = Str(info[1]), value = Str(info[2]);
  Fd fsfd(Fsopen(fstype.c_str()));
  bool ok = fsfd.ok() && Fsconfig(fsfd.get(), kFsconfigSetString, key.c_str(), value.c_str()) == 0;
  return Napi::Boolean::New(info.Env(), ok);
}

// fsmount(fstype, keys[], values[], attrFlags, target): fsopen, one fsconfig per key (a null value sets
// a flag), create the superblock, fsmount with MOUNT_ATTR_* flags, move_mount onto target.
Napi::Value FsMount(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string fstype = Str(info[0]), target = Str(info[4]);
  auto keys = info[1].As<Napi::Array>(), values = info[2].As<Napi::Array>();
  unsigned attrs = Uint(info[3]);

  Fd fsfd(Fsopen(fstype.c_str()));
  if (!fsfd.ok()) ThrowSystemError(env, errno, "fsopen", target, fstype);
  uint32_t count = keys.Length();
  for (uint32_t i = 0; i < count; i++) {
    std::string key = Str(keys.Get(i));
    auto value = OptStr(values.Get(i));
    unsigned cmd = value ? kFsconfigSetString : kFsconfigSetFlag;
    if (Fsconfig(fsfd.get(), cmd, key.c_str(), CStrOrNull(value)) != 0) {
      int err = errno;
      std::string what = value ? key + "=" + *value : key;
      ThrowSystemError(env, err, "fsconfig", target, Joined(fstype + " option " + what, KernelLog(fsfd.get())));
    }
  }
  if (Fsconfig(fsfd.get(), kFsconfigCmdCreate, nullptr, nullptr) != 0) {
    int err = errno;
    std::string log = KernelLog(fsfd.get());
    if (log.empty()) log = "the kernel gave no reason here; dmesg may have one";
    ThrowSystemError(env, err, "fsconfig", target, "creating the " + fstype + " superblock: " + log);
  }
  Fd mfd(syscall(SYS_fsmount, fsfd.get(), kFsmountCloexec, attrs));
  if (!mfd.ok()) ThrowSystemError(env, errno, "fsmount", target, KernelLog(fsfd.get()));
  if (syscall(SYS_move_mount, mfd.get(), "", AT_FDCWD, target.c_str(), kMoveMountFEmptyPath) != 0)
    ThrowSystemError(env, errno, "move_mount", target);
  return env.Undefined();
}

Napi::Value PivotRoot(const Napi::CallbackInfo& info) {
  std::string newRoot = Str(info[0]), putOld = Str(info[1]);
  if (syscall(SYS_pivot_root, newRoot.c_str(), putOld.c_str()) != 0)
    ThrowSystemError(info.Env(), errno, "pivot_root", newRoot, "put_old '" + putOld + "'");
  return info.Env().Undefined();
}

Napi::Value Chroot(const Napi::CallbackInfo& info) {
  std::string path = Str(info[0]);
  if (chroot(path.c_str()) != 0) ThrowSystemError(info.Env(), errno, "chroot", path);
  return info.Env().Undefined();
}

Napi::Value Sethostname(const Napi::CallbackInfo& info) {
  std::string name = Str(info[0]);
  if (sethostname(name.data(), name.size()) != 0) ThrowSystemError(info.Env(), errno, "sethostname", "", name);
  return info.Env().Undefined();
}

// unshare(cloneFlags): affects the calling thread only (see src/mount.ts).
Napi::Value Unshare(const Napi::CallbackInfo& info) {
  if (unshare(Int(info[0])) != 0) ThrowSystemError(info.Env(), errno, "unshare");
  return info.Env().Undefined();
}

// setns(fd | path, nstype). Joining a mount namespace needs an fs_struct of our own: Node's threads share
// one, so the calling thread first unshares CLONE_FS (it keeps its cwd and root, only unshared).
Napi::Value Setns(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int nstype = Int(info[1]);
  std::string path = info[0].IsString() ? Str(info[0]) : "";
  Fd opened(path.empty() ? -1 : open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!path.empty() && !opened.ok()) ThrowSystemError(env, errno, "open", path);
  int fd = path.empty() ? Int(info[0]) : opened.get();
  if ((nstype == 0 || (nstype & CLONE_NEWNS)) && unshare(CLONE_FS) != 0) ThrowSystemError(env, errno, "unshare", path);
  if (setns(fd, nstype) != 0) ThrowSystemError(env, errno, "setns", path);
  return env.Undefined();
}

}  // namespace

void InitMount(Napi::Env env, Napi::Object exports) {
  Register(env, exports,
           {{"mount", Mount}, {"umount", Umount}, {"fsconfigProbe", FsconfigProbe}, {"fsmount", FsMount},
            {"pivotRoot", PivotRoot}, {"chroot", Chroot}, {"sethostname", Sethostname}, {"unshare", Unshare},
            {"setns", Setns}});
}

}  // namespace tsb
