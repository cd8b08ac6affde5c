// File-level syscalls Node lacks: mknod, l*xattr (binary safe), statfs, flock, pipe2, pseudo-terminals.
// Waiting for a lock can take any time, so flockWait runs on the pool. The rest stay on the calling
// thread: metadata calls made per file inside the tar codec's loops, like the fs.*Sync calls beside them.
#include <fcntl.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "args.h"
#include "async.h"
#include "errors.h"
#include "module.h"

namespace tsb {
namespace {

// XATTR_SIZE_MAX and XATTR_LIST_MAX are both 64 KiB: one read into a buffer this size never gets ERANGE.
constexpr size_t kXattrMax = 65536;

char* XattrScratch() {
  thread_local std::vector<char> buf(kXattrMax);
  return buf.data();
}

// mknod(path, mode, major, minor): mode already carries the S_IF* type bits.
Napi::Value Mknod(const Napi::CallbackInfo& info) {
  Args args(info, "mknod");
  std::string path = args.Get<PathBytes>(0, "path").bytes;
  dev_t dev = makedev(args.Get<uint32_t>(2, "major"), args.Get<uint32_t>(3, "minor"));
  if (mknod(path.c_str(), args.Get<uint32_t>(1, "mode"), dev) != 0) ThrowSystemError(info.Env(), errno, "mknod", path);
  return info.Env().Undefined();
}

// lgetxattr(path, name): Buffer, or null when the attribute does not exist.
Napi::Value Lgetxattr(const Napi::CallbackInfo& info) {
  Args args(info, "lgetxattr");
  std::string path = args.Get<PathBytes>(0, "path").bytes, name = args.Get<std::string>(1, "name");
  char* buf = XattrScratch();
  ssize_t n = lgetxattr(path.c_str(), name.c_str(), buf, kXattrMax);
  if (n < 0) {
    if (errno == ENODATA) return info.Env().Null();
    ThrowSystemError(info.Env(), errno, "lgetxattr", path, name);
  }
  return Napi::Buffer<char>::Copy(info.Env(), buf, n);
}

// lsetxattr(path, name, value: Buffer, flags: 0 | XATTR_CREATE | XATTR_REPLACE)
Napi::Value Lsetxattr(const Napi::CallbackInfo& info) {
  Args args(info, "lsetxattr");
  std::string path = args.Get<PathBytes>(0, "path").bytes, name = args.Get<std::string>(1, "name");
  auto value = args.Get<Napi::Buffer<uint8_t>>(2, "value");
  if (lsetxattr(path.c_str(), name.c_str(), value.Data(), value.Length(), args.Get<int32_t>(3, "flags")) != 0)
    ThrowSystemError(info.Env(), errno, "lsetxattr", path, name);
  return info.Env().Undefined();
}

// llistxattr(path): the kernel's NUL-separated name list as one string; TypeScript splits it.
Napi::Value Llistxattr(const Napi::CallbackInfo& info) {
  std::string path = Args(info, "llistxattr").Get<PathBytes>(0, "path").bytes;
  char* buf = XattrScratch();
  ssize_t n = llistxattr(path.c_str(), buf, kXattrMax);
  if (n < 0) ThrowSystemError(info.Env(), errno, "llistxattr", path);
  return Napi::String::New(info.Env(), buf, n);
}

Napi::Value Lremovexattr(const Napi::CallbackInfo& info) {
  Args args(info, "lremovexattr");
  std::string path = args.Get<PathBytes>(0, "path").bytes, name = args.Get<std::string>(1, "name");
  if (lremovexattr(path.c_str(), name.c_str()) != 0) ThrowSystemError(info.Env(), errno, "lremovexattr", path, name);
  return info.Env().Undefined();
}

// statfs(path): the filesystem magic (f_type); TypeScript names it.
Napi::Value Statfs(const Napi::CallbackInfo& info) {
  std::string path = Args(info, "statfs").Get<std::string>(0, "path");
  struct statfs st;
  if (statfs(path.c_str(), &st) != 0) ThrowSystemError(info.Env(), errno, "statfs", path);
  return Napi::Number::New(info.Env(), static_cast<uint32_t>(st.f_type));
}

int FlockRetrying(int fd, int op) {
  int rc;
  do rc = flock(fd, op);
  while (rc != 0 && errno == EINTR);
  return rc == 0 ? 0 : errno;
}

// flock(fd, op): true when done; false when op has LOCK_NB and another description holds the lock.
Napi::Value Flock(const Napi::CallbackInfo& info) {
  Args args(info, "flock");
  int err = FlockRetrying(args.Get<int32_t>(0, "fd"), args.Get<int32_t>(1, "op"));
  if (err == EWOULDBLOCK) return Napi::Boolean::New(info.Env(), false);
  if (err != 0) ThrowSystemError(info.Env(), err, "flock");
  return Napi::Boolean::New(info.Env(), true);
}

// flockWait(fd, op): a blocking flock on a libuv pool thread, so waiting for a lock never blocks the
// event loop.
Napi::Value FlockWait(const Napi::CallbackInfo& info) {
  Args args(info, "flockWait");
  int fd = args.Get<int32_t>(0, "fd"), op = args.Get<int32_t>(1, "op");
  return SyscallWorker::Queue(info.Env(), "tsbuild:flock", [fd, op]() -> Failure {
    int err = FlockRetrying(fd, op);
    if (err != 0) return {err, "flock", "", ""};
    return {};
  });
}

Napi::Value Pipe(const Napi::CallbackInfo& info) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) ThrowSystemError(info.Env(), errno, "pipe2");
  Napi::Array out = Napi::Array::New(info.Env(), 2);
  out.Set(0u, fds[0]);
  out.Set(1u, fds[1]);
  return out;
}

// openPty(): a master/slave pair, both O_CLOEXEC | O_NOCTTY so the caller never gains a controlling tty.
Napi::Value OpenPty(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0) ThrowSystemError(env, errno, "posix_openpt", "/dev/ptmx");
  Fd masterFd(master);
  char name[128];
  if (grantpt(master) != 0) ThrowSystemError(env, errno, "grantpt");
  if (unlockpt(master) != 0) ThrowSystemError(env, errno, "unlockpt");
  int err = ptsname_r(master, name, sizeof name);
  if (err != 0) ThrowSystemError(env, err, "ptsname_r");
  int slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (slave < 0) ThrowSystemError(env, errno, "open", name);
  Napi::Object out = Napi::Object::New(env);
  out.Set("master", masterFd.release());
  out.Set("slave", slave);
  out.Set("slavePath", name);
  return out;
}

}  // namespace

void InitFsOps(Napi::Env env, Napi::Object exports) {
  Register(env, exports,
           {{"mknod", Mknod}, {"lgetxattr", Lgetxattr}, {"lsetxattr", Lsetxattr}, {"llistxattr", Llistxattr},
            {"lremovexattr", Lremovexattr}, {"statfs", Statfs}, {"flock", Flock}, {"flockWait", FlockWait},
            {"pipe", Pipe}, {"openPty", OpenPty}});
}

}  // namespace tsb
