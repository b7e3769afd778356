// CUDA kernels of the fused pixel-text attention.
//
// Forward: one thread per pixel. The normalised text embeddings of the batch
// item are staged in shared memory in tiles of kTileC channels; each thread
// reads its pixel's feature column once per class chunk (coalesced over
// neighbouring pixels), accumulates kChunkK dot products and the squared norm
// in registers (float accumulation for half/bfloat16), and writes cos, the
// activated map and its reciprocal norm. No normalised feature map exists.
//
// Backward: one thread per pixel computes d(loss)/d(cos) and the feature
// gradient in the same fused pass; the text gradient, a reduction over all
// pixels, is a batched GEMM of the K x P weights with the C x P features
// (cuBLAS), again without normalising the features.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "../pixel_text_attention.h"

namespace cps4 {
namespace {

constexpr int kThreads = 256;
constexpr int kChunkK = 16;
constexpr int kTileC = 64;

template <typename scalar_t, typename acc_t>
__global__ void forward_logits_kernel(
    const scalar_t* __restrict__ feats, const acc_t* __restrict__ vt,
    const scalar_t* __restrict__ scale_ptr, const scalar_t* __restrict__ bias,
    int64_t BT, int64_t C, int64_t K, int64_t P, acc_t eps,
    scalar_t* __restrict__ out, scalar_t* __restrict__ cos,
    acc_t* __restrict__ frn) {
  __shared__ acc_t tile[kChunkK * kTileC];
  const int64_t b = blockIdx.y;
  const int64_t p = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const bool active = p < P;
  const acc_t* v = vt + (BT == 1 ? 0 : b) * K * C;
  const scalar_t* f = feats + b * C * P + (active ? p : 0);
  const acc_t scale = static_cast<acc_t>(*scale_ptr);
  acc_t rn = 0;
  for (int64_t k0 = 0; k0 < K; k0 += kChunkK) {
    const int kn = static_cast<int>(min(static_cast<int64_t>(kChunkK), K - k0));
    acc_t acc[kChunkK];
#pragma unroll
    for (int i = 0; i < kChunkK; ++i) acc[i] = 0;
    acc_t ss = 0;
    for (int64_t c0 = 0; c0 < C; c0 += kTileC) {
      const int cn = static_cast<int>(min(static_cast<int64_t>(kTileC), C - c0));
      __syncthreads();
      for (int i = threadIdx.x; i < kn * cn; i += blockDim.x) {
        const int kk = i / cn, cc = i % cn;
        tile[kk * kTileC + cc] = v[(k0 + kk) * C + c0 + cc];
      }
      __syncthreads();
      if (active) {
        for (int cc = 0; cc < cn; ++cc) {
          const acc_t x = static_cast<acc_t>(f[(c0 + cc) * P]);
          ss += x * x;
#pragma unroll
          for (int i = 0; i < kChunkK; ++i)
            if (i < kn) acc[i] += x * tile[i * kTileC + cc];
        }
      }
    }
    if (active) {
      rn = acc_t(1) / max(sqrt(ss), eps);
#pragma unroll
      for (int i = 0; i < kChunkK; ++i) {
        if (i < kn) {
          const int64_t k = k0 + i;
          const acc_t cs = acc[i] * rn;
          const acc_t bk = bias ? static_cast<acc_t>(bias[k]) : acc_t(0);
          cos[(b * K + k) * P + p] = static_cast<scalar_t>(cs);
          out[(b * K + k) * P + p] = static_cast<scalar_t>(scale * cs + bk);
        }
      }
    }
  }
  if (active) frn[b * P + p] = rn;
}

template <typename scalar_t, typename acc_t>
__global__ void activate_kernel(scalar_t* __restrict__ out, int64_t B,
                                int64_t K, int64_t P, int mode) {
  const int64_t b = blockIdx.y;
  const int64_t p = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (p >= P) return;
  scalar_t* o = out + b * K * P + p;
  if (mode == static_cast<int>(Mode::kSigmoid)) {
    for (int64_t k = 0; k < K; ++k) {
      const acc_t x = static_cast<acc_t>(o[k * P]);
      o[k * P] = static_cast<scalar_t>(acc_t(1) / (acc_t(1) + exp(-x)));
    }
  } else if (mode == static_cast<int>(Mode::kSoftmax)) {
    acc_t mx = -INFINITY;
    for (int64_t k = 0; k < K; ++k) mx = max(mx, static_cast<acc_t>(o[k * P]));
    acc_t sum = 0;
    for (int64_t k = 0; k < K; ++k) sum += exp(static_cast<acc_t>(o[k * P]) - mx);
    const acc_t inv = acc_t(1) / sum;
    for (int64_t k = 0; k < K; ++k)
      o[k * P] = static_cast<scalar_t>(exp(static_cast<acc_t>(o[k * P]) - mx) * inv);
  }
}

// Per pixel: ds = d(loss)/d(logit) of every class and the (u . du) term
// sum_k scale * ds_k * cos_k of the feature gradient.
template <typename scalar_t, typename acc_t>
__global__ void backward_pixel_kernel(
    const scalar_t* __restrict__ grad_out, const scalar_t* __restrict__ out,
    const scalar_t* __restrict__ cos, const scalar_t* __restrict__ scale_ptr,
    int64_t K, int64_t P, int mode, acc_t* __restrict__ ds_out,
    acc_t* __restrict__ dotu) {
  const int64_t b = blockIdx.y;
  const int64_t p = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (p >= P) return;
  const acc_t scale = static_cast<acc_t>(*scale_ptr);
  const int64_t base = b * K * P + p;
  acc_t gdot = 0;
  if (mode == static_cast<int>(Mode::kSoftmax)) {
    for (int64_t k = 0; k < K; ++k)
      gdot += static_cast<acc_t>(grad_out[base + k * P]) *
              static_cast<acc_t>(out[base + k * P]);
  }
  acc_t du = 0;
  for (int64_t k = 0; k < K; ++k) {
    const acc_t g = static_cast<acc_t>(grad_out[base + k * P]);
    const acc_t o = static_cast<acc_t>(out[base + k * P]);
    acc_t ds;
    if (mode == static_cast<int>(Mode::kSoftmax)) {
      ds = o * (g - gdot);
    } else if (mode == static_cast<int>(Mode::kSigmoid)) {
      ds = g * o * (acc_t(1) - o);
    } else {
      ds = g;
    }
    ds_out[base + k * P] = ds;
    du += ds * static_cast<acc_t>(cos[base + k * P]);
  }
  dotu[b * P + p] = scale * du;
}

// grad_f[c, p] = rn * sum_k dcos[k, p] v[k, c] - f[c, p] * rn^2 * (u . du).
template <typename scalar_t, typename acc_t>
__global__ void backward_feats_kernel(
    const scalar_t* __restrict__ feats, const acc_t* __restrict__ vt,
    const acc_t* __restrict__ frn, const acc_t* __restrict__ ds,
    const acc_t* __restrict__ dotu, const scalar_t* __restrict__ scale_ptr,
    int64_t BT, int64_t C, int64_t K, int64_t P, acc_t eps,
    scalar_t* __restrict__ grad_feats) {
  __shared__ acc_t tile[kChunkK * kTileC];
  const int64_t b = blockIdx.y;
  const int64_t p = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const bool active = p < P;
  const acc_t* v = vt + (BT == 1 ? 0 : b) * K * C;
  const acc_t scale = static_cast<acc_t>(*scale_ptr);
  const acc_t rn = active ? frn[b * P + p] : acc_t(0);
  const acc_t coef = (active && rn < acc_t(1) / eps) ? rn * rn * dotu[b * P + p]
                                                     : acc_t(0);
  for (int64_t c0 = 0; c0 < C; c0 += kTileC) {
    const int cn = static_cast<int>(min(static_cast<int64_t>(kTileC), C - c0));
    acc_t du[kTileC];
#pragma unroll
    for (int i = 0; i < kTileC; ++i) du[i] = 0;
    for (int64_t k0 = 0; k0 < K; k0 += kChunkK) {
      const int kn = static_cast<int>(min(static_cast<int64_t>(kChunkK), K - k0));
      __syncthreads();
      for (int i = threadIdx.x; i < kn * cn; i += blockDim.x) {
        const int kk = i / cn, cc = i % cn;
        tile[kk * kTileC + cc] = v[(k0 + kk) * C + c0 + cc];
      }
      __syncthreads();
      if (active) {
        for (int kk = 0; kk < kn; ++kk) {
          const acc_t d = scale * ds[(b * K + k0 + kk) * P + p];
#pragma unroll
          for (int i = 0; i < kTileC; ++i)
            if (i < cn) du[i] += d * tile[kk * kTileC + i];
        }
      }
    }
    if (active) {
      for (int i = 0; i < cn; ++i) {
        const int64_t idx = (b * C + c0 + i) * P + p;
        grad_feats[idx] = static_cast<scalar_t>(
            rn * du[i] - static_cast<acc_t>(feats[idx]) * coef);
      }
    }
  }
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> forward_cuda(
    const at::Tensor& feats_, const at::Tensor& text_,
    const at::Tensor& logit_scale_, const std::optional<at::Tensor>& bias_,
    int64_t mode, double eps) {
  check_forward_inputs(feats_, text_, logit_scale_, bias_, mode, eps);
  const c10::cuda::CUDAGuard guard(feats_.device());
  const auto feats = feats_.contiguous();
  const auto text = text_.contiguous();
  const auto logit_scale = logit_scale_.reshape({1}).contiguous();
  const int64_t B = feats.size(0), C = feats.size(1), H = feats.size(2),
                W = feats.size(3), P = H * W, BT = text.size(0),
                K = text.size(1);
  auto out = at::empty({B, K, H, W}, feats.options());
  auto cos = at::empty({B, K, H, W}, feats.options());
  // The reciprocal norms are saved in the accumulation type: rounded to
  // half precision they would put a 2^-9 relative error into the radial
  // projection of the feature gradient, whose result can be near zero.
  const auto acc_type = at::toOpMathType(feats.scalar_type());
  auto frn = at::empty({B, P}, feats.options().dtype(acc_type));
  at::Tensor bias;
  if (bias_.has_value()) bias = bias_->contiguous();
  // Text is tiny (K x C): normalise it with ATen in float32 or float64.
  const auto text_acc = text.to(acc_type);
  const auto tnorm = text_acc.norm(2, -1, true).clamp_min(eps);
  const auto vt = (text_acc / tnorm).contiguous();
  const auto trn = tnorm.reciprocal().reshape({BT, K});
  const dim3 grid((P + kThreads - 1) / kThreads, B);
  auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, feats.scalar_type(),
                                  "pixel_text_attention_forward_cuda", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    forward_logits_kernel<scalar_t, acc_t><<<grid, kThreads, 0, stream>>>(
        feats.data_ptr<scalar_t>(), vt.data_ptr<acc_t>(),
        logit_scale.data_ptr<scalar_t>(),
        bias.defined() ? bias.data_ptr<scalar_t>() : nullptr, BT, C, K, P,
        static_cast<acc_t>(eps), out.data_ptr<scalar_t>(),
        cos.data_ptr<scalar_t>(), frn.data_ptr<acc_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    if (mode != static_cast<int64_t>(Mode::kLogits)) {
      activate_kernel<scalar_t, acc_t><<<grid, kThreads, 0, stream>>>(
          out.data_ptr<scalar_t>(), B, K, P, static_cast<int>(mode));
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }
  });
  return {out, cos, frn, trn};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> backward_cuda(
    const at::Tensor& grad_out_, const at::Tensor& feats_,
    const at::Tensor& text_, const at::Tensor& logit_scale_,
    const at::Tensor& out_, const at::Tensor& cos_,
    const at::Tensor& feat_rnorm_, const at::Tensor& text_rnorm_, int64_t mode,
    double eps, bool with_bias) {
  check_backward_inputs(grad_out_, feats_, text_, out_, cos_, feat_rnorm_,
                        text_rnorm_, mode);
  const c10::cuda::CUDAGuard guard(feats_.device());
  const auto grad_out = grad_out_.contiguous();
  const auto feats = feats_.contiguous();
  const auto text = text_.contiguous();
  const auto out = out_.contiguous();
  const auto cos = cos_.contiguous();
  const auto frn = feat_rnorm_.contiguous();
  const auto logit_scale = logit_scale_.reshape({1}).contiguous();
  const int64_t B = feats.size(0), C = feats.size(1),
                P = feats.size(2) * feats.size(3), BT = text.size(0),
                K = text.size(1);
  const auto acc_type = at::toOpMathType(feats.scalar_type());
  const auto acc_opts = feats.options().dtype(acc_type);
  const auto text_acc = text.to(acc_type);
  const auto trn = text_rnorm_.to(acc_type).reshape({BT, K, 1});
  const auto vt = (text_acc * trn).contiguous();

  auto ds = at::empty({B, K, P}, acc_opts);
  auto dotu = at::empty({B, P}, acc_opts);
  auto grad_feats = at::empty_like(feats, at::MemoryFormat::Contiguous);
  const dim3 grid((P + kThreads - 1) / kThreads, B);
  auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, feats.scalar_type(),
                                  "pixel_text_attention_backward_cuda", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    backward_pixel_kernel<scalar_t, acc_t><<<grid, kThreads, 0, stream>>>(
        grad_out.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(),
        cos.data_ptr<scalar_t>(), logit_scale.data_ptr<scalar_t>(), K, P,
        static_cast<int>(mode), ds.data_ptr<acc_t>(), dotu.data_ptr<acc_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    backward_feats_kernel<scalar_t, acc_t><<<grid, kThreads, 0, stream>>>(
        feats.data_ptr<scalar_t>(), vt.data_ptr<acc_t>(),
        frn.data_ptr<acc_t>(), ds.data_ptr<acc_t>(), dotu.data_ptr<acc_t>(),
        logit_scale.data_ptr<scalar_t>(), BT, C, K, P,
        static_cast<acc_t>(eps), grad_feats.data_ptr<scalar_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  // Reductions over pixels with ATen: bias, scale and, as a batched GEMM of
  // the K x P weights with the C x P features, the text gradient.
  const auto scale = logit_scale.to(acc_type);
  const auto ds_cos = (ds * cos.reshape({B, K, P}).to(acc_type)).sum(-1);
  const auto weights = (ds * frn.reshape({B, 1, P}).to(acc_type) * scale)
                           .to(feats.scalar_type());
  auto dv = at::bmm(weights, feats.reshape({B, C, P}).transpose(1, 2))
                .to(acc_type);
  if (BT == 1) dv = dv.sum(0, true);
  // Project dv off the unit text vector with its own radial part v . dv
  // (equal to scale * sum_p ds * cos in exact arithmetic): the result is
  // then orthogonal to v up to float rounding, even when dv itself came out
  // of a half-precision GEMM.
  const auto dotv = (vt * dv).sum(-1, true);
  const auto keep = (trn < 1.0 / eps).to(acc_type);
  const auto grad_text =
      (trn * (dv - keep * vt * dotv)).to(feats.scalar_type());
  const auto grad_scale = ds_cos.sum().to(feats.scalar_type());
  const auto grad_bias = with_bias ? ds.sum(at::IntArrayRef{0, 2}).to(feats.scalar_type())
                                   : at::empty({0}, feats.options());
  return {grad_feats, grad_text, grad_scale, grad_bias};
}

}  // namespace

TORCH_LIBRARY_IMPL(cps4, CUDA, m) {
  m.impl("pixel_text_attention_forward", &forward_cuda);
  m.impl("pixel_text_attention_backward", &backward_cuda);
}

}  // namespace cps4
