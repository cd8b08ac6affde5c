// Reading the already-validated arguments that TypeScript passes (see src/validate.ts): strings,
// null for "absent", and plain numbers. C++ trusts their shape and only converts them.
#pragma once
#include <napi.h>
#include <initializer_list>
#include <optional>
#include <utility>
#include <string>
#include <unistd.h>

namespace tsb {

inline std::string Str(const Napi::Value& v) { return v.As<Napi::String>().Utf8Value(); }

// A path: a string, or a Buffer holding its bytes (Linux names need not be UTF-8).
inline std::string PathStr(const Napi::Value& v) {
  if (v.IsBuffer()) {
    auto b = v.As<Napi::Buffer<char>>();
    return std::string(b.Data(), b.Length());
  }
  return Str(v);
}

// null/undefined become nullopt, for optional syscall arguments such as mount's source and data.
inline std::optional<std::string> OptStr(const Napi::Value& v) {
  if (!v.IsString()) return std::nullopt;
  return Str(v);
}

inline const char* CStrOrNull(const std::optional<std::string>& s) { return s ? s->c_str() : nullptr; }

inline int Int(const Napi::Value& v) { return v.As<Napi::Number>().Int32Value(); }
inline uint32_t Uint(const Napi::Value& v) { return v.As<Napi::Number>().Uint32Value(); }
inline int64_t Int64(const Napi::Value& v) { return v.As<Napi::Number>().Int64Value(); }

// Registers named functions on the addon's exports (each concern's Init* calls it once).
inline void Register(Napi::Env env, Napi::Object exports,
                     std::initializer_list<std::pair<const char*, Napi::Function::Callback>> functions) {
  for (const auto& [name, fn] : functions) exports.Set(name, Napi::Function::New(env, fn, name));
}

// Owns a file descriptor and closes it on every exit path (including a thrown Napi::Error).
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  bool ok() const { return fd_ >= 0; }
  // Hands the fd to the caller (e.g. to JS) so it is no longer closed here.
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_;
};

}  // namespace tsb
