// sigma-ts native addon: the kernel facilities Node does not expose. So far: memfd_create and mmap of
// a shared mapping exposed to JS as an external ArrayBuffer (the per-realm shared-memory pools).
// Every kernel error becomes a JS Error with errno, code and syscall — never an abort.
#include <napi.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <sys/mman.h>
#include <unistd.h>

namespace {

// Upper bound on one mapping; a pool larger than this is a configuration mistake, not a request.
constexpr double kMapBytesMax = 64.0 * 1024 * 1024 * 1024;

Napi::Value ThrowErrno(Napi::Env env, int err, const char* syscall, const std::string& what) {
  Napi::Error e = Napi::Error::New(env, what + ": " + std::strerror(err));
  e.Set("errno", Napi::Number::New(env, err));
  const char* name = strerrorname_np(err);
  e.Set("code", Napi::String::New(env, name != nullptr ? name : "EUNKNOWN"));
  e.Set("syscall", Napi::String::New(env, syscall));
  e.ThrowAsJavaScriptException();
  return env.Undefined();
}

Napi::Value ThrowArg(Napi::Env env, const std::string& what) {
  Napi::TypeError::New(env, what).ThrowAsJavaScriptException();
  return env.Undefined();
}

bool SizeArg(const Napi::Value& v, size_t* out) {
  if (!v.IsNumber()) return false;
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 1 && d <= kMapBytesMax) || d != static_cast<double>(static_cast<size_t>(d))) return false;
  *out = static_cast<size_t>(d);
  return true;
}

// memfdCreate(name: string, sizeBytes: number): fd
Napi::Value MemfdCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  size_t size = 0;
  if (info.Length() < 2 || !info[0].IsString() || !SizeArg(info[1], &size)) {
    return ThrowArg(env, "memfdCreate(name, sizeBytes) needs a string and an integer size in [1, 64 GiB]");
  }
  std::string name = info[0].As<Napi::String>().Utf8Value();
  int fd = memfd_create(name.c_str(), MFD_CLOEXEC);
  if (fd < 0) return ThrowErrno(env, errno, "memfd_create", "memfd_create(" + name + ")");
  if (ftruncate(fd, static_cast<off_t>(size)) != 0) {
    int err = errno;
    close(fd);
    return ThrowErrno(env, err, "ftruncate", "sizing memfd " + name);
  }
  return Napi::Number::New(env, fd);
}

// The mapping's size travels with the finalizer so that munmap gets the exact length.
void Unmap(Napi::Env /*env*/, void* data, size_t* size) {
  munmap(data, *size);
  delete size;
}

// mapFd(fd: number, sizeBytes: number): ArrayBuffer — MAP_SHARED, unmapped when the buffer is collected.
Napi::Value MapFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  size_t size = 0;
  if (info.Length() < 2 || !info[0].IsNumber() || !SizeArg(info[1], &size)) {
    return ThrowArg(env, "mapFd(fd, sizeBytes) needs an fd and an integer size in [1, 64 GiB]");
  }
  int fd = info[0].As<Napi::Number>().Int32Value();
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return ThrowErrno(env, errno, "mmap", "mapping fd " + std::to_string(fd));
  return Napi::ArrayBuffer::New(env, p, size, Unmap, new size_t(size));
}

// closeFd(fd: number)
Napi::Value CloseFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) return ThrowArg(env, "closeFd(fd) needs an fd");
  int fd = info[0].As<Napi::Number>().Int32Value();
  if (close(fd) != 0) return ThrowErrno(env, errno, "close", "closing fd " + std::to_string(fd));
  return env.Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("memfdCreate", Napi::Function::New(env, MemfdCreate));
  exports.Set("mapFd", Napi::Function::New(env, MapFd));
  exports.Set("closeFd", Napi::Function::New(env, CloseFd));
  return exports;
}

}  // namespace

NODE_API_MODULE(sigma_native, Init)
