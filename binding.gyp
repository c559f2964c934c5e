{
  "targets": [
    {
      "target_name": "peft_native",
      "sources": ["csrc/native/addon.c"],
      "libraries": ["-ldnnl"],
      "cflags": ["-O3", "-std=c11"]
    }
  ]
}
