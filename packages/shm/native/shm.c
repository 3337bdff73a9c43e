/*
 * @vipc/shm native part: the Linux facilities Node.js lacks for shared-memory
 * IPC. memfd and seals, mmap as external ArrayBuffers, eventfd, fd readiness on
 * the libuv loop, and AF_UNIX stream sockets that carry file descriptors.
 *
 * Contract with the TypeScript layer (src/binding.ts):
 * - every function validates its arguments and throws a TypeError/RangeError
 *   for bad ones; nothing here aborts the process;
 * - a failed system call throws the error class registered by setErrorClass()
 *   with (message, code, errno, syscall); errno is the positive C value;
 * - "would block" is never an error: it is reported as null / -1 results so
 *   that the hot paths do not allocate exceptions;
 * - every fd this file creates or receives has close-on-exec set.
 */
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <node_api.h>
#include <uv.h>

#ifndef MFD_HUGETLB
#define MFD_HUGETLB 0x0004U
#endif
#ifndef F_ADD_SEALS
#define F_ADD_SEALS 1033
#define F_GET_SEALS 1034
#endif

/* The kernel's own limit on fds in one SCM_RIGHTS message. */
#define VIPC_MAX_FDS 253
/* 2^53 - 1: sizes beyond this cannot round-trip through a JS number. */
#define VIPC_MAX_SAFE 9007199254740991LL

typedef struct {
  napi_ref error_class;
} addon_state;

/* ---------------------------------------------------------------- errors */

static void throw_errno(napi_env env, const char* syscall, int err) {
  addon_state* st = NULL;
  napi_get_instance_data(env, (void**)&st);
  const char* code = uv_err_name(-err);
  char msg[256];
  snprintf(msg, sizeof msg, "%s failed: %s (%s)", syscall, strerror(err), code);
  napi_value ctor = NULL;
  if (st != NULL && st->error_class != NULL) napi_get_reference_value(env, st->error_class, &ctor);
  napi_value argv[4];
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &argv[0]);
  napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &argv[1]);
  napi_create_int32(env, err, &argv[2]);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &argv[3]);
  napi_value error;
  if (ctor != NULL && napi_new_instance(env, ctor, 4, argv, &error) == napi_ok) {
    napi_throw(env, error);
    return;
  }
  napi_create_error(env, argv[1], argv[0], &error);
  napi_set_named_property(env, error, "errno", argv[2]);
  napi_set_named_property(env, error, "syscall", argv[3]);
  napi_throw(env, error);
}

#define CHECK_NAPI(env, call)                                                         \
  do {                                                                                \
    if ((call) != napi_ok) {                                                          \
      bool pending = false;                                                           \
      napi_is_exception_pending((env), &pending);                                     \
      if (!pending) napi_throw_error((env), "ERR_VIPC_NAPI", "Node-API call failed"); \
      return NULL;                                                                    \
    }                                                                                 \
  } while (0)

/* ------------------------------------------------------- argument helpers */

static bool arg_count(napi_env env, napi_callback_info info, size_t want, napi_value* argv, napi_value* self) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, self, NULL) != napi_ok) return false;
  if (argc < want) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_COUNT", "missing arguments");
    return false;
  }
  return true;
}

/* An integer in [min, max], given as a number. */
static bool get_int64(napi_env env, napi_value v, const char* name, int64_t min, int64_t max, int64_t* out) {
  napi_valuetype t;
  napi_typeof(env, v, &t);
  if (t != napi_number) {
    char msg[128];
    snprintf(msg, sizeof msg, "%s must be a number", name);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
    return false;
  }
  double d;
  napi_get_value_double(env, v, &d);
  if (!(d == d) || d != (double)(int64_t)d || d < (double)min || d > (double)max) {
    char msg[160];
    snprintf(msg, sizeof msg, "%s must be an integer from %lld to %lld", name, (long long)min, (long long)max);
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", msg);
    return false;
  }
  *out = (int64_t)d;
  return true;
}

static bool get_fd(napi_env env, napi_value v, int* out) {
  int64_t fd;
  if (!get_int64(env, v, "fd", 0, INT_MAX, &fd)) return false;
  *out = (int)fd;
  return true;
}

