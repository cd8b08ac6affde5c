// Raw system calls for the spawned child between clone and execve. They never touch errno (TLS that a
// CLONE_VM child shares with the parent thread), never allocate and never lock: they return the kernel's
// result, a negative errno on failure.
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <sys/syscall.h>

namespace tsb::sys {

#if defined(__x86_64__)
static inline long raw6(long n, long a, long b, long c, long d, long e, long f) {
  long ret;
  register long r10 __asm__("r10") = d;
  register long r8 __asm__("r8") = e;
  register long r9 __asm__("r9") = f;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                   : "rcx", "r11", "memory");
  return ret;
}
#elif defined(__aarch64__)
static inline long raw6(long n, long a, long b, long c, long d, long e, long f) {
  register long x8 __asm__("x8") = n;
  register long x0 __asm__("x0") = a;
  register long x1 __asm__("x1") = b;
  register long x2 __asm__("x2") = c;
  register long x3 __asm__("x3") = d;
  register long x4 __asm__("x4") = e;
  register long x5 __asm__("x5") = f;
  __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5) : "memory");
  return x0;
}
#else
#error "tsbuild spawn supports x86_64 and aarch64"
#endif

static inline long call(long n, long a = 0, long b = 0, long c = 0, long d = 0, long e = 0, long f = 0) {
  return raw6(n, a, b, c, d, e, f);
}
template <typename A>
static inline long L(A v) {
  return (long)(v);
}

// Returns -errno (as a positive int) of a raw result, 0 on success.
static inline int err_of(long r) { return r < 0 && r > -4096 ? (int)-r : 0; }

[[noreturn]] static inline void exit_now(int code) {
  for (;;) call(SYS_exit_group, code);
}

static inline size_t cstrlen(const char* s) {
  size_t n = 0;
  while (s[n]) n++;
  return n;
}

}  // namespace tsb::sys
