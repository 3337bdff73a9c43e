{
  "targets": [
    {
      "target_name": "vipc_shm",
      "sources": ["native/shm.c"],
      "cflags": ["-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter", "-O2"],
      "defines": ["NAPI_VERSION=8"]
    },
    {
      "target_name": "vipc_shm_shared",
      "sources": ["native/shared-buffer.cc"],
      "cflags_cc": ["-std=c++20", "-Wall", "-Wno-cast-function-type", "-O2"]
    }
  ]
}