/* A byte range inside an ArrayBuffer or ArrayBufferView. */
static bool get_bytes(napi_env env, napi_value v, int64_t offset, int64_t length, uint8_t** data, size_t* len) {
  bool is_view = false, is_ab = false;
  void* base = NULL;
  size_t total = 0;
  napi_is_typedarray(env, v, &is_view);
  if (is_view) {
    napi_typedarray_type type;
    size_t count;
    napi_value ab;
    size_t byte_offset;
    napi_get_typedarray_info(env, v, &type, &count, &base, &ab, &byte_offset);
    size_t elem = 1;
    switch (type) {
      case napi_int16_array: case napi_uint16_array: elem = 2; break;
      case napi_int32_array: case napi_uint32_array: case napi_float32_array: elem = 4; break;
      case napi_float64_array: case napi_bigint64_array: case napi_biguint64_array: elem = 8; break;
      default: elem = 1;
    }
    total = count * elem;
  } else {
    napi_is_dataview(env, v, &is_view);
    if (is_view) {
      napi_value ab;
      size_t byte_offset;
      napi_get_dataview_info(env, v, &total, &base, &ab, &byte_offset);
    } else {
      napi_is_arraybuffer(env, v, &is_ab);
      if (!is_ab) {
        napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "buffer must be an ArrayBuffer or ArrayBufferView");
        return false;
      }
      napi_get_arraybuffer_info(env, v, &base, &total);
    }
  }
  if (length < 0) length = (int64_t)total - offset;
  if (offset < 0 || length < 0 || (uint64_t)offset > total || (uint64_t)length > total - (uint64_t)offset) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "offset/length outside the buffer");
    return false;
  }
  *data = (uint8_t*)base + offset;
  *len = (size_t)length;
  return true;
}

static napi_value make_int(napi_env env, int64_t v) {
  napi_value r;
  napi_create_int64(env, v, &r);
  return r;
}

static napi_value make_undefined(napi_env env) {
  napi_value r;
  napi_get_undefined(env, &r);
  return r;
}

static napi_value make_null(napi_env env) {
  napi_value r;
  napi_get_null(env, &r);
  return r;
}

/* --------------------------------------------------------- plain fd calls */

static napi_value js_set_error_class(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!arg_count(env, info, 1, argv, NULL)) return NULL;
  addon_state* st;
  napi_get_instance_data(env, (void**)&st);
  if (st->error_class != NULL) napi_delete_reference(env, st->error_class);
  CHECK_NAPI(env, napi_create_reference(env, argv[0], 1, &st->error_class));
  return make_undefined(env);
}

static napi_value js_close(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int fd;
  if (!arg_count(env, info, 1, argv, NULL) || !get_fd(env, argv[0], &fd)) return NULL;
  /* Linux closes the fd even when close() reports EINTR: never retry. */
  if (close(fd) != 0 && errno != EINTR) {
    throw_errno(env, "close", errno);
    return NULL;
  }
  return make_undefined(env);
}

/* Whether an fd number is open in this process (fcntl F_GETFD). */
static napi_value js_is_open(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int fd;
  if (!arg_count(env, info, 1, argv, NULL) || !get_fd(env, argv[0], &fd)) return NULL;
  napi_value r;
  napi_get_boolean(env, fcntl(fd, F_GETFD) != -1, &r);
  return r;
}

/* memfdCreate(name, flags) -> fd. MFD_CLOEXEC is always added. */
static napi_value js_memfd_create(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!arg_count(env, info, 2, argv, NULL)) return NULL;
  char name[250];
  size_t name_len;
  if (napi_get_value_string_utf8(env, argv[0], name, sizeof name, &name_len) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "name must be a string");
    return NULL;
  }
  int64_t flags;
  if (!get_int64(env, argv[1], "flags", 0, UINT32_MAX, &flags)) return NULL;
  int fd = memfd_create(name, (unsigned int)flags | MFD_CLOEXEC);
  if (fd < 0) {
    throw_errno(env, "memfd_create", errno);
    return NULL;
  }
  return make_int(env, fd);
}

static napi_value js_ftruncate(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int fd;
  int64_t size;
  if (!arg_count(env, info, 2, argv, NULL) || !get_fd(env, argv[0], &fd) ||
      !get_int64(env, argv[1], "size", 0, VIPC_MAX_SAFE, &size))
    return NULL;
  if (ftruncate(fd, (off_t)size) != 0) {
    throw_errno(env, "ftruncate", errno);
    return NULL;
  }
  return make_undefined(env);
}

