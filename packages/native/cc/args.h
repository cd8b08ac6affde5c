// Reading the arguments TypeScript passes (see src/validate.ts and src/binding.ts's NativeBinding).
// TypeScript validates first; C++ is the second line: every read names its function and key, and a
// missing or mistyped value is a TypeError ("spawn: cloneFlags must be a number (got undefined)"),
// never a silent default. Whether a value may be absent is declared at each read (Presence).
#pragma once
#include <napi.h>
#include <initializer_list>
#include <optional>
#include <string>
#include <utility>
#include <vector>
#include <unistd.h>

namespace tsb {

// kRequired: present and of the type. kNullable: present (a renamed key is caught), null for "none".
// kOptional: the key may be left out (undefined or null); when given, it must have the type.
enum class Presence { kRequired, kNullable, kOptional };

inline const char* TypeName(const Napi::Value& v) {
  switch (v.Type()) {
    case napi_undefined: return "undefined";
    case napi_null: return "null";
    case napi_boolean: return "a boolean";
    case napi_number: return "a number";
    case napi_string: return "a string";
    case napi_function: return "a function";
    case napi_bigint: return "a bigint";
    case napi_symbol: return "a symbol";
    default: return v.IsArray() ? "an array" : v.IsBuffer() ? "a Buffer" : "an object";
  }
}

[[noreturn]] inline void ThrowTypeError(Napi::Env env, const std::string& fn, const std::string& what,
                                        const char* expected, const Napi::Value& got) {
  throw Napi::TypeError::New(env, fn + ": " + what + " must be " + expected + " (got " + TypeName(got) + ")");
}

// One converter per C++ type a value is read as: the JS type it must have and how it converts.
template <typename T> struct As;
template <> struct As<std::string> {
  static constexpr const char* kExpected = "a string";
  static bool Is(const Napi::Value& v) { return v.IsString(); }
  static std::string Get(const Napi::Value& v) { return v.As<Napi::String>().Utf8Value(); }
};
// A path: a string, or a Buffer holding its bytes (Linux names need not be UTF-8).
struct PathBytes {
  std::string bytes;
};
template <> struct As<PathBytes> {
  static constexpr const char* kExpected = "a string or a Buffer";
  static bool Is(const Napi::Value& v) { return v.IsString() || v.IsBuffer(); }
  static PathBytes Get(const Napi::Value& v) {
    if (!v.IsBuffer()) return {As<std::string>::Get(v)};
    auto b = v.As<Napi::Buffer<char>>();
    return {std::string(b.Data(), b.Length())};
  }
};
template <> struct As<double> {
  static constexpr const char* kExpected = "a number";
  static bool Is(const Napi::Value& v) { return v.IsNumber(); }
  static double Get(const Napi::Value& v) { return v.As<Napi::Number>().DoubleValue(); }
};
template <> struct As<int32_t> : As<double> {
  static int32_t Get(const Napi::Value& v) { return v.As<Napi::Number>().Int32Value(); }
};
template <> struct As<uint32_t> : As<double> {
  static uint32_t Get(const Napi::Value& v) { return v.As<Napi::Number>().Uint32Value(); }
};
template <> struct As<int64_t> : As<double> {
  static int64_t Get(const Napi::Value& v) { return v.As<Napi::Number>().Int64Value(); }
};
template <> struct As<bool> {
  static constexpr const char* kExpected = "a boolean";
  static bool Is(const Napi::Value& v) { return v.IsBoolean(); }
  static bool Get(const Napi::Value& v) { return v.As<Napi::Boolean>().Value(); }
};
template <> struct As<Napi::Object> {
  static constexpr const char* kExpected = "an object";
  static bool Is(const Napi::Value& v) { return v.IsObject() && !v.IsArray() && !v.IsFunction(); }
  static Napi::Object Get(const Napi::Value& v) { return v.As<Napi::Object>(); }
};
template <> struct As<Napi::Array> {
  static constexpr const char* kExpected = "an array";
  static bool Is(const Napi::Value& v) { return v.IsArray(); }
  static Napi::Array Get(const Napi::Value& v) { return v.As<Napi::Array>(); }
};
template <> struct As<Napi::Function> {
  static constexpr const char* kExpected = "a function";
  static bool Is(const Napi::Value& v) { return v.IsFunction(); }
  static Napi::Function Get(const Napi::Value& v) { return v.As<Napi::Function>(); }
};
template <> struct As<Napi::Buffer<uint8_t>> {
  static constexpr const char* kExpected = "a Buffer";
  static bool Is(const Napi::Value& v) { return v.IsBuffer(); }
  static Napi::Buffer<uint8_t> Get(const Napi::Value& v) { return v.As<Napi::Buffer<uint8_t>>(); }
};

// The one typed read: `value` is `what` of function `fn`.
template <typename T>
std::optional<T> Read(Napi::Env env, const std::string& fn, const std::string& what, const Napi::Value& value,
                      Presence presence) {
  bool absent = presence == Presence::kOptional ? value.IsUndefined() || value.IsNull()
                                                : presence == Presence::kNullable && value.IsNull();
  if (absent) return std::nullopt;
  if (!As<T>::Is(value)) ThrowTypeError(env, fn, what, As<T>::kExpected, value);
  return As<T>::Get(value);
}

// Positional arguments of one addon function: Args args(info, "mount"); args.Get<std::string>(1, "target").
class Args {
 public:
  Args(const Napi::CallbackInfo& info, const char* fn) : info_(info), fn_(fn) {}
  template <typename T> T Get(size_t i, const char* name) const {
    return *Read<T>(info_.Env(), fn_, name, info_[i], Presence::kRequired);
  }
  // null (the TypeScript side's "absent") becomes nullopt.
  template <typename T> std::optional<T> Nullable(size_t i, const char* name) const {
    return Read<T>(info_.Env(), fn_, name, info_[i], Presence::kNullable);
  }
  template <typename T> std::vector<T> List(size_t i, const char* name) const {
    return ListOf<T>(info_.Env(), fn_, name, Get<Napi::Array>(i, name));
  }
  // A list whose elements may be null (nullopt), e.g. fsconfig values where null sets a flag.
  template <typename T> std::vector<std::optional<T>> NullableList(size_t i, const char* name) const {
    Napi::Array a = Get<Napi::Array>(i, name);
    std::vector<std::optional<T>> out;
    for (uint32_t k = 0; k < a.Length(); k++)
      out.push_back(Read<T>(info_.Env(), fn_, std::string(name) + "[" + std::to_string(k) + "]", a.Get(k),
                            Presence::kNullable));
    return out;
  }
  Napi::Env Env() const { return info_.Env(); }

