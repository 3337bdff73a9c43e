// @vipc/shm: SharedArrayBuffer over a MAP_SHARED mapping.
//
// Node-API can only make external (non-shared) ArrayBuffers. Handing one
// mapping to worker_threads needs a real SharedArrayBuffer, which V8's own API
// can build over foreign memory: SharedArrayBuffer::NewBackingStore with a
// deleter that unmaps. This module uses only that public V8 API and is built
// against the local Node headers, so it always matches the running Node.
// V8-sandboxed builds (Electron) refuse foreign backing stores; there the
// loader reports that shared mappings are unavailable and everything else
// keeps working.
//
// Lifetime: a SharedArrayBuffer cannot be detached, so there is no explicit
// unmap. The pages stay mapped until the last SharedArrayBuffer over them, in
// any thread, is garbage collected; JS can never touch unmapped memory.
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include <node.h>
#include <v8.h>

namespace {

void Unmap(void* data, size_t length, void* /*deleter_data*/) {
  if (data != nullptr && length > 0) munmap(data, length);
}

void ThrowRange(v8::Isolate* isolate, const char* message) {
  isolate->ThrowException(
      v8::Exception::RangeError(v8::String::NewFromUtf8(isolate, message).ToLocalChecked()));
}

bool IntegerArg(const v8::FunctionCallbackInfo<v8::Value>& args, int i, double min, double max, double* out) {
  if (args.Length() <= i || !args[i]->IsNumber()) return false;
  double d = args[i].As<v8::Number>()->Value();
  if (d != d || d < min || d > max || d != static_cast<double>(static_cast<long long>(d))) return false;
  *out = d;
  return true;
}

// mmapShared(fd, length, offset, readOnly) -> SharedArrayBuffer
void MmapShared(const v8::FunctionCallbackInfo<v8::Value>& args) {
  v8::Isolate* isolate = args.GetIsolate();
  double fd, length, offset;
  if (!IntegerArg(args, 0, 0, 2147483647.0, &fd) || !IntegerArg(args, 1, 1, 9007199254740991.0, &length) ||
      !IntegerArg(args, 2, 0, 9007199254740991.0, &offset)) {
    ThrowRange(isolate, "mmapShared(fd, length, offset, readOnly): fd, length >= 1 and offset must be integers");
    return;
  }
  bool read_only = args.Length() > 3 && args[3]->IsTrue();
  int prot = read_only ? PROT_READ : (PROT_READ | PROT_WRITE);
  void* addr = mmap(nullptr, static_cast<size_t>(length), prot, MAP_SHARED, static_cast<int>(fd),
                    static_cast<off_t>(offset));
  if (addr == MAP_FAILED) {
    int err = errno;
    char msg[160];
    snprintf(msg, sizeof msg, "mmap failed: %s", strerror(err));
    v8::Local<v8::Value> e = v8::Exception::Error(v8::String::NewFromUtf8(isolate, msg).ToLocalChecked());
    v8::Local<v8::Context> ctx = isolate->GetCurrentContext();
    e.As<v8::Object>()
        ->Set(ctx, v8::String::NewFromUtf8Literal(isolate, "errno"), v8::Integer::New(isolate, err))
        .Check();
    e.As<v8::Object>()
        ->Set(ctx, v8::String::NewFromUtf8Literal(isolate, "syscall"), v8::String::NewFromUtf8Literal(isolate, "mmap"))
        .Check();
    isolate->ThrowException(e);
    return;
  }
  std::unique_ptr<v8::BackingStore> store =
      v8::SharedArrayBuffer::NewBackingStore(addr, static_cast<size_t>(length), Unmap, nullptr);
  args.GetReturnValue().Set(v8::SharedArrayBuffer::New(isolate, std::move(store)));
}

}  // namespace

NODE_MODULE_INIT(/* exports, module, context */) {
  v8::Isolate* isolate = context->GetIsolate();
  exports
      ->Set(context, v8::String::NewFromUtf8Literal(isolate, "mmapShared"),
            v8::FunctionTemplate::New(isolate, MmapShared)->GetFunction(context).ToLocalChecked())
      .Check();
}
