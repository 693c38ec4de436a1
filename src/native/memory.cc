// Shared memory for the per-realm pools: memfd_create, and a MAP_SHARED mapping exposed to JS as an
// external ArrayBuffer. The mapping is unmapped exactly once: by release() (which detaches the buffer
// first, so JS can no longer reach the memory) or, if never released, by the buffer's finalizer.
// Also: close(fd) and pidfd_getfd (take a socket fd from a proc host process to register it).
#include "native_common.h"

#include <mutex>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <unordered_map>

namespace sigma {
namespace {

// A pool larger than this is a configuration mistake, not a request.
constexpr double kMapBytesMax = 64.0 * 1024 * 1024 * 1024;

struct Mapping {
  size_t size;
  bool unmapped;
};

// Live mappings by address, so release(buffer) can find its length. Finalizers may run on any thread
// that owns a buffer (workers), hence the lock.
std::mutex g_lock;
std::unordered_map<void*, Mapping*> g_mappings;

void Finalize(Napi::Env /*env*/, void* data, Mapping* m) {
  {
    std::lock_guard<std::mutex> hold(g_lock);
    if (!m->unmapped) {
      munmap(data, m->size);
      auto it = g_mappings.find(data);
      if (it != g_mappings.end() && it->second == m) g_mappings.erase(it);
    }
  }
  delete m;
}

// memfdCreate(name, sizeBytes): fd (close-on-exec; pass it to children explicitly)
Napi::Value MemfdCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name;
  int64_t size = 0;
  if (!StringArg(info, 0, &name) || !IntArg(info, 1, 1, kMapBytesMax, &size)) {
    return ThrowArg(env, "memfdCreate", "needs (name: string, sizeBytes: integer in [1, 64 GiB])");
  }
  int fd = memfd_create(name.c_str(), MFD_CLOEXEC);
  if (fd < 0) return Throw(env, errno, "memfd_create", "creating memfd " + name);
  if (ftruncate(fd, static_cast<off_t>(size)) != 0) {
    int err = errno;
    close(fd);
    return Throw(env, err, "ftruncate", "sizing memfd " + name + " to " + std::to_string(size) + " bytes");
  }
  return Napi::Number::New(env, fd);
}

// mapFd(fd, sizeBytes): ArrayBuffer over a MAP_SHARED, read-write mapping of the fd.
Napi::Value MapFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = -1;
  int64_t size = 0;
  if (!FdArg(info, 0, &fd) || !IntArg(info, 1, 1, kMapBytesMax, &size)) {
    return ThrowArg(env, "mapFd", "needs (fd: integer >= 0, sizeBytes: integer in [1, 64 GiB])");
  }
  void* p = mmap(nullptr, static_cast<size_t>(size), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return Throw(env, errno, "mmap", "mapping fd " + std::to_string(fd));
  auto* m = new Mapping{static_cast<size_t>(size), false};
  {
    std::lock_guard<std::mutex> hold(g_lock);
    g_mappings[p] = m;
  }
  return Napi::ArrayBuffer::New(env, p, m->size, Finalize, m);
}

// unmap(buffer): true when this call unmapped it, false when it was released before. The buffer is
// detached first (byteLength 0, every view of it empty), so no JS can touch the unmapped pages.
Napi::Value Unmap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArrayBuffer()) return ThrowArg(env, "unmap", "needs an ArrayBuffer returned by mapFd");
  auto ab = info[0].As<Napi::ArrayBuffer>();
  if (ab.IsDetached()) return Napi::Boolean::New(env, false);
  void* data = ab.Data();
  Mapping* m = nullptr;
  {
    std::lock_guard<std::mutex> hold(g_lock);
    auto it = g_mappings.find(data);
    if (it != g_mappings.end()) m = it->second;
  }
  if (m == nullptr) return ThrowArg(env, "unmap", "this ArrayBuffer is not a mapping made by mapFd");
  ab.Detach();
  if (env.IsExceptionPending()) return env.Undefined();
  size_t size = 0;
  {
    std::lock_guard<std::mutex> hold(g_lock);
    g_mappings.erase(data);
    m->unmapped = true;  // the finalizer, when it runs, only frees the record
    size = m->size;
  }
  if (munmap(data, size) != 0) return Throw(env, errno, "munmap", "unmapping a pool");
  return Napi::Boolean::New(env, true);
}

// closeFd(fd)
Napi::Value CloseFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = -1;
  if (!FdArg(info, 0, &fd)) return ThrowArg(env, "closeFd", "needs (fd: integer >= 0)");
  if (close(fd) != 0) return Throw(env, errno, "close", "closing fd " + std::to_string(fd));
  return env.Undefined();
}

// pidfdGetfd(pid, fd): a duplicate, in this process, of `fd` of process `pid` (needs ptrace rights
// over it: root, or the same user without Yama restrictions). The caller closes it.
Napi::Value PidfdGetfd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t pid = 0;
  int fd = -1;
  if (!IntArg(info, 0, 1, INT32_MAX, &pid) || !FdArg(info, 1, &fd)) {
    return ThrowArg(env, "pidfdGetfd", "needs (pid: integer >= 1, fd: integer >= 0)");
  }
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, static_cast<pid_t>(pid), 0));
  if (pidfd < 0) return Throw(env, errno, "pidfd_open", "opening process " + std::to_string(pid));
  int dup = static_cast<int>(syscall(SYS_pidfd_getfd, pidfd, fd, 0));
  int err = errno;
  close(pidfd);
  if (dup < 0) {
    return Throw(env, err, "pidfd_getfd", "taking fd " + std::to_string(fd) + " of process " + std::to_string(pid),
                 err == EPERM ? "needs root or ptrace rights over that process" : "");
  }
  return Napi::Number::New(env, dup);
}

}  // namespace

void InitMemory(Napi::Env env, Napi::Object exports) {
  exports.Set("memfdCreate", Napi::Function::New(env, MemfdCreate));
  exports.Set("mapFd", Napi::Function::New(env, MapFd));
  exports.Set("unmap", Napi::Function::New(env, Unmap));
  exports.Set("closeFd", Napi::Function::New(env, CloseFd));
  exports.Set("pidfdGetfd", Napi::Function::New(env, PidfdGetfd));
}

}  // namespace sigma
