#include "errors.h"
#include <cerrno>
#include <cstring>

namespace tsb {

const char* ErrnoName(int err) {
  const char* name = strerrorname_np(err);
  return name ? name : "EUNKNOWN";
}

Napi::Error SystemError(Napi::Env env, int err, const char* syscall, const std::string& path,
                        const std::string& detail) {
  std::string msg = std::string(ErrnoName(err)) + ": " + strerror(err) + ", " + syscall;
  if (!path.empty()) msg += " '" + path + "'";
  if (!detail.empty()) msg += ": " + detail;
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("code", Napi::String::New(env, ErrnoName(err)));
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("syscall", Napi::String::New(env, syscall));
  if (!path.empty()) e.Set("path", Napi::String::New(env, path));
  return e;
}

void ThrowSystemError(Napi::Env env, int err, const char* syscall, const std::string& path,
                      const std::string& detail) {
  throw SystemError(env, err, syscall, path, detail);
}

}  // namespace tsb
