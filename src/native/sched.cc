// CPU scheduling for the data path's busy poll: sched_yield, and the calling thread's CPU affinity.
// A busy-polling host yields every loop turn (so two spinners the scheduler put on one CPU hand it over at
// once), and pins its main thread to its home CPU while a ping-pong keeps it spinning (so the two ends of
// a ping-pong spin on two CPUs instead of taking turns on one); src/datapath/busy-poll.ts says why.
// Affinity calls act on the calling thread only (pid 0 in sched_setaffinity is the caller's thread): V8's
// and libuv's helper threads keep whatever mask they had.
#include "native_common.h"

#include <sched.h>

#include <vector>

namespace sigma {
namespace {

// Enough for any machine this runs on; CPUs beyond it are refused as arguments and never reported.
constexpr int kCpusMax = CPU_SETSIZE;

// schedYield(): gives the CPU to another runnable task on this one, if any.
Napi::Value SchedYield(const Napi::CallbackInfo& info) {
  sched_yield();  // cannot fail on Linux
  return info.Env().Undefined();
}

// cpuAffinity(): the CPUs the calling thread may run on, ascending.
Napi::Value CpuAffinity(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return Throw(env, errno, "sched_getaffinity", "reading this thread's CPU affinity");
  std::vector<int> cpus;
  for (int c = 0; c < kCpusMax; c++) {
    if (CPU_ISSET(c, &set)) cpus.push_back(c);
  }
  Napi::Array out = Napi::Array::New(env, cpus.size());
  for (size_t i = 0; i < cpus.size(); i++) out.Set(static_cast<uint32_t>(i), Napi::Number::New(env, cpus[i]));
  return out;
}

// setCpuAffinity(cpus: number[]): restricts the calling thread to these CPUs (moving it now if it runs
// elsewhere). EINVAL when none of them is online or allowed by the thread's cpuset.
Napi::Value SetCpuAffinity(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArray()) return ThrowArg(env, "setCpuAffinity", "needs (cpus: integer[] in [0, " + std::to_string(kCpusMax - 1) + "], not empty)");
  auto arr = info[0].As<Napi::Array>();
  if (arr.Length() == 0) return ThrowArg(env, "setCpuAffinity", "needs at least one CPU");
  cpu_set_t set;
  CPU_ZERO(&set);
  for (uint32_t i = 0; i < arr.Length(); i++) {
    Napi::Value v = arr.Get(i);
    double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
    if (!(d >= 0 && d < kCpusMax) || d != static_cast<double>(static_cast<int>(d))) {
      return ThrowArg(env, "setCpuAffinity", "CPU numbers are integers in [0, " + std::to_string(kCpusMax - 1) + "]");
    }
    CPU_SET(static_cast<int>(d), &set);
  }
  if (sched_setaffinity(0, sizeof set, &set) != 0) return Throw(env, errno, "sched_setaffinity", "setting this thread's CPU affinity");
  return env.Undefined();
}

// currentCpu(): the CPU the calling thread runs on now (sched_getcpu).
Napi::Value CurrentCpu(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int c = sched_getcpu();
  if (c < 0) return Throw(env, errno, "sched_getcpu", "reading the current CPU");
  return Napi::Number::New(env, c);
}

}  // namespace

void InitSched(Napi::Env env, Napi::Object exports) {
  exports.Set("schedYield", Napi::Function::New(env, SchedYield));
  exports.Set("cpuAffinity", Napi::Function::New(env, CpuAffinity));
  exports.Set("setCpuAffinity", Napi::Function::New(env, SetCpuAffinity));
  exports.Set("currentCpu", Napi::Function::New(env, CurrentCpu));
}

}  // namespace sigma
