// BPF map operations by fd, keys and values as Buffers. The kernel takes raw pointers and trusts the
// sizes it was created with, so every Buffer is checked against the map's real key/value size (asked
// of the kernel) before the call: a wrong size is an EINVAL error, never an out-of-bounds access.
#include "native_common.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cstring>

namespace sigma {
namespace {

// Beyond this a lookup is a bug (our structs are tens of bytes; per-CPU values are multiplied by CPUs).
constexpr uint32_t kValueBytesMax = 1u << 20;

struct Shape {
  uint32_t type;
  uint32_t key;
  uint32_t value;   // one CPU's value
  uint32_t stride;  // per-CPU maps: value rounded up to 8, the layout the kernel copies out
  uint32_t cpus;    // 1 unless per-CPU
};

bool IsPerCpu(uint32_t type) {
  return type == BPF_MAP_TYPE_PERCPU_HASH || type == BPF_MAP_TYPE_PERCPU_ARRAY || type == BPF_MAP_TYPE_LRU_PERCPU_HASH ||
         type == BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE;
}

// Asks the kernel what the map is; throws (and returns false) when fd is not a map.
bool GetShape(Napi::Env env, int fd, Shape* s) {
  bpf_map_info info{};
  uint32_t len = sizeof info;
  if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0) {
    Throw(env, errno, "bpf_obj_get_info_by_fd", "fd " + std::to_string(fd) + " is not a BPF map");
    return false;
  }
  s->type = info.type;
  s->key = info.key_size;
  s->value = info.value_size;
  s->stride = info.value_size;
  s->cpus = 1;
  if (IsPerCpu(info.type)) {
    int n = libbpf_num_possible_cpus();
    if (n <= 0) {
      Throw(env, n < 0 ? -n : EINVAL, "libbpf_num_possible_cpus", "counting possible CPUs");
      return false;
    }
    s->stride = (info.value_size + 7) & ~7u;
    s->cpus = static_cast<uint32_t>(n);
  }
  return true;
}

bool SizeIs(Napi::Env env, const char* fn, const char* what, size_t got, size_t want) {
  if (got == want) return true;
  ThrowArg(env, fn, std::string(what) + " is " + std::to_string(got) + " bytes, the map wants " + std::to_string(want));
  return false;
}

// mapCreate(type, keyBytes, valueBytes, entriesMax, name): fd
Napi::Value MapCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string type, name;
  int64_t key = 0, value = 0, entries = 0;
  if (!StringArg(info, 0, &type) || !IntArg(info, 1, 1, 512, &key) || !IntArg(info, 2, 1, kValueBytesMax, &value) ||
      !IntArg(info, 3, 1, 1 << 24, &entries) || !StringArg(info, 4, &name)) {
    return ThrowArg(env, "mapCreate", "needs (type, keyBytes in [1, 512], valueBytes in [1, 1 MiB], entriesMax in [1, 2^24], name)");
  }
  bpf_map_type t;
  if (type == "hash") t = BPF_MAP_TYPE_HASH;
  else if (type == "array") t = BPF_MAP_TYPE_ARRAY;
  else if (type == "percpu_hash") t = BPF_MAP_TYPE_PERCPU_HASH;
  else if (type == "percpu_array") t = BPF_MAP_TYPE_PERCPU_ARRAY;
  else if (type == "sockhash") t = BPF_MAP_TYPE_SOCKHASH;
  else return ThrowArg(env, "mapCreate", "type must be hash, array, percpu_hash, percpu_array or sockhash, got " + type);
  int fd = bpf_map_create(t, name.c_str(), static_cast<uint32_t>(key), static_cast<uint32_t>(value), static_cast<uint32_t>(entries), nullptr);
  if (fd < 0) return Throw(env, -fd, "bpf_map_create", "creating " + type + " map " + name, -fd == EPERM ? "needs root or CAP_BPF" : "");
  return Napi::Number::New(env, fd);
}

// mapInfo(fd): { type, keyBytes, valueBytes, entriesMax, flags, id, name }
Napi::Value MapInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = -1;
  if (!FdArg(info, 0, &fd)) return ThrowArg(env, "mapInfo", "needs (mapFd)");
  bpf_map_info mi{};
  uint32_t len = sizeof mi;
  if (bpf_obj_get_info_by_fd(fd, &mi, &len) != 0) return Throw(env, errno, "bpf_obj_get_info_by_fd", "fd " + std::to_string(fd) + " is not a BPF map");
  Napi::Object o = Napi::Object::New(env);
  o.Set("type", mi.type);
  o.Set("keyBytes", mi.key_size);
  o.Set("valueBytes", mi.value_size);
  o.Set("entriesMax", mi.max_entries);
  o.Set("flags", mi.map_flags);
  o.Set("id", mi.id);
  o.Set("name", std::string(mi.name, strnlen(mi.name, sizeof mi.name)));
  return o;
}

