// Reading the already-validated arguments that TypeScript passes (see src/validate.ts): strings,
// null for "absent", and plain numbers. C++ trusts their shape and only converts them.
#pragma once
#include <napi.h>
#include <optional>
#include <string>

namespace tsb {

inline std::string Str(const Napi::Value& v) { return v.As<Napi::String>().Utf8Value(); }

// null/undefined become nullopt, for optional syscall arguments such as mount's source and data.
inline std::optional<std::string> OptStr(const Napi::Value& v) {
  if (!v.IsString()) return std::nullopt;
  return Str(v);
}

inline const char* CStrOrNull(const std::optional<std::string>& s) { return s ? s->c_str() : nullptr; }

inline int Int(const Napi::Value& v) { return v.As<Napi::Number>().Int32Value(); }
inline uint32_t Uint(const Napi::Value& v) { return v.As<Napi::Number>().Uint32Value(); }
inline int64_t Int64(const Napi::Value& v) { return v.As<Napi::Number>().Int64Value(); }

// Owns a file descriptor and closes it on every exit path (including a thrown Napi::Error).
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd();
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  bool ok() const { return fd_ >= 0; }

 private:
  int fd_;
};

}  // namespace tsb
