{
  "targets": [
    {
      "target_name": "tsbuild_native",
      "sources": [
        "cc/addon.cc", "cc/errors.cc", "cc/mount.cc", "cc/fsops.cc", "cc/copyfiles.cc", "cc/hashfiles.cc", "cc/sha256.cc",
        "cc/spawn.cc", "cc/spawn_request.cc", "cc/spawn_launch.cc", "cc/spawn_failure.cc",
        "cc/spawn_init.cc", "cc/spawn_process.cc", "cc/spawn_child.cc", "cc/spawn_clone.cc"
      ],
      "dependencies": ["<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "defines": ["NAPI_VERSION=9", "_GNU_SOURCE"]
    },
    {
      "target_name": "tsbuild_mapfile",
      "sources": ["cc/mapfile/mapfile.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"],
      "defines": ["NAPI_VERSION=9"]
    },
    {
      "target_name": "tsbuild-init",
      "type": "executable",
      "sources": ["cc/init/init.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"],
      "ldflags": ["-static"]
    },
    {
      "target_name": "tsbuild-userns",
      "type": "executable",
      "sources": ["cc/userns/userns.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"],
      "ldflags": ["-static"]
    }
  ]
}
