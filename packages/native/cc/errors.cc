#include "errors.h"
#include <cerrno>
#include <cstring>

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

void ThrowSystemError(Napi::Env env, int err, const char* syscall, const std::string& path,
                      const std::string& detail) {
  throw SystemError(env, err, syscall, path, detail);
}

}  // namespace tsb
