{
  "targets": [
    {
      "target_name": "peft_native",
      "sources": [
        "csrc/native/addon.c",
        "csrc/native/gemm.c",
        "csrc/native/gemv.c",
        "csrc/native/linear4bit.c",
        "csrc/kernels/attention.c",
        "csrc/kernels/elementwise.c",
        "csrc/kernels/loss.c",
        "csrc/kernels/quant.c",
        "csrc/kernels/norm.c",
        "csrc/kernels/rope.c",
        "csrc/kernels/layout.c"
      ],
      "libraries": ["-ldnnl", "-fopenmp"],
      # Never unloaded: Node unloads an addon when the last worker thread that loaded it
      # exits, and the OpenMP threads that worker started would be left in unmapped code.
      "ldflags": ["-Wl,-z,nodelete"],
      "cflags": ["-O3", "-std=c11", "-march=native", "-fopenmp", "-Wall", "-Wno-unknown-pragmas"]
    }
  ]
}
