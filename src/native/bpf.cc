// The system libbpf, exposed to JS by handle and fd: load BPF objects, find their programs and maps,
// attach an sk_msg verdict to a SOCKHASH, pin, and map operations whose keys and values are Buffers.
// Every Buffer is checked against the map's real key/value size first: a short Buffer would otherwise
// let the kernel read or write past it. Failures come back as errors with errno, never as aborts.
#include "native_common.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/magic.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cstdarg>
#include <cstdio>
#include <mutex>
#include <vector>

#include "../../bpf/sigma_datapath.h"

namespace sigma {
namespace {

// libbpf's messages (the verifier log among them) are captured while loading, so a failed load can say
// why in its error instead of spraying stderr.
constexpr size_t kLogBytesMax = 64 * 1024;
constexpr size_t kLogTailBytes = 3000;
thread_local std::string* t_log = nullptr;

int Print(enum libbpf_print_level level, const char* fmt, va_list args) {
  if (t_log != nullptr) {
    char line[1024];
    vsnprintf(line, sizeof line, fmt, args);
    if (t_log->size() < kLogBytesMax) t_log->append(line);
    return 0;
  }
  return level == LIBBPF_WARN ? vfprintf(stderr, fmt, args) : 0;
}

// Loaded objects by handle (index + 1); a closed slot is nullptr. Handles are never reused.
std::mutex g_lock;
std::vector<bpf_object*> g_objects;

bpf_object* ObjectArg(const Napi::CallbackInfo& info, size_t i) {
  int64_t h = 0;
  if (!IntArg(info, i, 1, INT32_MAX, &h)) return nullptr;
  std::lock_guard<std::mutex> hold(g_lock);
  return static_cast<size_t>(h) <= g_objects.size() ? g_objects[h - 1] : nullptr;
}

// objectLoad(path): handle
Napi::Value ObjectLoad(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path;
  if (!StringArg(info, 0, &path)) return ThrowArg(env, "objectLoad", "needs (path: string) of a BPF object file");
  std::string log;
  t_log = &log;
  bpf_object* obj = bpf_object__open_file(path.c_str(), nullptr);
  int err = obj == nullptr ? errno : 0;
  if (obj != nullptr) {
    int r = bpf_object__load(obj);
    if (r != 0) {
      err = -r;
      bpf_object__close(obj);
      obj = nullptr;
    }
  }
  t_log = nullptr;
  if (obj == nullptr) {
    if (err == EPERM) return Throw(env, err, "bpf", "loading " + path, "BPF needs root, or CAP_BPF and CAP_NET_ADMIN; without them use the userspace data path");
    if (err == ENOENT) return Throw(env, err, "bpf_object__open_file", "opening " + path, "build it with `npm run build`");
    std::string tail = log.size() > kLogTailBytes ? log.substr(log.size() - kLogTailBytes) : log;
    return Throw(env, err, "bpf", "loading " + path, "libbpf said: " + tail);
  }
  std::lock_guard<std::mutex> hold(g_lock);
  g_objects.push_back(obj);
  return Napi::Number::New(env, static_cast<double>(g_objects.size()));
}

// objectClose(handle): false when it was closed already. Closes the object's program and map fds: maps
// disappear when nothing else (a pin, a socket, another fd) holds them.
Napi::Value ObjectClose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t h = 0;
  if (!IntArg(info, 0, 1, INT32_MAX, &h)) return ThrowArg(env, "objectClose", "needs (handle: integer >= 1)");
  bpf_object* obj = nullptr;
  {
    std::lock_guard<std::mutex> hold(g_lock);
    if (static_cast<size_t>(h) <= g_objects.size()) std::swap(obj, g_objects[h - 1]);
  }
  if (obj != nullptr) bpf_object__close(obj);
  return Napi::Boolean::New(env, obj != nullptr);
}

// objectMapFd(handle, name) / objectProgFd(handle, name): fds owned by the object (do not close them).
Napi::Value ObjectMapFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bpf_object* obj = ObjectArg(info, 0);
  std::string name;
  if (obj == nullptr || !StringArg(info, 1, &name)) return ThrowArg(env, "objectMapFd", "needs (handle of a loaded object, map name)");
  int fd = bpf_object__find_map_fd_by_name(obj, name.c_str());
  if (fd < 0) return Throw(env, ENOENT, "bpf_object__find_map_fd_by_name", "the object has no map named " + name);
  return Napi::Number::New(env, fd);
}

