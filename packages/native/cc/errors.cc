#include "errors.h"
#include <cerrno>
#include <cstring>
#include <sys/stat.h>

namespace tsb {

const char* ErrnoName(int err) {
  const char* name = strerrorname_np(err);
  return name ? name : "EUNKNOWN";
}

Napi::Error SystemErrorWithMessage(Napi::Env env, const std::string& message, int err, const std::string& syscall,
                                   const std::string& path) {
  Napi::Error e = Napi::Error::New(env, message);
  e.Set("code", Napi::String::New(env, ErrnoName(err)));
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("syscall", Napi::String::New(env, syscall));
  if (!path.empty()) e.Set("path", Napi::String::New(env, path));
  return e;
}

Napi::Error SystemError(Napi::Env env, int err, const char* syscall, const std::string& path,
                        const std::string& detail) {
  std::string msg = std::string(ErrnoName(err)) + ": " + strerror(err) + ", " + syscall;
  if (!path.empty()) msg += " '" + path + "'";
  if (!detail.empty()) msg += ": " + detail;
  return SystemErrorWithMessage(env, msg, err, syscall, path);
}

Napi::Error SystemError(Napi::Env env, const Failure& f) { return SystemError(env, f.err, f.syscall, f.path, f.detail); }

Failure NotRegularFile(unsigned int mode, const std::string& path) {
  const char* type = S_ISDIR(mode) ? "a directory" : S_ISFIFO(mode) ? "a fifo" : S_ISSOCK(mode) ? "a socket"
                     : S_ISCHR(mode) ? "a character device" : S_ISBLK(mode) ? "a block device" : "of an unknown type";
  return {S_ISDIR(mode) ? EISDIR : EINVAL, "open", path, std::string("not a regular file but ") + type};
}

Failure RequireRegularFile(int fd, const std::string& path) {
  struct stat st;
  if (fstat(fd, &st) != 0) return {errno, "fstat", path, ""};
  return S_ISREG(st.st_mode) ? Failure{} : NotRegularFile(st.st_mode, path);
}

void ThrowSystemError(Napi::Env env, int err, const char* syscall, const std::string& path,
                      const std::string& detail) {
  throw SystemError(env, err, syscall, path, detail);
}

}  // namespace tsb