/* fstat(fd) -> { size, mode, blockSize, dev, ino } (numbers). */
static napi_value js_fstat(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int fd;
  if (!arg_count(env, info, 1, argv, NULL) || !get_fd(env, argv[0], &fd)) return NULL;
  struct stat st;
  if (fstat(fd, &st) != 0) {
    throw_errno(env, "fstat", errno);
    return NULL;
  }
  napi_value r;
  napi_create_object(env, &r);
  napi_set_named_property(env, r, "size", make_int(env, (int64_t)st.st_size));
  napi_set_named_property(env, r, "mode", make_int(env, (int64_t)st.st_mode));
  napi_set_named_property(env, r, "blockSize", make_int(env, (int64_t)st.st_blksize));
  napi_set_named_property(env, r, "dev", make_int(env, (int64_t)st.st_dev));
  napi_set_named_property(env, r, "ino", make_int(env, (int64_t)st.st_ino));
  napi_set_named_property(env, r, "uid", make_int(env, (int64_t)st.st_uid));
  return r;
}

static napi_value js_add_seals(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int fd;
  int64_t seals;
  if (!arg_count(env, info, 2, argv, NULL) || !get_fd(env, argv[0], &fd) ||
      !get_int64(env, argv[1], "seals", 0, 0xff, &seals))
    return NULL;
  if (fcntl(fd, F_ADD_SEALS, (int)seals) != 0) {
    throw_errno(env, "fcntl(F_ADD_SEALS)", errno);
    return NULL;
  }
  return make_undefined(env);
}

static napi_value js_get_seals(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int fd;
  if (!arg_count(env, info, 1, argv, NULL) || !get_fd(env, argv[0], &fd)) return NULL;
  int r = fcntl(fd, F_GET_SEALS);
  if (r < 0) {
    throw_errno(env, "fcntl(F_GET_SEALS)", errno);
    return NULL;
  }
  return make_int(env, r);
}

/* --------------------------------------------------------------- mappings */

typedef struct {
  void* addr;
  size_t length;
  int unmapped;
} mapping;

static void mapping_finalize(napi_env env, void* data, void* hint) {
  (void)env;
  (void)data;
  mapping* m = (mapping*)hint;
  if (!m->unmapped) munmap(m->addr, m->length);
  free(m);
}

/* mmap(fd, length, offset, readOnly) -> ArrayBuffer (external, detachable).
 * The mapping lives until unmap() detaches the buffer, or until the buffer is
 * garbage collected. */
static napi_value js_mmap(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  int fd;
  int64_t length, offset;
  if (!arg_count(env, info, 4, argv, NULL) || !get_fd(env, argv[0], &fd) ||
      !get_int64(env, argv[1], "length", 1, VIPC_MAX_SAFE, &length) ||
      !get_int64(env, argv[2], "offset", 0, VIPC_MAX_SAFE, &offset))
    return NULL;
  bool read_only = false;
  napi_get_value_bool(env, argv[3], &read_only);
  int prot = read_only ? PROT_READ : (PROT_READ | PROT_WRITE);
  void* addr = mmap(NULL, (size_t)length, prot, MAP_SHARED, fd, (off_t)offset);
  if (addr == MAP_FAILED) {
    throw_errno(env, "mmap", errno);
    return NULL;
  }
  mapping* m = calloc(1, sizeof *m);
  if (m == NULL) {
    munmap(addr, (size_t)length);
    throw_errno(env, "mmap", ENOMEM);
    return NULL;
  }
  m->addr = addr;
  m->length = (size_t)length;
  napi_value ab;
  if (napi_create_external_arraybuffer(env, addr, (size_t)length, mapping_finalize, m, &ab) != napi_ok) {
    munmap(addr, (size_t)length);
    free(m);
    napi_throw_error(env, "ERR_VIPC_EXTERNAL_BUFFER",
                     "this Node.js build does not allow external ArrayBuffers over mapped memory");
    return NULL;
  }
  if (napi_wrap(env, ab, m, NULL, NULL, NULL) != napi_ok) {
    /* The finalizer owns m now; the mapping goes when the buffer does. */
    napi_throw_error(env, "ERR_VIPC_NAPI", "could not tag the mapping");
    return NULL;
  }
  return ab;
}

/* munmap(arrayBuffer): unmaps a buffer returned by mmap() and detaches it, so
 * every view over it becomes empty; JS can never reach the freed pages. */