Napi::Value ObjectProgFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bpf_object* obj = ObjectArg(info, 0);
  std::string name;
  if (obj == nullptr || !StringArg(info, 1, &name)) return ThrowArg(env, "objectProgFd", "needs (handle of a loaded object, program name)");
  bpf_program* prog = bpf_object__find_program_by_name(obj, name.c_str());
  if (prog == nullptr) return Throw(env, ENOENT, "bpf_object__find_program_by_name", "the object has no program named " + name);
  return Napi::Number::New(env, bpf_program__fd(prog));
}

// attachSkMsg(progFd, sockhashFd) / detachSkMsg(progFd, sockhashFd)
Napi::Value AttachSkMsg(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int prog = -1, map = -1;
  if (!FdArg(info, 0, &prog) || !FdArg(info, 1, &map)) return ThrowArg(env, "attachSkMsg", "needs (progFd, mapFd)");
  if (bpf_prog_attach(prog, map, BPF_SK_MSG_VERDICT, 0) != 0) return Throw(env, errno, "bpf_prog_attach", "attaching the sk_msg verdict to the sockhash");
  return env.Undefined();
}

Napi::Value DetachSkMsg(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int prog = -1, map = -1;
  if (!FdArg(info, 0, &prog) || !FdArg(info, 1, &map)) return ThrowArg(env, "detachSkMsg", "needs (progFd, mapFd)");
  if (bpf_prog_detach2(prog, map, BPF_SK_MSG_VERDICT) != 0) return Throw(env, errno, "bpf_prog_detach2", "detaching the sk_msg verdict");
  return env.Undefined();
}

// pin(fd, path) / pinned(path): fd / unpin(path)
Napi::Value Pin(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = -1;
  std::string path;
  if (!FdArg(info, 0, &fd) || !StringArg(info, 1, &path)) return ThrowArg(env, "pin", "needs (fd, path under a bpffs mount)");
  if (bpf_obj_pin(fd, path.c_str()) != 0) return Throw(env, errno, "bpf_obj_pin", "pinning at " + path, errno == EPERM ? "is the path on a bpf filesystem? see mountBpffs()" : "");
  return env.Undefined();
}

Napi::Value Pinned(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path;
  if (!StringArg(info, 0, &path)) return ThrowArg(env, "pinned", "needs (path)");
  int fd = bpf_obj_get(path.c_str());
  if (fd < 0) return Throw(env, errno, "bpf_obj_get", "opening the pinned object " + path);
  return Napi::Number::New(env, fd);
}

Napi::Value Unpin(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path;
  if (!StringArg(info, 0, &path)) return ThrowArg(env, "unpin", "needs (path)");
  if (unlink(path.c_str()) != 0) {
    if (errno == ENOENT) return Napi::Boolean::New(env, false);
    return Throw(env, errno, "unlink", "unpinning " + path);
  }
  return Napi::Boolean::New(env, true);
}

// isBpffs(path): whether path is (the root of) a bpf filesystem. mountBpffs(path): mounts one there
// unless there is one already; true when it mounted.
Napi::Value IsBpffs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path;
  if (!StringArg(info, 0, &path)) return ThrowArg(env, "isBpffs", "needs (path)");
  struct statfs st {};
  if (statfs(path.c_str(), &st) != 0) return Napi::Boolean::New(env, false);
  return Napi::Boolean::New(env, st.f_type == BPF_FS_MAGIC);
}

Napi::Value MountBpffs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path;
  if (!StringArg(info, 0, &path)) return ThrowArg(env, "mountBpffs", "needs (path)");
  struct statfs st {};
  if (statfs(path.c_str(), &st) == 0 && st.f_type == BPF_FS_MAGIC) return Napi::Boolean::New(env, false);
  if (mount("bpf", path.c_str(), "bpf", 0, "mode=0700") != 0) return Throw(env, errno, "mount", "mounting bpffs at " + path, errno == EPERM ? "needs root" : "");
  return Napi::Boolean::New(env, true);
}

Napi::Value PossibleCpus(const Napi::CallbackInfo& info) {
  int n = libbpf_num_possible_cpus();
  if (n < 0) return Throw(info.Env(), -n, "libbpf_num_possible_cpus", "reading /sys/devices/system/cpu/possible");
  return Napi::Number::New(info.Env(), n);
}

