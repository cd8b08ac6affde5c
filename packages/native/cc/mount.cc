#include "module.h"
#include "errors.h"

namespace tsb {
void InitMount(Napi::Env env, Napi::Object exports) {}
}  // namespace tsb