static napi_value js_munmap(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!arg_count(env, info, 1, argv, NULL)) return NULL;
  mapping* m = NULL;
  if (napi_remove_wrap(env, argv[0], (void**)&m) != napi_ok || m == NULL) {
    napi_value exc;
    napi_get_and_clear_last_exception(env, &exc);
    napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", "not a mapping made by mmap(), or already unmapped");
    return NULL;
  }
  /* Unmap first and mark it, then detach: the detach may run the finalizer,
   * which must then only free the record. */
  m->unmapped = 1;
  munmap(m->addr, m->length);
  if (napi_detach_arraybuffer(env, argv[0]) != napi_ok) {
    napi_throw_error(env, "ERR_VIPC_DETACH", "the mapping was unmapped but its buffer could not be detached");
    return NULL;
  }
  return make_undefined(env);
}

static napi_value js_page_size(napi_env env, napi_callback_info info) {
  (void)info;
  return make_int(env, sysconf(_SC_PAGESIZE));
}

/* ---------------------------------------------------------------- eventfd */

static napi_value js_eventfd(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int64_t init, semaphore;
  if (!arg_count(env, info, 2, argv, NULL) || !get_int64(env, argv[0], "initialValue", 0, UINT32_MAX, &init) ||
      !get_int64(env, argv[1], "semaphore", 0, 1, &semaphore))
    return NULL;
  int fd = eventfd((unsigned int)init, EFD_NONBLOCK | EFD_CLOEXEC | (semaphore ? EFD_SEMAPHORE : 0));
  if (fd < 0) {
    throw_errno(env, "eventfd", errno);
    return NULL;
  }
  return make_int(env, fd);
}

/* eventfdWrite(fd, value) -> true, or false when the counter is full (EAGAIN). */
static napi_value js_eventfd_write(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int fd;
  int64_t value;
  if (!arg_count(env, info, 2, argv, NULL) || !get_fd(env, argv[0], &fd) ||
      !get_int64(env, argv[1], "value", 1, VIPC_MAX_SAFE, &value))
    return NULL;
  uint64_t v = (uint64_t)value;
  ssize_t n;
  do n = write(fd, &v, sizeof v);
  while (n < 0 && errno == EINTR);
  napi_value r;
  if (n == sizeof v) {
    napi_get_boolean(env, true, &r);
    return r;
  }
  if (n < 0 && errno == EAGAIN) {
    napi_get_boolean(env, false, &r);
    return r;
  }
  throw_errno(env, "write(eventfd)", n < 0 ? errno : EIO);
  return NULL;
}

/* Reads the counter of an eventfd: > 0, or 0 when nothing was pending. */
static int eventfd_drain(int fd, uint64_t* out) {
  ssize_t n;
  do n = read(fd, out, sizeof *out);
  while (n < 0 && errno == EINTR);
  if (n == sizeof *out) return 0;
  *out = 0;
  if (n < 0 && errno == EAGAIN) return 0;
  return n < 0 ? errno : EIO;
}

static napi_value js_eventfd_read(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int fd;
  if (!arg_count(env, info, 1, argv, NULL) || !get_fd(env, argv[0], &fd)) return NULL;
  uint64_t v;
  int err = eventfd_drain(fd, &v);
  if (err != 0) {
    throw_errno(env, "read(eventfd)", err);
    return NULL;
  }
  napi_value r;
  napi_create_double(env, (double)v, &r);
  return r;
}

/* ---------------------------------------------------------------- watcher */

/* A uv_poll handle on any fd. In "eventfd" mode the counter is read in C on
 * every wake-up (uv_poll is level-triggered and would fire again otherwise)
 * and the callback receives the count; in plain mode it receives the events. */
typedef struct {
  uv_poll_t poll;
  napi_env env;
  napi_ref callback;
  napi_async_context async;
  int fd;
  int drain_eventfd;
  int closed;
} watcher;

static void watcher_free(uv_handle_t* h) {
  free(h->data);
}

