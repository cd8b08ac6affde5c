// SHA-256 and random bytes on the JS thread, through OpenSSL (node's own headers and symbols, as
// hashfiles.cc) and getrandom(2): what the CLI needs of node:crypto, without loading node:crypto, whose
// JavaScript Node compiles on first require (~8 ms of every command; README, Performance).
#include <openssl/evp.h>
#include <sys/random.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "args.h"
#include "errors.h"
#include "module.h"

namespace tsb {
namespace {

constexpr size_t kDigest = 32;
// Strings up to this many UTF-8 bytes are hashed from the stack.
constexpr size_t kStackString = 1024;

void FreeCtx(Napi::Env, EVP_MD_CTX* ctx) { EVP_MD_CTX_free(ctx); }

EVP_MD_CTX* CtxArg(const Napi::CallbackInfo& info, const char* fn) {
  if (!info[0].IsExternal()) ThrowTypeError(info.Env(), fn, "the hash", "a sha256Create() handle", info[0]);
  return info[0].As<Napi::External<EVP_MD_CTX>>().Data();
}

// Feeds a string (as UTF-8) or the bytes of a typed array into `ctx`.
void Feed(Napi::Env env, const char* fn, EVP_MD_CTX* ctx, const Napi::Value& data) {
  if (data.IsTypedArray()) {
    auto view = data.As<Napi::TypedArray>();
    const uint8_t* bytes = static_cast<const uint8_t*>(view.ArrayBuffer().Data()) + view.ByteOffset();
    if (EVP_DigestUpdate(ctx, bytes, view.ByteLength()) != 1) throw Napi::Error::New(env, std::string(fn) + ": EVP_DigestUpdate failed");
    return;
  }
  if (!data.IsString()) ThrowTypeError(env, fn, "data", "a string or a typed array", data);
  size_t length = 0;
  NAPI_THROW_IF_FAILED_VOID(env, napi_get_value_string_utf8(env, data, nullptr, 0, &length));
  char stack[kStackString + 1];
  std::string heap;
  char* buf = stack;
  if (length > kStackString) {
    heap.resize(length + 1);
    buf = heap.data();
  }
  NAPI_THROW_IF_FAILED_VOID(env, napi_get_value_string_utf8(env, data, buf, length + 1, &length));
  if (EVP_DigestUpdate(ctx, buf, length) != 1) throw Napi::Error::New(env, std::string(fn) + ": EVP_DigestUpdate failed");
}

Napi::Value Finish(Napi::Env env, EVP_MD_CTX* ctx) {
  uint8_t digest[kDigest];
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(ctx, digest, &len) != 1 || len != kDigest) throw Napi::Error::New(env, "sha256: EVP_DigestFinal_ex failed");
  return Napi::Buffer<uint8_t>::Copy(env, digest, kDigest);
}

// sha256Create(): an incremental hash, freed when collected.
Napi::Value Sha256Create(const Napi::CallbackInfo& info) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  if (ctx == nullptr || EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr) != 1) {
    EVP_MD_CTX_free(ctx);
    throw Napi::Error::New(info.Env(), "sha256Create: EVP_DigestInit_ex failed");
  }
  return Napi::External<EVP_MD_CTX>::New(info.Env(), ctx, FreeCtx);
}

// sha256Update(hash, data: string | TypedArray).
Napi::Value Sha256Update(const Napi::CallbackInfo& info) {
  Feed(info.Env(), "sha256Update", CtxArg(info, "sha256Update"), info[1]);
  return info.Env().Undefined();
}

// sha256Digest(hash): Buffer(32). The caller must not update or digest the hash again.
Napi::Value Sha256Digest(const Napi::CallbackInfo& info) { return Finish(info.Env(), CtxArg(info, "sha256Digest")); }

// sha256(data: string | TypedArray): Buffer(32).
Napi::Value Sha256(const Napi::CallbackInfo& info) {
  thread_local EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  if (ctx == nullptr || EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr) != 1) throw Napi::Error::New(info.Env(), "sha256: EVP_DigestInit_ex failed");
  Feed(info.Env(), "sha256", ctx, info[0]);
  return Finish(info.Env(), ctx);
}

// randomFill(bytes: TypedArray): fills it from getrandom(2) (the kernel's CSPRNG, as node's randomBytes).
Napi::Value RandomFill(const Napi::CallbackInfo& info) {
  if (!info[0].IsTypedArray()) ThrowTypeError(info.Env(), "randomFill", "bytes", "a typed array", info[0]);
  auto view = info[0].As<Napi::TypedArray>();
  uint8_t* bytes = static_cast<uint8_t*>(view.ArrayBuffer().Data()) + view.ByteOffset();
  for (size_t done = 0, size = view.ByteLength(); done < size;) {
    ssize_t n = getrandom(bytes + done, size - done, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) ThrowSystemError(info.Env(), errno, "getrandom");
    done += static_cast<size_t>(n);
  }
  return info.Env().Undefined();
}

}  // namespace

void InitSha256(Napi::Env env, Napi::Object exports) {
  Register(env, exports,
           {{"sha256Create", Sha256Create}, {"sha256Update", Sha256Update}, {"sha256Digest", Sha256Digest},
            {"sha256", Sha256}, {"randomFill", RandomFill}});
}

}  // namespace tsb
