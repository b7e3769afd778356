// Fused pixel-text attention: shared declarations of the CPU and CUDA kernels.
#pragma once

#include <ATen/ATen.h>

#include <optional>
#include <tuple>

namespace cps4 {

// Activation applied to the scaled cosine similarities (the `mode` argument).
enum class Mode : int64_t { kSoftmax = 0, kSigmoid = 1, kLogits = 2 };

// Validates the forward arguments; throws c10::Error (RuntimeError in Python)
// naming the offending argument and its shape.
void check_forward_inputs(const at::Tensor& feats, const at::Tensor& text,
                          const at::Tensor& logit_scale,
                          const std::optional<at::Tensor>& bias, int64_t mode,
                          double eps);

// Validates the backward arguments against the forward ones.
void check_backward_inputs(const at::Tensor& grad_out, const at::Tensor& feats,
                           const at::Tensor& text, const at::Tensor& out,
                           const at::Tensor& cos, const at::Tensor& feat_rnorm,
                           const at::Tensor& text_rnorm, int64_t mode);

}  // namespace cps4