static void watcher_on_event(uv_poll_t* handle, int status, int events) {
  watcher* w = (watcher*)handle->data;
  if (w->closed) return;
  napi_env env = w->env;
  double arg0 = 0;
  int arg1 = events;
  if (status < 0) {
    arg0 = -1;
    arg1 = status;
  } else if (w->drain_eventfd) {
    uint64_t count = 0;
    int err = eventfd_drain(w->fd, &count);
    if (err != 0) {
      arg0 = -1;
      arg1 = -err;
    } else if (count == 0) {
      return; /* spurious wake-up: the counter was drained elsewhere */
    } else {
      arg0 = (double)count;
    }
  }
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value cb, recv, argv[2], result;
  napi_get_reference_value(env, w->callback, &cb);
  /* napi_make_callback needs an object as the receiver. */
  napi_get_global(env, &recv);
  napi_create_double(env, arg0, &argv[0]);
  napi_create_int32(env, arg1, &argv[1]);
  if (cb != NULL && napi_make_callback(env, w->async, recv, cb, 2, argv, &result) == napi_pending_exception) {
    napi_value exc;
    napi_get_and_clear_last_exception(env, &exc);
    napi_fatal_exception(env, exc);
  }
  napi_close_handle_scope(env, scope);
}

static void watcher_finalize(napi_env env, void* data, void* hint) {
  (void)hint;
  watcher* w = (watcher*)data;
  if (!w->closed) {
    /* The JS object is gone but the watch was never closed: stop it. */
    w->closed = 1;
    uv_poll_stop(&w->poll);
    napi_delete_reference(env, w->callback);
    napi_async_destroy(env, w->async);
    uv_close((uv_handle_t*)&w->poll, watcher_free);
    return;
  }
  /* Closed earlier: uv_close's callback frees it. */
}

/* watcherCreate(fd, callback, drainEventfd) -> handle (an object). */
static napi_value js_watcher_create(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int fd;
  if (!arg_count(env, info, 3, argv, NULL) || !get_fd(env, argv[0], &fd)) return NULL;
  napi_valuetype t;
  napi_typeof(env, argv[1], &t);
  if (t != napi_function) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "callback must be a function");
    return NULL;
  }
  bool drain = false;
  napi_get_value_bool(env, argv[2], &drain);
  uv_loop_t* loop;
  CHECK_NAPI(env, napi_get_uv_event_loop(env, &loop));
  watcher* w = calloc(1, sizeof *w);
  if (w == NULL) {
    throw_errno(env, "calloc", ENOMEM);
    return NULL;
  }
  int r = uv_poll_init(loop, &w->poll, fd);
  if (r != 0) {
    free(w);
    throw_errno(env, "uv_poll_init", -r);
    return NULL;
  }
  w->poll.data = w;
  w->env = env;
  w->fd = fd;
  w->drain_eventfd = drain ? 1 : 0;
  napi_value handle, name;
  napi_create_object(env, &handle);
  napi_create_string_utf8(env, "vipc.watcher", NAPI_AUTO_LENGTH, &name);
  napi_create_reference(env, argv[1], 1, &w->callback);
  napi_async_init(env, handle, name, &w->async);
  napi_wrap(env, handle, w, watcher_finalize, NULL, NULL);
  return handle;
}

static watcher* get_watcher(napi_env env, napi_value v) {
  watcher* w = NULL;
  if (napi_unwrap(env, v, (void**)&w) != napi_ok || w == NULL) {
    napi_value exc;
    napi_get_and_clear_last_exception(env, &exc);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "not a watcher");
    return NULL;
  }
  if (w->closed) {
    napi_throw_error(env, "ERR_VIPC_CLOSED", "the watcher is closed");
    return NULL;
  }
  return w;
}

/* watcherStart(handle, events): events bit 1 readable, bit 2 writable. */
static napi_value js_watcher_start(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int64_t events;
  if (!arg_count(env, info, 2, argv, NULL) || !get_int64(env, argv[1], "events", 0, 3, &events)) return NULL;
  watcher* w = get_watcher(env, argv[0]);
  if (w == NULL) return NULL;
  int uv_events = ((events & 1) ? UV_READABLE : 0) | ((events & 2) ? UV_WRITABLE : 0);
  int r = uv_events ? uv_poll_start(&w->poll, uv_events, watcher_on_event) : uv_poll_stop(&w->poll);
  if (r != 0) {
    throw_errno(env, "uv_poll_start", -r);
    return NULL;
  }
  return make_undefined(env);
}

static napi_value js_watcher_ref(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!arg_count(env, info, 2, argv, NULL)) return NULL;
  watcher* w = get_watcher(env, argv[0]);
  if (w == NULL) return NULL;
  bool ref = true;
  napi_get_value_bool(env, argv[1], &ref);
  if (ref)
    uv_ref((uv_handle_t*)&w->poll);
  else
    uv_unref((uv_handle_t*)&w->poll);
  return make_undefined(env);
}

