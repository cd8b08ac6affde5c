// Each concern registers its functions on the addon's exports.
#pragma once
#include <napi.h>

namespace tsb {
void InitMount(Napi::Env env, Napi::Object exports);
void InitFsOps(Napi::Env env, Napi::Object exports);
void InitCopyFiles(Napi::Env env, Napi::Object exports);
void InitHashFiles(Napi::Env env, Napi::Object exports);
void InitSha256(Napi::Env env, Napi::Object exports);
void InitSpawn(Napi::Env env, Napi::Object exports);
}  // namespace tsb
