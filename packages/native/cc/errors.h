// Errors thrown to JS carry code (errno name), errno, syscall and path, like Node's own SystemErrors.
#pragma once
#include <napi.h>
#include <string>

namespace tsb {
Napi::Error SystemError(Napi::Env env, int err, const char* syscall, const std::string& path = "",
                        const std::string& detail = "");
[[noreturn]] void ThrowSystemError(Napi::Env env, int err, const char* syscall, const std::string& path = "",
                                   const std::string& detail = "");
const char* ErrnoName(int err);
}  // namespace tsb