static napi_value js_watcher_close(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!arg_count(env, info, 1, argv, NULL)) return NULL;
  watcher* w = NULL;
  if (napi_unwrap(env, argv[0], (void**)&w) != napi_ok || w == NULL) {
    napi_value exc;
    napi_get_and_clear_last_exception(env, &exc);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "not a watcher");
    return NULL;
  }
  if (w->closed) return make_undefined(env);
  w->closed = 1;
  uv_poll_stop(&w->poll);
  napi_delete_reference(env, w->callback);
  w->callback = NULL;
  napi_async_destroy(env, w->async);
  /* Detach from the JS object so its finalizer does not touch freed memory. */
  void* unused;
  napi_remove_wrap(env, argv[0], &unused);
  uv_close((uv_handle_t*)&w->poll, watcher_free);
  return make_undefined(env);
}

/* ---------------------------------------------------------------- sockets */

static bool get_sun_path(napi_env env, napi_value v, struct sockaddr_un* addr, socklen_t* len) {
  size_t n;
  memset(addr, 0, sizeof *addr);
  addr->sun_family = AF_UNIX;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &n) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "path must be a string");
    return false;
  }
  if (n == 0 || n >= sizeof addr->sun_path) {
    char msg[128];
    snprintf(msg, sizeof msg, "socket path must be 1 to %zu bytes long (got %zu)", sizeof addr->sun_path - 1, n);
    napi_throw_range_error(env, "ERR_VIPC_PATH_LENGTH", msg);
    return false;
  }
  napi_get_value_string_utf8(env, v, addr->sun_path, sizeof addr->sun_path, &n);
  if (strlen(addr->sun_path) != n) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", "socket path must not contain NUL bytes");
    return false;
  }
  *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
  return true;
}

/* socketListen(path, backlog) -> fd (non-blocking, close-on-exec). */
static napi_value js_socket_listen(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int64_t backlog;
  if (!arg_count(env, info, 2, argv, NULL) || !get_int64(env, argv[1], "backlog", 1, 4096, &backlog)) return NULL;
  struct sockaddr_un addr;
  socklen_t len;
  if (!get_sun_path(env, argv[0], &addr, &len)) return NULL;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    throw_errno(env, "socket", errno);
    return NULL;
  }
  if (bind(fd, (struct sockaddr*)&addr, len) != 0) {
    int e = errno;
    close(fd);
    throw_errno(env, "bind", e);
    return NULL;
  }
  if (listen(fd, (int)backlog) != 0) {
    int e = errno;
    close(fd);
    throw_errno(env, "listen", e);
    return NULL;
  }
  return make_int(env, fd);
}

/* socketAccept(fd) -> fd, or -1 when no connection is pending. */
static napi_value js_socket_accept(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int fd;
  if (!arg_count(env, info, 1, argv, NULL) || !get_fd(env, argv[0], &fd)) return NULL;
  int c;
  do c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
  while (c < 0 && errno == EINTR);
  if (c < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ECONNABORTED) return make_int(env, -1);
    throw_errno(env, "accept4", errno);
    return NULL;
  }
  return make_int(env, c);
}

/* socketConnect(path) -> fd (non-blocking). A full backlog throws EAGAIN. */
static napi_value js_socket_connect(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!arg_count(env, info, 1, argv, NULL)) return NULL;
  struct sockaddr_un addr;
  socklen_t len;
  if (!get_sun_path(env, argv[0], &addr, &len)) return NULL;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    throw_errno(env, "socket", errno);
    return NULL;
  }
  int r;
  do r = connect(fd, (struct sockaddr*)&addr, len);
  while (r < 0 && errno == EINTR);
  if (r != 0) {
    int e = errno;
    close(fd);
    throw_errno(env, "connect", e);
    return NULL;
  }
  return make_int(env, fd);
}

/* socketSend(fd, buffer, offset, length, fds) -> bytes sent, or -1 when the
 * socket buffer is full. fds (an array of numbers, at most 253) travel with
 * the first byte sent. Never raises SIGPIPE. */
