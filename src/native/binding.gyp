{
  "targets": [
    {
      "target_name": "sigma_native",
      "sources": ["sigma_native.cc", "memory.cc", "sched.cc", "socket.cc", "bpf.cc", "bpf_maps.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "../../bpf"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "libraries": ["-lbpf", "-lelf", "-lz"]
    }
  ]
}