// mapUpdate(fd, key, value, flags): for per-CPU maps, value holds every CPU's value (8-byte strides).
Napi::Value MapUpdate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = -1;
  Napi::Buffer<uint8_t> key, value;
  int64_t flags = 0;
  if (!FdArg(info, 0, &fd) || !BufferArg(info, 1, &key) || !BufferArg(info, 2, &value) || !IntArg(info, 3, 0, 7, &flags)) {
    return ThrowArg(env, "mapUpdate", "needs (mapFd, key: Buffer, value: Buffer, flags: 0 any | 1 noexist | 2 exist)");
  }
  Shape s{};
  if (!GetShape(env, fd, &s) || !SizeIs(env, "mapUpdate", "key", key.Length(), s.key) ||
      !SizeIs(env, "mapUpdate", "value", value.Length(), s.cpus == 1 ? s.value : size_t(s.stride) * s.cpus)) {
    return env.Undefined();
  }
  if (bpf_map_update_elem(fd, key.Data(), value.Data(), static_cast<uint64_t>(flags)) != 0) return Throw(env, errno, "bpf_map_update_elem", "updating a map entry");
  return env.Undefined();
}

// mapLookup(fd, key): Buffer | null. Per-CPU maps return every CPU's value back to back (8-byte strides).
Napi::Value MapLookup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = -1;
  Napi::Buffer<uint8_t> key;
  if (!FdArg(info, 0, &fd) || !BufferArg(info, 1, &key)) return ThrowArg(env, "mapLookup", "needs (mapFd, key: Buffer)");
  Shape s{};
  if (!GetShape(env, fd, &s) || !SizeIs(env, "mapLookup", "key", key.Length(), s.key)) return env.Undefined();
  size_t bytes = s.cpus == 1 ? s.value : size_t(s.stride) * s.cpus;
  if (bytes == 0 || bytes > kValueBytesMax * 64) return ThrowArg(env, "mapLookup", "the map's values are too large to copy out");
  auto out = Napi::Buffer<uint8_t>::New(env, bytes);
  if (bpf_map_lookup_elem(fd, key.Data(), out.Data()) != 0) {
    if (errno == ENOENT) return env.Null();
    return Throw(env, errno, "bpf_map_lookup_elem", "looking up a map entry");
  }
  return out;
}

// mapDelete(fd, key): false when there was no such entry.
Napi::Value MapDelete(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = -1;
  Napi::Buffer<uint8_t> key;
  if (!FdArg(info, 0, &fd) || !BufferArg(info, 1, &key)) return ThrowArg(env, "mapDelete", "needs (mapFd, key: Buffer)");
  Shape s{};
  if (!GetShape(env, fd, &s) || !SizeIs(env, "mapDelete", "key", key.Length(), s.key)) return env.Undefined();
  if (bpf_map_delete_elem(fd, key.Data()) != 0) {
    if (errno == ENOENT) return Napi::Boolean::New(env, false);
    return Throw(env, errno, "bpf_map_delete_elem", "deleting a map entry");
  }
  return Napi::Boolean::New(env, true);
}

// mapNextKey(fd, key | null): the key after `key` (the first key for null), or null at the end.
Napi::Value MapNextKey(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = -1;
  Napi::Buffer<uint8_t> key;
  bool first = info.Length() >= 2 && info[1].IsNull();
  if (!FdArg(info, 0, &fd) || (!first && !BufferArg(info, 1, &key))) return ThrowArg(env, "mapNextKey", "needs (mapFd, key: Buffer | null)");
  Shape s{};
  if (!GetShape(env, fd, &s) || (!first && !SizeIs(env, "mapNextKey", "key", key.Length(), s.key))) return env.Undefined();
  auto out = Napi::Buffer<uint8_t>::New(env, s.key);
  if (bpf_map_get_next_key(fd, first ? nullptr : key.Data(), out.Data()) != 0) {
    if (errno == ENOENT) return env.Null();
    return Throw(env, errno, "bpf_map_get_next_key", "iterating a map");
  }
  return out;
}