static napi_value js_socket_send(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  int fd;
  int64_t offset, length;
  if (!arg_count(env, info, 5, argv, NULL) || !get_fd(env, argv[0], &fd) ||
      !get_int64(env, argv[2], "offset", 0, VIPC_MAX_SAFE, &offset) ||
      !get_int64(env, argv[3], "length", 0, VIPC_MAX_SAFE, &length))
    return NULL;
  uint8_t* data;
  size_t len;
  if (!get_bytes(env, argv[1], offset, length, &data, &len)) return NULL;
  uint32_t nfds = 0;
  bool is_array = false;
  napi_is_array(env, argv[4], &is_array);
  if (is_array) napi_get_array_length(env, argv[4], &nfds);
  if (nfds > VIPC_MAX_FDS) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "at most 253 fds can travel in one message");
    return NULL;
  }
  if (nfds > 0 && len == 0) {
    napi_throw_range_error(env, "ERR_INVALID_ARG_VALUE", "fds need at least one byte of data to travel with");
    return NULL;
  }
  int fds[VIPC_MAX_FDS];
  for (uint32_t i = 0; i < nfds; i++) {
    napi_value e;
    napi_get_element(env, argv[4], i, &e);
    if (!get_fd(env, e, &fds[i])) return NULL;
  }
  struct iovec iov = {.iov_base = data, .iov_len = len};
  struct msghdr msg;
  memset(&msg, 0, sizeof msg);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  char* control = NULL;
  if (nfds > 0) {
    size_t clen = CMSG_SPACE(sizeof(int) * nfds);
    control = calloc(1, clen);
    if (control == NULL) {
      throw_errno(env, "sendmsg", ENOMEM);
      return NULL;
    }
    msg.msg_control = control;
    msg.msg_controllen = clen;
    struct cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
    memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
  }
  ssize_t n;
  do n = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
  int e = errno;
  free(control);
  if (n < 0) {
    if (e == EAGAIN || e == EWOULDBLOCK) return make_int(env, -1);
    throw_errno(env, "sendmsg", e);
    return NULL;
  }
  return make_int(env, n);
}

/* socketRecv(fd, buffer, offset, length, maxFds) ->
 *   null when nothing is ready (EAGAIN), else { bytes, fds, truncated }.
 * bytes == 0 means end of stream. Fds beyond maxFds are closed by the kernel
 * (never installed) and reported as truncated; any other control message is
 * ignored. */
static napi_value js_socket_recv(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  int fd;
  int64_t offset, length, max_fds;
  if (!arg_count(env, info, 5, argv, NULL) || !get_fd(env, argv[0], &fd) ||
      !get_int64(env, argv[2], "offset", 0, VIPC_MAX_SAFE, &offset) ||
      !get_int64(env, argv[3], "length", 1, VIPC_MAX_SAFE, &length) ||
      !get_int64(env, argv[4], "maxFds", 0, VIPC_MAX_FDS, &max_fds))
    return NULL;
  uint8_t* data;
  size_t len;
  if (!get_bytes(env, argv[1], offset, length, &data, &len)) return NULL;
  struct iovec iov = {.iov_base = data, .iov_len = len};
  struct msghdr msg;
  memset(&msg, 0, sizeof msg);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  /* Always offer room for at least one fd so that unasked-for fds are seen. */
  size_t cap = max_fds > 0 ? (size_t)max_fds : 1;
  size_t clen = CMSG_SPACE(sizeof(int) * cap);
  char* control = calloc(1, clen);
  if (control == NULL) {
    throw_errno(env, "recvmsg", ENOMEM);
    return NULL;
  }
  msg.msg_control = control;
  msg.msg_controllen = clen;
  ssize_t n;
  do n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
  if (n < 0) {
    int e = errno;
    free(control);
    if (e == EAGAIN || e == EWOULDBLOCK) return make_null(env);
    throw_errno(env, "recvmsg", e);
    return NULL;
  }
  int received[VIPC_MAX_FDS];
  size_t count = 0;
  for (struct cmsghdr* c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    int* p = (int*)CMSG_DATA(c);
    for (size_t i = 0; i < k; i++) {
      int got;
      memcpy(&got, p + i, sizeof got);
      if (count < (size_t)max_fds)
        received[count++] = got;
      else
        close(got); /* not asked for: never leak it */
    }
  }
  bool truncated = (msg.msg_flags & MSG_CTRUNC) != 0;
  free(control);
  napi_value r, arr, tr;
  napi_create_object(env, &r);
  napi_create_array_with_length(env, count, &arr);
  for (size_t i = 0; i < count; i++) napi_set_element(env, arr, (uint32_t)i, make_int(env, received[i]));
  napi_get_boolean(env, truncated, &tr);
  napi_set_named_property(env, r, "bytes", make_int(env, n));
  napi_set_named_property(env, r, "fds", arr);
  napi_set_named_property(env, r, "truncated", tr);
  return r;
}

