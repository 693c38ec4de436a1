// sigma-ts native addon: the kernel facilities Node does not expose — memfd_create and mmap of a shared
// mapping exposed to JS as an external ArrayBuffer (the per-realm pools), and the system libbpf: load
// BPF objects, attach the sk_msg verdict to a SOCKHASH, and map operations keyed and valued by Buffers.
// Every kernel error becomes a JS Error with errno, code and syscall — never an abort.
#include <napi.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <cstdarg>
#include <vector>
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

// ---- libbpf -----------------------------------------------------------------------------------

std::vector<bpf_object*> g_objects;  // handle = index + 1; closed slots are nullptr

int Quiet(enum libbpf_print_level level, const char* fmt, va_list args) {
  return level == LIBBPF_WARN ? vfprintf(stderr, fmt, args) : 0;
}

bpf_object* ObjectArg(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || !info[i].IsNumber()) return nullptr;
  int64_t h = info[i].As<Napi::Number>().Int64Value();
  if (h < 1 || static_cast<size_t>(h) > g_objects.size()) return nullptr;
  return g_objects[h - 1];
}

// bpfLoad(path): handle
Napi::Value BpfLoad(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) return ThrowArg(env, "bpfLoad(path) needs the path of a BPF object file");
  std::string path = info[0].As<Napi::String>().Utf8Value();
  bpf_object* obj = bpf_object__open_file(path.c_str(), nullptr);
  if (obj == nullptr) return ThrowErrno(env, errno, "bpf_object__open_file", "opening " + path);
  int r = bpf_object__load(obj);
  if (r != 0) {
    bpf_object__close(obj);
    return ThrowErrno(env, -r, "bpf_object__load", "loading " + path + " (needs root or CAP_BPF; see the verifier log above)");
  }
  g_objects.push_back(obj);
  return Napi::Number::New(env, static_cast<double>(g_objects.size()));
}

// bpfClose(handle)
Napi::Value BpfClose(const Napi::CallbackInfo& info) {
  bpf_object* obj = ObjectArg(info, 0);
  if (obj != nullptr) {
    bpf_object__close(obj);
    g_objects[info[0].As<Napi::Number>().Int64Value() - 1] = nullptr;
  }
  return info.Env().Undefined();
}

// bpfMapFd(handle, name) / bpfProgFd(handle, name)
Napi::Value BpfMapFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bpf_object* obj = ObjectArg(info, 0);
  if (obj == nullptr || info.Length() < 2 || !info[1].IsString()) return ThrowArg(env, "bpfMapFd(handle, name) needs a loaded object and a map name");
  std::string name = info[1].As<Napi::String>().Utf8Value();
  int fd = bpf_object__find_map_fd_by_name(obj, name.c_str());
  if (fd < 0) return ThrowErrno(env, ENOENT, "bpf_object__find_map_fd_by_name", "no map " + name);
  return Napi::Number::New(env, fd);
}

Napi::Value BpfProgFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bpf_object* obj = ObjectArg(info, 0);
  if (obj == nullptr || info.Length() < 2 || !info[1].IsString()) return ThrowArg(env, "bpfProgFd(handle, name) needs a loaded object and a program name");
  std::string name = info[1].As<Napi::String>().Utf8Value();
  bpf_program* prog = bpf_object__find_program_by_name(obj, name.c_str());
  if (prog == nullptr) return ThrowErrno(env, ENOENT, "bpf_object__find_program_by_name", "no program " + name);
  return Napi::Number::New(env, bpf_program__fd(prog));
}

// bpfAttachSkMsg(progFd, mapFd) / bpfDetachSkMsg(progFd, mapFd)
Napi::Value BpfAttachSkMsg(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsNumber()) return ThrowArg(env, "bpfAttachSkMsg(progFd, mapFd)");
  int r = bpf_prog_attach(info[0].As<Napi::Number>().Int32Value(), info[1].As<Napi::Number>().Int32Value(), BPF_SK_MSG_VERDICT, 0);
  if (r != 0) return ThrowErrno(env, errno, "bpf_prog_attach", "attaching the sk_msg verdict");
  return env.Undefined();
}

