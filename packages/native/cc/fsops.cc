#include "module.h"
#include "errors.h"

namespace tsb {
void InitFsOps(Napi::Env env, Napi::Object exports) {}
}  // namespace tsb