  template <typename T>
  static std::vector<T> ListOf(Napi::Env env, const std::string& fn, const std::string& what, Napi::Array a) {
    std::vector<T> out;
    for (uint32_t k = 0; k < a.Length(); k++)
      out.push_back(*Read<T>(env, fn, what + "[" + std::to_string(k) + "]", a.Get(k), Presence::kRequired));
    return out;
  }

 private:
  const Napi::CallbackInfo& info_;
  const char* fn_;
};

// The keys of one options object (the spawn spec, one of its steps, ...): fields.Get<double>("cloneFlags").
class Fields {
 public:
  // `what` names the object in messages ("steps[2]"); empty for the top-level argument.
  Fields(Napi::Env env, std::string fn, const Napi::Value& obj, std::string what = "")
      : env_(env), fn_(std::move(fn)), what_(std::move(what)),
        obj_(*Read<Napi::Object>(env, fn_, what_.empty() ? "the options" : what_, obj, Presence::kRequired)) {}
  template <typename T> T Get(const char* key) const { return *Read<T>(env_, fn_, Name(key), obj_.Get(key), Presence::kRequired); }
  template <typename T> std::optional<T> Nullable(const char* key) const {
    return Read<T>(env_, fn_, Name(key), obj_.Get(key), Presence::kNullable);
  }
  template <typename T> std::optional<T> Optional(const char* key) const {
    return Read<T>(env_, fn_, Name(key), obj_.Get(key), Presence::kOptional);
  }
  template <typename T> T Optional(const char* key, T fallback) const { return Optional<T>(key).value_or(fallback); }
  template <typename T> std::vector<T> List(const char* key) const {
    return Args::ListOf<T>(env_, fn_, Name(key), Get<Napi::Array>(key));
  }
  // Each element of the array at `key` as an options object of its own ("steps[2]").
  std::vector<Fields> Objects(const char* key) const {
    Napi::Array a = Get<Napi::Array>(key);
    std::vector<Fields> out;
    for (uint32_t k = 0; k < a.Length(); k++) out.emplace_back(env_, fn_, a.Get(k), Name(key) + "[" + std::to_string(k) + "]");
    return out;
  }
  Fields Object(const char* key) const { return Fields(env_, fn_, obj_.Get(key), Name(key)); }
  bool Has(const char* key) const {
    Napi::Value v = obj_.Get(key);
    return !v.IsUndefined() && !v.IsNull();
  }
  std::string Name(const char* key) const { return what_.empty() ? key : what_ + "." + key; }
  const std::string& Fn() const { return fn_; }
  Napi::Env Env() const { return env_; }

 private:
  Napi::Env env_;
  std::string fn_, what_;
  Napi::Object obj_;
};

inline const char* CStrOrNull(const std::optional<std::string>& s) { return s ? s->c_str() : nullptr; }

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