// sockMapUpdate(sockhashFd, key, socketFd, flags): puts a (connected TCP) socket under `key`.
Napi::Value SockMapUpdate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = -1, sock = -1;
  Napi::Buffer<uint8_t> key;
  int64_t flags = 0;
  if (!FdArg(info, 0, &fd) || !BufferArg(info, 1, &key) || !FdArg(info, 2, &sock) || !IntArg(info, 3, 0, 2, &flags)) {
    return ThrowArg(env, "sockMapUpdate", "needs (mapFd, key: Buffer, socketFd, flags)");
  }
  Shape s{};
  if (!GetShape(env, fd, &s) || !SizeIs(env, "sockMapUpdate", "key", key.Length(), s.key)) return env.Undefined();
  if (s.type != BPF_MAP_TYPE_SOCKHASH && s.type != BPF_MAP_TYPE_SOCKMAP) return ThrowArg(env, "sockMapUpdate", "the map is not a sockhash or sockmap");
  uint64_t value = static_cast<uint64_t>(sock);  // the kernel reads 4 or 8 bytes, little-endian either way
  if (s.value != 4 && s.value != 8) return ThrowArg(env, "sockMapUpdate", "the map's values must be 4 or 8 bytes");
  if (bpf_map_update_elem(fd, key.Data(), &value, static_cast<uint64_t>(flags)) != 0) {
    return Throw(env, errno, "bpf_map_update_elem", "putting socket fd " + std::to_string(sock) + " into the sockhash",
                 errno == EOPNOTSUPP ? "only connected TCP (or UDP/unix) sockets can be added"
                 : errno == EBUSY    ? "the socket already sits in a map with an sk_msg program: register a socket once, under one key"
                                     : "");
  }
  return env.Undefined();
}

// skStorage{Update,Lookup,Delete}(mapFd, socketFd[, value, flags]): socket-local storage by socket fd.
Napi::Value SkStorageUpdate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = -1, sock = -1;
  Napi::Buffer<uint8_t> value;
  int64_t flags = 0;
  if (!FdArg(info, 0, &fd) || !FdArg(info, 1, &sock) || !BufferArg(info, 2, &value) || !IntArg(info, 3, 0, 2, &flags)) {
    return ThrowArg(env, "skStorageUpdate", "needs (mapFd, socketFd, value: Buffer, flags)");
  }
  Shape s{};
  if (!GetShape(env, fd, &s) || !SizeIs(env, "skStorageUpdate", "value", value.Length(), s.value)) return env.Undefined();
  if (s.type != BPF_MAP_TYPE_SK_STORAGE) return ThrowArg(env, "skStorageUpdate", "the map is not an sk_storage map");
  if (bpf_map_update_elem(fd, &sock, value.Data(), static_cast<uint64_t>(flags)) != 0) {
    return Throw(env, errno, "bpf_map_update_elem", "storing socket fd " + std::to_string(sock) + "'s identity");
  }
  return env.Undefined();
}

Napi::Value SkStorageLookup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = -1, sock = -1;
  if (!FdArg(info, 0, &fd) || !FdArg(info, 1, &sock)) return ThrowArg(env, "skStorageLookup", "needs (mapFd, socketFd)");
  Shape s{};
  if (!GetShape(env, fd, &s)) return env.Undefined();
  if (s.type != BPF_MAP_TYPE_SK_STORAGE) return ThrowArg(env, "skStorageLookup", "the map is not an sk_storage map");
  auto out = Napi::Buffer<uint8_t>::New(env, s.value);
  if (bpf_map_lookup_elem(fd, &sock, out.Data()) != 0) {
    if (errno == ENOENT) return env.Null();
    return Throw(env, errno, "bpf_map_lookup_elem", "reading socket fd " + std::to_string(sock) + "'s storage");
  }
  return out;
}

Napi::Value SkStorageDelete(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = -1, sock = -1;
  if (!FdArg(info, 0, &fd) || !FdArg(info, 1, &sock)) return ThrowArg(env, "skStorageDelete", "needs (mapFd, socketFd)");
  if (bpf_map_delete_elem(fd, &sock) != 0) {
    if (errno == ENOENT) return Napi::Boolean::New(env, false);
    return Throw(env, errno, "bpf_map_delete_elem", "deleting socket fd " + std::to_string(sock) + "'s storage");
  }
  return Napi::Boolean::New(env, true);
}

}  // namespace

void InitBpfMaps(Napi::Env env, Napi::Object exports) {
  exports.Set("mapCreate", Napi::Function::New(env, MapCreate));
  exports.Set("mapInfo", Napi::Function::New(env, MapInfo));
  exports.Set("mapUpdate", Napi::Function::New(env, MapUpdate));
  exports.Set("mapLookup", Napi::Function::New(env, MapLookup));
  exports.Set("mapDelete", Napi::Function::New(env, MapDelete));
  exports.Set("mapNextKey", Napi::Function::New(env, MapNextKey));
  exports.Set("sockMapUpdate", Napi::Function::New(env, SockMapUpdate));
  exports.Set("skStorageUpdate", Napi::Function::New(env, SkStorageUpdate));
  exports.Set("skStorageLookup", Napi::Function::New(env, SkStorageLookup));
  exports.Set("skStorageDelete", Napi::Function::New(env, SkStorageDelete));
}

}  // namespace sigma