static napi_value js_socket_peercred(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int fd;
  if (!arg_count(env, info, 1, argv, NULL) || !get_fd(env, argv[0], &fd)) return NULL;
  struct ucred cred;
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    throw_errno(env, "getsockopt(SO_PEERCRED)", errno);
    return NULL;
  }
  napi_value r;
  napi_create_object(env, &r);
  napi_set_named_property(env, r, "pid", make_int(env, cred.pid));
  napi_set_named_property(env, r, "uid", make_int(env, cred.uid));
  napi_set_named_property(env, r, "gid", make_int(env, cred.gid));
  return r;
}

/* socketShutdown(fd, how): 0 read, 1 write, 2 both. ENOTCONN is ignored. */
static napi_value js_socket_shutdown(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int fd;
  int64_t how;
  if (!arg_count(env, info, 2, argv, NULL) || !get_fd(env, argv[0], &fd) ||
      !get_int64(env, argv[1], "how", 0, 2, &how))
    return NULL;
  if (shutdown(fd, (int)how) != 0 && errno != ENOTCONN) {
    throw_errno(env, "shutdown", errno);
    return NULL;
  }
  return make_undefined(env);
}

/* socketError(fd) -> pending SO_ERROR value (0 when none). */
static napi_value js_socket_error(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int fd;
  if (!arg_count(env, info, 1, argv, NULL) || !get_fd(env, argv[0], &fd)) return NULL;
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
    throw_errno(env, "getsockopt(SO_ERROR)", errno);
    return NULL;
  }
  return make_int(env, err);
}

/* socketPair() -> [fd, fd], both non-blocking and close-on-exec. */
static napi_value js_socket_pair(napi_env env, napi_callback_info info) {
  (void)info;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) {
    throw_errno(env, "socketpair", errno);
    return NULL;
  }
  napi_value arr;
  napi_create_array_with_length(env, 2, &arr);
  napi_set_element(env, arr, 0, make_int(env, sv[0]));
  napi_set_element(env, arr, 1, make_int(env, sv[1]));
  return arr;
}

/* dup(fd) -> a new close-on-exec fd for the same open file. */
static napi_value js_dup(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int fd;
  if (!arg_count(env, info, 1, argv, NULL) || !get_fd(env, argv[0], &fd)) return NULL;
  int r = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (r < 0) {
    throw_errno(env, "fcntl(F_DUPFD_CLOEXEC)", errno);
    return NULL;
  }
  return make_int(env, r);
}

/* ------------------------------------------------------------------- init */

static void state_finalize(napi_env env, void* data, void* hint) {
  (void)hint;
  addon_state* st = (addon_state*)data;
  if (st->error_class != NULL) napi_delete_reference(env, st->error_class);
  free(st);
}

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  addon_state* st = calloc(1, sizeof *st);
  if (st == NULL) return NULL;
  napi_set_instance_data(env, st, state_finalize, NULL);
  napi_property_descriptor props[] = {
#define FN(name, fn) {name, NULL, fn, NULL, NULL, NULL, napi_enumerable, NULL}
      FN("setErrorClass", js_set_error_class),
      FN("close", js_close),
      FN("isOpen", js_is_open),
      FN("dup", js_dup),
      FN("memfdCreate", js_memfd_create),
      FN("ftruncate", js_ftruncate),
      FN("fstat", js_fstat),
      FN("addSeals", js_add_seals),
      FN("getSeals", js_get_seals),
      FN("mmap", js_mmap),
      FN("munmap", js_munmap),
      FN("pageSize", js_page_size),
      FN("eventfd", js_eventfd),
      FN("eventfdWrite", js_eventfd_write),
      FN("eventfdRead", js_eventfd_read),
      FN("watcherCreate", js_watcher_create),
      FN("watcherStart", js_watcher_start),
      FN("watcherRef", js_watcher_ref),
      FN("watcherClose", js_watcher_close),
      FN("socketListen", js_socket_listen),
      FN("socketAccept", js_socket_accept),
      FN("socketConnect", js_socket_connect),
      FN("socketSend", js_socket_send),
      FN("socketRecv", js_socket_recv),
      FN("socketPeerCred", js_socket_peercred),
      FN("socketShutdown", js_socket_shutdown),
      FN("socketError", js_socket_error),
      FN("socketPair", js_socket_pair),
#undef FN
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}
