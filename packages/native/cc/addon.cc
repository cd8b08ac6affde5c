#include "module.h"

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  tsb::InitMount(env, exports);
  tsb::InitFsOps(env, exports);
  tsb::InitCopyFiles(env, exports);
  tsb::InitHashFiles(env, exports);
  tsb::InitSha256(env, exports);
  tsb::InitSpawn(env, exports);
  return exports;
}

NODE_API_MODULE(tsbuild_native, Init)
