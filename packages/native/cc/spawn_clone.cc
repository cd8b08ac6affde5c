// clone3 in its two shapes. CLONE_VM|CLONE_VFORK needs the child to start on its own stack with no
// frames, which C cannot express, so a few instructions of assembly do the syscall and call the entry.
#include "spawn_clone.h"

#include <linux/sched.h>

#include "spawn_sys.h"

extern "C" long tsb_clone3_on_stack(void* args, size_t size, int (*fn)(void*), void* arg);

#if defined(__x86_64__)
// rdi=args rsi=size rdx=fn rcx=arg. r8/r9 survive the syscall in both processes (only rcx/r11 and rax
// change), so the child finds fn and arg there. The child's rsp is the 16-byte aligned stack top.
__asm__(
    ".text\n"
    ".p2align 4\n"
    ".globl tsb_clone3_on_stack\n"
    ".hidden tsb_clone3_on_stack\n"
    ".type tsb_clone3_on_stack,@function\n"
    "tsb_clone3_on_stack:\n"
    "  mov %rdx, %r8\n"
    "  mov %rcx, %r9\n"
    "  mov $435, %eax\n"  // SYS_clone3
    "  syscall\n"
    "  test %rax, %rax\n"
    "  jnz 1f\n"
    "  xor %ebp, %ebp\n"
    "  mov %r9, %rdi\n"
    "  call *%r8\n"
    "  mov %eax, %edi\n"
    "  mov $231, %eax\n"  // SYS_exit_group (the child is its own thread group)
    "  syscall\n"
    "  hlt\n"
    "1:\n"
    "  ret\n"
    ".size tsb_clone3_on_stack, .-tsb_clone3_on_stack\n");
#elif defined(__aarch64__)
__asm__(
    ".text\n"
    ".p2align 4\n"
    ".globl tsb_clone3_on_stack\n"
    ".hidden tsb_clone3_on_stack\n"
    ".type tsb_clone3_on_stack,%function\n"
    "tsb_clone3_on_stack:\n"
    "  mov x9, x2\n"
    "  mov x10, x3\n"
    "  mov x8, #435\n"
    "  svc #0\n"
    "  cbnz x0, 1f\n"
    "  mov x0, x10\n"
    "  blr x9\n"
    "  mov x8, #94\n"
    "  svc #0\n"
    "  brk #0\n"
    "1:\n"
    "  ret\n"
    ".size tsb_clone3_on_stack, .-tsb_clone3_on_stack\n");
#endif

namespace tsb {

long Clone3OnStack(struct clone_args* args, int (*fn)(void*), void* arg) {
  return tsb_clone3_on_stack(args, sizeof *args, fn, arg);
}

long Clone3Fork(struct clone_args* args, const ChildPlan* plan) {
  long r = sys::call(SYS_clone3, sys::L(args), sizeof *args);
  if (r == 0) ChildMain(plan);
  return r;
}

}  // namespace tsb