// The header's constants as the C compiler sees them; the TS mirror is tested against these.
Napi::Value HeaderConstants(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
#define SIGMA_EXPORT_CONST(name) o.Set(#name, Napi::Number::New(env, static_cast<double>(name)))
  SIGMA_EXPORT_CONST(SIGMA_DESC_SIZE);
  SIGMA_EXPORT_CONST(SIGMA_DESC_DST_EP);
  SIGMA_EXPORT_CONST(SIGMA_DESC_SRC_EP);
  SIGMA_EXPORT_CONST(SIGMA_DESC_OFFSET);
  SIGMA_EXPORT_CONST(SIGMA_DESC_LENGTH);
  SIGMA_EXPORT_CONST(SIGMA_DESC_GENERATION);
  SIGMA_EXPORT_CONST(SIGMA_DESC_FLAGS);
  SIGMA_EXPORT_CONST(SIGMA_DESC_REQUEST_ID);
  SIGMA_EXPORT_CONST(SIGMA_DESC_HEAD_SIZE);
  SIGMA_EXPORT_CONST(SIGMA_WRITE_BYTES_MAX);
  SIGMA_EXPORT_CONST(SIGMA_NO_EP);
  SIGMA_EXPORT_CONST(SIGMA_HUB_EP);
  SIGMA_EXPORT_CONST(SIGMA_SYSTEM_REALM);
  SIGMA_EXPORT_CONST(SIGMA_F_CREDIT);
  SIGMA_EXPORT_CONST(SIGMA_F_SENDER_MASK);
  SIGMA_EXPORT_CONST(SIGMA_F_KERNEL_MASK);
  SIGMA_EXPORT_CONST(SIGMA_F_COPY);
  SIGMA_EXPORT_CONST(SIGMA_F_REJECTED);
  SIGMA_EXPORT_CONST(SIGMA_REASON_SHIFT);
  SIGMA_EXPORT_CONST(SIGMA_REASON_MASK);
  SIGMA_EXPORT_CONST(SIGMA_R_NONE);
  SIGMA_EXPORT_CONST(SIGMA_R_NO_IDENTITY);
  SIGMA_EXPORT_CONST(SIGMA_R_SRC_SPOOFED);
  SIGMA_EXPORT_CONST(SIGMA_R_CROSS_REALM);
  SIGMA_EXPORT_CONST(SIGMA_R_UNKNOWN_DST);
  SIGMA_EXPORT_CONST(SIGMA_R_DST_GONE);
  SIGMA_EXPORT_CONST(SIGMA_R_MAX);
  SIGMA_EXPORT_CONST(SIGMA_ENDPOINTS_MAX);
  o.Set("sizeofIdentity", Napi::Number::New(env, sizeof(struct sigma_identity)));
  o.Set("sizeofEpInfo", Napi::Number::New(env, sizeof(struct sigma_ep_info)));
  o.Set("sizeofExportKey", Napi::Number::New(env, sizeof(struct sigma_export_key)));
  o.Set("sizeofMetrics", Napi::Number::New(env, sizeof(struct sigma_metrics)));
#undef SIGMA_EXPORT_CONST
  return o;
}

}  // namespace

void InitBpf(Napi::Env env, Napi::Object exports) {
  libbpf_set_print(Print);
  exports.Set("objectLoad", Napi::Function::New(env, ObjectLoad));
  exports.Set("objectClose", Napi::Function::New(env, ObjectClose));
  exports.Set("objectMapFd", Napi::Function::New(env, ObjectMapFd));
  exports.Set("objectProgFd", Napi::Function::New(env, ObjectProgFd));
  exports.Set("attachSkMsg", Napi::Function::New(env, AttachSkMsg));
  exports.Set("detachSkMsg", Napi::Function::New(env, DetachSkMsg));
  exports.Set("pin", Napi::Function::New(env, Pin));
  exports.Set("pinned", Napi::Function::New(env, Pinned));
  exports.Set("unpin", Napi::Function::New(env, Unpin));
  exports.Set("isBpffs", Napi::Function::New(env, IsBpffs));
  exports.Set("mountBpffs", Napi::Function::New(env, MountBpffs));
  exports.Set("possibleCpus", Napi::Function::New(env, PossibleCpus));
  exports.Set("headerConstants", Napi::Function::New(env, HeaderConstants));
  InitBpfMaps(env, exports);
}

}  // namespace sigma
