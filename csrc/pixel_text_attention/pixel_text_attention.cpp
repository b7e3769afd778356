// Schema of the cps4 operators and the argument checks both backends share.
//
//   pixel_text_attention_forward(feats[B,C,H,W], text[B|1,K,C], logit_scale[],
//                                bias[K]?, mode, eps)
//       -> (out[B,K,H,W], cos[B,K,H,W], feat_rnorm[B,H*W], text_rnorm[B|1,K])
//   pixel_text_attention_backward(grad_out, feats, text, logit_scale, out, cos,
//                                 feat_rnorm, text_rnorm, mode, eps, with_bias)
//       -> (grad_feats, grad_text, grad_logit_scale, grad_bias)
//
// `cos` and the reciprocal norms are saved for the backward pass; they are
// K*H*W and H*W sized, much smaller than the C*H*W normalised feature map the
// unfused formulation keeps. The norms are in the accumulation type (float32
// for half and bfloat16 feats), `out` and `cos` in the dtype of feats.
#include <ATen/OpMathType.h>
#include <Python.h>
#include <torch/library.h>

#include "pixel_text_attention.h"

extern "C" {
// Importing `cps4._C` from Python loads this library and runs the static
// operator registrations below; the module itself is empty.
PyObject* PyInit__C(void) {
  static struct PyModuleDef module_def = {
      PyModuleDef_HEAD_INIT, "_C", nullptr, -1, nullptr};
  return PyModule_Create(&module_def);
}
}

namespace cps4 {

namespace {

void check_float(const at::Tensor& t, const char* name,
                 const at::Tensor& feats) {
  TORCH_CHECK(at::isFloatingType(t.scalar_type()), "pixel_text_attention: ",
              name, " must be a floating point tensor, got ", t.scalar_type());
  TORCH_CHECK(t.scalar_type() == feats.scalar_type(), "pixel_text_attention: ",
              name, " has dtype ", t.scalar_type(), " but feats has ",
              feats.scalar_type());
  TORCH_CHECK(t.device() == feats.device(), "pixel_text_attention: ", name,
              " is on ", t.device(), " but feats is on ", feats.device());
}

}  // namespace

void check_forward_inputs(const at::Tensor& feats, const at::Tensor& text,
                          const at::Tensor& logit_scale,
                          const std::optional<at::Tensor>& bias, int64_t mode,
                          double eps) {
  TORCH_CHECK(feats.dim() == 4,
              "pixel_text_attention: feats must be a 4-D tensor [B, C, H, W], "
              "got shape ", feats.sizes());
  TORCH_CHECK(text.dim() == 3,
              "pixel_text_attention: text must be a 3-D tensor [B or 1, K, C], "
              "got shape ", text.sizes());
  check_float(feats, "feats", feats);
  check_float(text, "text", feats);
  check_float(logit_scale, "logit_scale", feats);
  TORCH_CHECK(feats.numel() > 0,
              "pixel_text_attention: feats must not be empty, got shape ",
              feats.sizes());
  TORCH_CHECK(text.size(0) == 1 || text.size(0) == feats.size(0),
              "pixel_text_attention: text batch ", text.size(0),
              " must be 1 or match feats batch ", feats.size(0), " (text ",
              text.sizes(), ", feats ", feats.sizes(), ")");
  TORCH_CHECK(text.size(1) > 0,
              "pixel_text_attention: text has no class (K = 0), shape ",
              text.sizes());
  TORCH_CHECK(text.size(2) == feats.size(1), "pixel_text_attention: text has C = ",
              text.size(2), " channels but feats has C = ", feats.size(1),
              " (text ", text.sizes(), ", feats ", feats.sizes(), ")");
  TORCH_CHECK(logit_scale.numel() == 1,
              "pixel_text_attention: logit_scale must hold one value, got "
              "shape ", logit_scale.sizes());
  if (bias.has_value()) {
    check_float(*bias, "bias", feats);
    TORCH_CHECK(bias->dim() == 1 && bias->size(0) == text.size(1),
                "pixel_text_attention: bias must have shape [K] = [",
                text.size(1), "], got ", bias->sizes());
  }
  TORCH_CHECK(mode >= 0 && mode <= 2,
              "pixel_text_attention: mode must be 0 (softmax), 1 (sigmoid) or "
              "2 (logits), got ", mode);
  TORCH_CHECK(eps > 0, "pixel_text_attention: eps must be positive, got ", eps);
}

void check_backward_inputs(const at::Tensor& grad_out, const at::Tensor& feats,
                           const at::Tensor& text, const at::Tensor& out,
                           const at::Tensor& cos, const at::Tensor& feat_rnorm,
                           const at::Tensor& text_rnorm, int64_t mode) {
  const auto b = feats.size(0), k = text.size(1);
  const auto hw = feats.size(2) * feats.size(3);
  for (const auto* t : {&grad_out, &out, &cos}) {
    TORCH_CHECK(t->dim() == 4 && t->size(0) == b && t->size(1) == k &&
                    t->size(2) == feats.size(2) && t->size(3) == feats.size(3),
                "pixel_text_attention_backward: expected [", b, ", ", k, ", ",
                feats.size(2), ", ", feats.size(3), "] maps, got ", t->sizes());
    TORCH_CHECK(t->scalar_type() == feats.scalar_type() &&
                    t->device() == feats.device(),
                "pixel_text_attention_backward: maps must match feats' dtype "
                "and device");
  }
  TORCH_CHECK(feat_rnorm.numel() == b * hw && text_rnorm.numel() == text.size(0) * k,
              "pixel_text_attention_backward: saved norms have wrong sizes ",
              feat_rnorm.sizes(), " ", text_rnorm.sizes());
  const auto acc = at::toOpMathType(feats.scalar_type());
  TORCH_CHECK(feat_rnorm.scalar_type() == acc && text_rnorm.scalar_type() == acc,
              "pixel_text_attention_backward: saved norms must be ", acc,
              ", got ", feat_rnorm.scalar_type(), " and ",
              text_rnorm.scalar_type());
  TORCH_CHECK(mode >= 0 && mode <= 2,
              "pixel_text_attention_backward: bad mode ", mode);
}

TORCH_LIBRARY(cps4, m) {
  m.def(
      "pixel_text_attention_forward(Tensor feats, Tensor text, "
      "Tensor logit_scale, Tensor? bias, int mode, float eps) -> "
      "(Tensor, Tensor, Tensor, Tensor)");
  m.def(
      "pixel_text_attention_backward(Tensor grad_out, Tensor feats, "
      "Tensor text, Tensor logit_scale, Tensor out, Tensor cos, "
      "Tensor feat_rnorm, Tensor text_rnorm, int mode, float eps, "
      "bool with_bias) -> (Tensor, Tensor, Tensor, Tensor)");
}

}  // namespace cps4
