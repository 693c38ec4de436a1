// sigma-ts native addon: the kernel facilities Node does not expose. memory.cc: memfd_create and shared
// mmap as an external ArrayBuffer (the per-realm pools), close, pidfd_getfd. sched.cc: sched_yield and the
// calling thread's CPU affinity (the busy poll). socket.cc: non-blocking send on a socket fd (frame
// writes). bpf.cc and bpf_maps.cc: the system libbpf (load, attach the sk_msg verdict, pin, map
// operations on Buffers). Every kernel error becomes a JS Error with errno, code and syscall — never an
// abort. The typed wrapper is index.ts.
#include "native_common.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  sigma::InitMemory(env, exports);
  sigma::InitSched(env, exports);
  sigma::InitSocket(env, exports);
  sigma::InitBpf(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(sigma_native, Init)
