// Non-blocking send on a connected socket's fd, for the data path's frames. A host's frames are 32 bytes:
// through Node's stream machinery a write costs more JS than the syscall; here one call is one syscall.
// The socket stays a net.Socket (libuv owns it: reads, close, errors, writes that would block); the JS
// side sends here only when libuv has nothing queued, so bytes never overtake each other
// (src/datapath/frames.ts).
#include "native_common.h"

#include <sys/socket.h>

namespace sigma {
namespace {

bool Span(const Napi::CallbackInfo& info, size_t i, uint8_t** p, size_t* n) {
  if (info.Length() <= i || !info[i].IsTypedArray()) return false;
  auto a = info[i].As<Napi::TypedArray>();
  if (a.TypedArrayType() != napi_uint8_array) return false;
  auto u = a.As<Napi::Uint8Array>();
  *p = u.Data();
  *n = u.ByteLength();
  return true;
}

// sendBytes(fd, bytes: Uint8Array): bytes the kernel took (maybe fewer than given), or -1 when the
// socket's buffer is full (EAGAIN). Never blocks, never raises SIGPIPE; other errors throw.
Napi::Value SendBytes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = -1;
  uint8_t* p = nullptr;
  size_t n = 0;
  if (!FdArg(info, 0, &fd) || !Span(info, 1, &p, &n)) return ThrowArg(env, "sendBytes", "needs (fd: integer >= 0, bytes: Uint8Array)");
  for (;;) {
    ssize_t r = send(fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (r >= 0) return Napi::Number::New(env, static_cast<double>(r));
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return Napi::Number::New(env, -1);
    return Throw(env, errno, "send", "sending on fd " + std::to_string(fd));
  }
}

}  // namespace

void InitSocket(Napi::Env env, Napi::Object exports) {
  exports.Set("sendBytes", Napi::Function::New(env, SendBytes));
}

}  // namespace sigma
