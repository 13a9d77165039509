// Named working buffers, grown on demand and reused between calls: a fresh multi-megabyte
// tensor costs a page fault per 4 KiB the first time it is written. Each name holds one
// byte buffer, viewed in whatever dtype the caller asks for, so views of different
// precision share it.
#pragma once

#include <ATen/ATen.h>

#include <map>
#include <string>

namespace ftlens {

class Scratch {
 public:
  // A [sizes] tensor of `dtype` on `device` backed by the buffer `name`; valid until the
  // next get() of the same name.
  at::Tensor get(const std::string& name, at::IntArrayRef sizes, at::ScalarType dtype, const at::Device& device) {
    const int64_t bytes = c10::multiply_integers(sizes) * static_cast<int64_t>(c10::elementSize(dtype));
    at::Tensor& buffer = buffers_[name];
    if (!buffer.defined() || buffer.numel() < bytes || buffer.device() != device) {
      buffer = at::empty({bytes}, at::TensorOptions().dtype(at::kByte).device(device));
    }
    return buffer.narrow(0, 0, bytes).view(dtype).view(sizes);
  }

  void clear() { buffers_.clear(); }

 private:
  std::map<std::string, at::Tensor> buffers_;
};

}  // namespace ftlens
