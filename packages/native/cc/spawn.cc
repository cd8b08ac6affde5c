#include "module.h"
#include "errors.h"

namespace tsb {
void InitSpawn(Napi::Env env, Napi::Object exports) {}
}  // namespace tsb