Napi::Value BpfDetachSkMsg(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsNumber()) return ThrowArg(env, "bpfDetachSkMsg(progFd, mapFd)");
  int r = bpf_prog_detach2(info[0].As<Napi::Number>().Int32Value(), info[1].As<Napi::Number>().Int32Value(), BPF_SK_MSG_VERDICT);
  if (r != 0) return ThrowErrno(env, errno, "bpf_prog_detach2", "detaching the sk_msg verdict");
  return env.Undefined();
}

// bpfMapUpdate(mapFd, key: Buffer, value: Buffer, flags)
Napi::Value BpfMapUpdate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4 || !info[0].IsNumber() || !info[1].IsBuffer() || !info[2].IsBuffer() || !info[3].IsNumber()) return ThrowArg(env, "bpfMapUpdate(mapFd, key, value, flags) needs Buffers");
  auto key = info[1].As<Napi::Buffer<uint8_t>>();
  auto value = info[2].As<Napi::Buffer<uint8_t>>();
  int r = bpf_map_update_elem(info[0].As<Napi::Number>().Int32Value(), key.Data(), value.Data(), info[3].As<Napi::Number>().Int64Value());
  if (r != 0) return ThrowErrno(env, errno, "bpf_map_update_elem", "map update");
  return env.Undefined();
}

// bpfMapLookup(mapFd, key: Buffer, valueBytes): Buffer | null
Napi::Value BpfMapLookup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsNumber() || !info[1].IsBuffer() || !info[2].IsNumber()) return ThrowArg(env, "bpfMapLookup(mapFd, key, valueBytes)");
  auto key = info[1].As<Napi::Buffer<uint8_t>>();
  size_t n = static_cast<size_t>(info[2].As<Napi::Number>().Int64Value());
  if (n == 0 || n > (1u << 20)) return ThrowArg(env, "bpfMapLookup: valueBytes must be in [1, 1 MiB]");
  auto out = Napi::Buffer<uint8_t>::New(env, n);
  if (bpf_map_lookup_elem(info[0].As<Napi::Number>().Int32Value(), key.Data(), out.Data()) != 0) {
    if (errno == ENOENT) return env.Null();
    return ThrowErrno(env, errno, "bpf_map_lookup_elem", "map lookup");
  }
  return out;
}

// bpfMapDelete(mapFd, key: Buffer): boolean (false when absent)
Napi::Value BpfMapDelete(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsBuffer()) return ThrowArg(env, "bpfMapDelete(mapFd, key)");
  auto key = info[1].As<Napi::Buffer<uint8_t>>();
  if (bpf_map_delete_elem(info[0].As<Napi::Number>().Int32Value(), key.Data()) != 0) {
    if (errno == ENOENT) return Napi::Boolean::New(env, false);
    return ThrowErrno(env, errno, "bpf_map_delete_elem", "map delete");
  }
  return Napi::Boolean::New(env, true);
}

Napi::Value PossibleCpus(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), libbpf_num_possible_cpus());
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  libbpf_set_print(Quiet);
  exports.Set("bpfLoad", Napi::Function::New(env, BpfLoad));
  exports.Set("bpfClose", Napi::Function::New(env, BpfClose));
  exports.Set("bpfMapFd", Napi::Function::New(env, BpfMapFd));
  exports.Set("bpfProgFd", Napi::Function::New(env, BpfProgFd));
  exports.Set("bpfAttachSkMsg", Napi::Function::New(env, BpfAttachSkMsg));
  exports.Set("bpfDetachSkMsg", Napi::Function::New(env, BpfDetachSkMsg));
  exports.Set("bpfMapUpdate", Napi::Function::New(env, BpfMapUpdate));
  exports.Set("bpfMapLookup", Napi::Function::New(env, BpfMapLookup));
  exports.Set("bpfMapDelete", Napi::Function::New(env, BpfMapDelete));
  exports.Set("possibleCpus", Napi::Function::New(env, PossibleCpus));
  exports.Set("memfdCreate", Napi::Function::New(env, MemfdCreate));
  exports.Set("mapFd", Napi::Function::New(env, MapFd));
  exports.Set("closeFd", Napi::Function::New(env, CloseFd));
  return exports;
}

}  // namespace

NODE_API_MODULE(sigma_native, Init)
