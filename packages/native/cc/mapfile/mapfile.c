// tsbuild_mapfile.node: a file mapped read-only, as a JavaScript string (latin1) or Buffer over the
// mapping, for the CLI's loader (packages/builder/bin/code-cache.js). Reading the ~0.9 MB bundle and its
// code cache into fresh memory took ~9 ms of every command (~12 us a page fault on the reference
// machine); a mapping of the page cache faults in 64 KiB at a time and copies nothing. A separate addon
// so the loader does not load the main one (which the bundle loads itself), and so the experimental
// Node-API call for external strings (Node >= 20.4) stays out of it. The bundle and its caches are
// replaced by rename, never rewritten in place (scripts/bundle.js, bin/code-cache.js), so a mapping keeps
// the file it mapped.
// Failure returns undefined: the loader then reads the file with fs, whose error names the cause.
#define NAPI_EXPERIMENTAL
#include <fcntl.h>
#include <node_api.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static void unmap(node_api_basic_env env, void* data, void* hint) {
  (void)env;
  munmap(data, (size_t)(uintptr_t)hint);
}

/** The mapping of the file named by the first argument, or NULL (an empty file maps to nothing). */
static void* map_argument(napi_env env, napi_callback_info info, size_t* length) {
  size_t argc = 1;
  napi_value argv[1];
  char path[4096];
  size_t path_length = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1) return NULL;
  if (napi_get_value_string_utf8(env, argv[0], path, sizeof path, &path_length) != napi_ok || path_length >= sizeof path - 1) return NULL;
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return NULL;
  struct stat st;
  void* data = MAP_FAILED;
  if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) data = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (data == MAP_FAILED) return NULL;
  *length = (size_t)st.st_size;
  return data;
}

static napi_value undefined_value(napi_env env) {
  napi_value result;
  napi_get_undefined(env, &result);
  return result;
}

/** The file as a one-byte string V8 reads in place, or as a Buffer over the mapping. */
static napi_value MapFile(napi_env env, napi_callback_info info, bool as_string) {
  size_t length = 0;
  void* data = map_argument(env, info, &length);
  if (!data) return undefined_value(env);
  napi_value result;
  bool copied = false;  // when V8 copies a string's bytes, it has called unmap already
  void* hint = (void*)(uintptr_t)length;
  napi_status status = as_string ? node_api_create_external_string_latin1(env, (char*)data, length, unmap, hint, &result, &copied)
                                 : napi_create_external_buffer(env, length, data, unmap, hint, &result);
  if (status != napi_ok) {
    munmap(data, length);
    return undefined_value(env);
  }
  return result;
}

static napi_value Latin1(napi_env env, napi_callback_info info) { return MapFile(env, info, true); }
static napi_value Bytes(napi_env env, napi_callback_info info) { return MapFile(env, info, false); }

NAPI_MODULE_INIT() {
  napi_value fn;
  if (napi_create_function(env, "latin1", NAPI_AUTO_LENGTH, Latin1, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "latin1", fn) != napi_ok) return NULL;
  if (napi_create_function(env, "bytes", NAPI_AUTO_LENGTH, Bytes, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "bytes", fn) != napi_ok) return NULL;
  return exports;
}
