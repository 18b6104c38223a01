// liblamina is compiled for LAMINA_ARCH (CMake; x86-64-v3 by default). Loaded on a CPU that lacks
// one of that level's instructions it would die later of SIGILL, somewhere in a loop; instead it
// checks the CPU first, when the library is loaded, and says what is missing and what to do.
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "lamina/runtime.hpp"

#ifndef LAMINA_ARCH
#define LAMINA_ARCH ""
#endif

namespace lamina {

const char* build_arch() { return LAMINA_ARCH; }

namespace {

#if defined(__x86_64__) && defined(__GNUC__)
// Priority 101: before the library's own static constructors, which may use the instructions.
// target("arch=x86-64"): this function itself uses none of them.
__attribute__((constructor(101), target("arch=x86-64"))) void check_cpu() {
  const char* arch = LAMINA_ARCH;
  __builtin_cpu_init();
  bool ok = true;
  // __builtin_cpu_supports takes only string literals.
  if (std::strcmp(arch, "x86-64-v2") == 0) ok = __builtin_cpu_supports("x86-64-v2");
  if (std::strcmp(arch, "x86-64-v3") == 0) ok = __builtin_cpu_supports("x86-64-v3");
  if (std::strcmp(arch, "x86-64-v4") == 0) ok = __builtin_cpu_supports("x86-64-v4");
  if (ok) return;
  std::fprintf(stderr,
               "liblamina: this build is compiled for %s, and this CPU lacks some of its instructions "
               "(x86-64-v3: AVX2, FMA, BMI2; x86-64-v4: AVX-512). Rebuild Lamina with "
               "-DLAMINA_ARCH=x86-64-v2 or -DLAMINA_ARCH=native on this machine.\n",
               arch);
  std::_Exit(1);
}
#endif

}  // namespace

}  // namespace lamina
