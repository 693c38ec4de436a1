// Shared by the addon's translation units: how errors reach JS, and argument parsing that refuses
// instead of guessing. Every failure is a JS Error with errno, code and syscall (the TS wrapper turns it
// into a NativeError); nothing here aborts the process.
#ifndef SIGMA_NATIVE_COMMON_H
#define SIGMA_NATIVE_COMMON_H

#include <napi.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>

namespace sigma {

// Throws Error(`what: strerror (hint)`) with errno, code and syscall; returns undefined for `return`.
inline Napi::Value Throw(Napi::Env env, int err, const char* syscall, const std::string& what, const std::string& hint = "") {
  std::string message = what + ": " + std::strerror(err);
  if (!hint.empty()) message += " (" + hint + ")";
  Napi::Error e = Napi::Error::New(env, message);
  e.Set("errno", Napi::Number::New(env, err));
  const char* name = strerrorname_np(err);
  e.Set("code", Napi::String::New(env, name != nullptr ? name : "EUNKNOWN"));
  e.Set("syscall", Napi::String::New(env, syscall));
  e.ThrowAsJavaScriptException();
  return env.Undefined();
}

// A caller bug (wrong type or range): EINVAL, with `fn` as the syscall and the expected signature.
inline Napi::Value ThrowArg(Napi::Env env, const char* fn, const std::string& what) {
  return Throw(env, EINVAL, fn, std::string(fn) + ": " + what, "fix the arguments");
}

// An integer in [lo, hi] (JS numbers are doubles: reject fractions, NaN and out-of-range values).
inline bool IntArg(const Napi::CallbackInfo& info, size_t i, double lo, double hi, int64_t* out) {
  if (info.Length() <= i || !info[i].IsNumber()) return false;
  double d = info[i].As<Napi::Number>().DoubleValue();
  if (!(d >= lo && d <= hi) || d != static_cast<double>(static_cast<int64_t>(d))) return false;
  *out = static_cast<int64_t>(d);
  return true;
}

inline bool FdArg(const Napi::CallbackInfo& info, size_t i, int* fd) {
  int64_t v = 0;
  if (!IntArg(info, i, 0, INT32_MAX, &v)) return false;
  *fd = static_cast<int>(v);
  return true;
}

inline bool StringArg(const Napi::CallbackInfo& info, size_t i, std::string* out) {
  if (info.Length() <= i || !info[i].IsString()) return false;
  *out = info[i].As<Napi::String>().Utf8Value();
  return out->find('\0') == std::string::npos;
}

inline bool BufferArg(const Napi::CallbackInfo& info, size_t i, Napi::Buffer<uint8_t>* out) {
  if (info.Length() <= i || !info[i].IsBuffer()) return false;
  *out = info[i].As<Napi::Buffer<uint8_t>>();
  return true;
}

void InitMemory(Napi::Env env, Napi::Object exports);
void InitSched(Napi::Env env, Napi::Object exports);
void InitSocket(Napi::Env env, Napi::Object exports);
void InitBpf(Napi::Env env, Napi::Object exports);
void InitBpfMaps(Napi::Env env, Napi::Object exports);

}  // namespace sigma

#endif
