// Named working buffers, grown on demand and reused between calls: a fresh multi-megabyte
// tensor costs a page fault per 4 KiB the first time it is written. Each name holds one
// byte buffer, viewed in whatever dtype the caller asks for, so views of different
// precision share it.
//
// CPU buffers outlive their Scratch: a released one goes to a process-wide pool that the
// next Scratch draws from, so a one-shot measure (a fresh accumulator per call) does not
// fault its chunk-sized buffers in again on every call. Whether the C allocator would keep
// them mapped depends on its history (its trimming and mmap thresholds); the pool does not.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>

namespace ftlens {

// Released CPU byte buffers, at most kMaxBytes in all (the oldest are freed first).
class ScratchPool {
 public:
  static constexpr int64_t kMaxBytes = int64_t{256} << 20;

  static ScratchPool& instance() {
    // Never destroyed: a Scratch released during interpreter shutdown (or by a thread
    // still running then) must not find the pool gone.
    static ScratchPool* pool = new ScratchPool();
    return *pool;
  }

  // The smallest held buffer of `bytes` to 4 x `bytes` (removed from the pool), or an
  // undefined tensor when none fits: a small request does not hold on to a large buffer
  // that a later large one would then allocate again.
  at::Tensor take(int64_t bytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto best = held_.end();
    for (auto it = held_.begin(); it != held_.end(); ++it) {
      const bool fits = it->numel() >= bytes && it->numel() <= 4 * bytes;
      if (fits && (best == held_.end() || it->numel() < best->numel())) best = it;
    }
    if (best == held_.end()) return {};
    at::Tensor buffer = std::move(*best);
    held_.erase(best);
    bytes_ -= buffer.numel();
    return buffer;
  }

  // Keeps a CPU buffer that nothing else views (a live view would be overwritten by its
  // next user); others are simply dropped.
  void give(at::Tensor buffer) {
    if (!buffer.defined() || !buffer.is_cpu() || buffer.storage().use_count() != 1 ||
        buffer.numel() > kMaxBytes) {
      return;
    }
    std::lock_guard<std::mutex> lock(mutex_);
    bytes_ += buffer.numel();
    held_.push_back(std::move(buffer));
    while (bytes_ > kMaxBytes) {
      bytes_ -= held_.front().numel();
      held_.pop_front();
    }
  }

  int64_t bytes() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return bytes_;
  }

 private:
  mutable std::mutex mutex_;
  std::deque<at::Tensor> held_;
  int64_t bytes_ = 0;
};

class Scratch {
 public:
  Scratch() = default;
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  ~Scratch() { clear(); }

  // A [sizes] tensor of `dtype` on `device` backed by the buffer `name`; valid until the
  // next get() of the same name.
  at::Tensor get(const std::string& name, at::IntArrayRef sizes, at::ScalarType dtype, const at::Device& device) {
    const int64_t bytes = c10::multiply_integers(sizes) * static_cast<int64_t>(c10::elementSize(dtype));
    at::Tensor& buffer = buffers_[name];
    if (!buffer.defined() || buffer.numel() < bytes || buffer.device() != device) {
      ScratchPool::instance().give(std::move(buffer));
      buffer = device.is_cpu() ? ScratchPool::instance().take(bytes) : at::Tensor();
      if (!buffer.defined()) buffer = at::empty({bytes}, at::TensorOptions().dtype(at::kByte).device(device));
    }
    return buffer.narrow(0, 0, bytes).view(dtype).view(sizes);
  }

  // Releases the buffers (CPU ones to the pool).
  void clear() {
    for (auto& [name, buffer] : buffers_) ScratchPool::instance().give(std::move(buffer));
    buffers_.clear();
  }

 private:
  std::map<std::string, at::Tensor> buffers_;
};

}  // namespace ftlens
