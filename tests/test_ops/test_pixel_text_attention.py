"""The fused pixel-text attention op against its pure-PyTorch reference."""
import importlib
import shutil
import subprocess
import sysconfig
from pathlib import Path

import pytest
import torch

from cps4.ops import (HAS_EXTENSION, pixel_text_attention,
                      pixel_text_attention_reference)

pta = importlib.import_module('cps4.ops.pixel_text_attention')
REPO_ROOT = Path(__file__).resolve().parents[2]
MODES = ('softmax', 'sigmoid', 'logits')
needs_ext = pytest.mark.skipif(not HAS_EXTENSION,
                               reason='cps4._C is not built')
needs_cuda = pytest.mark.skipif(
    not (HAS_EXTENSION and torch.cuda.is_available()), reason='no GPU')

# (B, C, H, W, K, text batch): K=1, C=1, odd sizes, broadcast text.
SHAPES = [
    (2, 5, 3, 7, 4, 1),
    (3, 1, 5, 5, 1, 3),
    (1, 17, 9, 11, 6, 1),
    (2, 33, 13, 1, 3, 2),
    (1, 8, 16, 17, 20, 1),
]


def make_inputs(shape, dtype, device='cpu', seed=0, requires_grad=True):
    b, c, h, w, k, bt = shape
    gen = torch.Generator().manual_seed(seed)
    feats = torch.randn(b, c, h, w, generator=gen, dtype=dtype)
    text = torch.randn(bt, k, c, generator=gen, dtype=dtype)
    scale = torch.tensor(3.5, dtype=dtype)
    bias = torch.randn(k, generator=gen, dtype=dtype)
    grad = torch.randn(b, k, h, w, generator=gen, dtype=dtype)
    tensors = [t.to(device) for t in (feats, text, scale, bias)]
    for t in tensors:
        t.requires_grad_(requires_grad)
    return tensors, grad.to(device)


def forward_backward(fn, inputs, grad, mode, with_bias=True):
    feats, text, scale, bias = inputs
    out = fn(feats, text, scale, bias if with_bias else None, mode)
    wrt = [feats, text, scale] + ([bias] if with_bias else [])
    grads = torch.autograd.grad((out * grad).sum(), wrt)
    return out, grads


@needs_ext
@pytest.mark.parametrize('dtype,tol', [(torch.float64, 1e-10),
                                       (torch.float32, 1e-5)])
@pytest.mark.parametrize('mode', MODES)
@pytest.mark.parametrize('shape', SHAPES, ids=str)
def test_matches_reference(shape, mode, dtype, tol):
    inputs, grad = make_inputs(shape, dtype)
    out, grads = forward_backward(pixel_text_attention, inputs, grad, mode)
    # The oracle runs in float64: in float32 the reference's own rounding
    # (e.g. the cancellation in normalize's backward) can exceed 1e-5.
    inputs64 = [t.detach().double().requires_grad_(True) for t in inputs]
    ref_out, ref_grads = forward_backward(pixel_text_attention_reference,
                                          inputs64, grad.double(), mode)
    torch.testing.assert_close(out, ref_out.to(dtype), rtol=tol, atol=tol)
    for name, g, r in zip(('feats', 'text', 'logit_scale', 'bias'), grads,
                          ref_grads):
        torch.testing.assert_close(g, r.to(dtype), rtol=tol, atol=tol,
                                   msg=name)


@needs_ext
@pytest.mark.parametrize('mode', MODES)
def test_without_bias_and_with_python_float_scale(mode):
    inputs, grad = make_inputs((2, 6, 5, 4, 3, 1), torch.float64)
    out, grads = forward_backward(pixel_text_attention, inputs, grad, mode,
                                  with_bias=False)
    ref, ref_grads = forward_backward(pixel_text_attention_reference, inputs,
                                      grad, mode, with_bias=False)
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)
    for g, r in zip(grads, ref_grads):
        torch.testing.assert_close(g, r, rtol=1e-10, atol=1e-10)
    feats, text = inputs[0].detach(), inputs[1].detach()
    torch.testing.assert_close(
        pixel_text_attention(feats, text, 2.0, mode=mode),
        pixel_text_attention_reference(feats, text, 2.0, mode=mode))


@needs_ext
def test_zero_and_tiny_norms_follow_normalize_clamping():
    inputs, grad = make_inputs((1, 4, 3, 3, 2, 1), torch.float64)
    feats, text, scale, bias = [t.detach().clone() for t in inputs]
    feats[0, :, 0, 0] = 0.0  # zero pixel
    feats[0, :, 1, 1] = 1e-9  # clamped by eps
    text[0, 1] = 1e-9
    for t in (feats, text, scale, bias):
        t.requires_grad_(True)
    for mode in MODES:
        out, grads = forward_backward(pixel_text_attention,
                                      [feats, text, scale, bias], grad, mode)
        ref, ref_grads = forward_backward(pixel_text_attention_reference,
                                          [feats, text, scale, bias], grad,
                                          mode)
        torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)
        for g, r in zip(grads, ref_grads):
            torch.testing.assert_close(g, r, rtol=1e-8, atol=1e-8)


@needs_ext
@pytest.mark.parametrize('mode', MODES)
def test_gradcheck(mode):
    inputs, _ = make_inputs((2, 3, 3, 4, 3, 1), torch.float64)
    feats, text, scale, bias = inputs

    def fn(f, t, s, b):
        return pixel_text_attention(f, t, s, b, mode)

    assert torch.autograd.gradcheck(fn, (feats, text, scale, bias))


@needs_ext
@pytest.mark.parametrize('mode', MODES)
def test_opcheck(mode):
    inputs, _ = make_inputs((2, 5, 3, 4, 3, 1), torch.float32)
    feats, text, scale, bias = inputs
    torch.library.opcheck(
        torch.ops.cps4.pixel_text_attention_forward.default,
        (feats, text, scale.detach().reshape(()), bias,
         pta._MODE_IDS[mode], 1e-6))


@needs_ext
def test_non_contiguous_and_channels_last():
    inputs, grad = make_inputs((2, 8, 6, 5, 4, 2), torch.float64)
    feats, text, scale, bias = [t.detach() for t in inputs]
    variants = {
        'channels_last': feats.to(memory_format=torch.channels_last),
        'transposed': feats.transpose(2, 3).contiguous().transpose(2, 3),
        'sliced': torch.stack([feats, feats], dim=2).flatten(1, 2)[:, ::2],
    }
    text_nc = text.transpose(1, 2).contiguous().transpose(1, 2)
    ref = pixel_text_attention_reference(feats, text, scale, bias)
    for name, f in variants.items():
        f = f.clone().requires_grad_(True)
        out = pixel_text_attention(f, text_nc, scale, bias)
        torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10,
                                   msg=name)
        (g_f, ) = torch.autograd.grad((out * grad).sum(), [f])
        f_ref = feats.clone().requires_grad_(True)
        (r_f, ) = torch.autograd.grad(
            (pixel_text_attention_reference(f_ref, text, scale, bias) *
             grad).sum(), [f_ref])
        torch.testing.assert_close(g_f, r_f, rtol=1e-10, atol=1e-10,
                                   msg=name)


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
@pytest.mark.parametrize('mode', MODES)
def test_cpu_half_inputs_computed_in_float32(mode, dtype):
    """On the CPU, half-precision inputs are upcast to float32 for the
    kernel: the result equals the float32 op on the rounded inputs, rounded
    once to the input dtype, and the gradients come back in that dtype."""
    inputs, grad = make_inputs(SHAPES[4], torch.float32)
    low = [t.detach().to(dtype).requires_grad_(True) for t in inputs]
    out, grads = forward_backward(pixel_text_attention, low, grad.to(dtype),
                                  mode)
    assert out.dtype == dtype and all(g.dtype == dtype for g in grads)
    up = [t.detach().float().requires_grad_(True) for t in low]
    ref_out, ref_grads = forward_backward(pixel_text_attention, up,
                                          grad.to(dtype).float(), mode)
    assert torch.equal(out, ref_out.to(dtype))
    for g, r in zip(grads, ref_grads):
        assert torch.equal(g, r.to(dtype))


@pytest.mark.parametrize('mode', MODES)
def test_autocast_runs_the_op_in_float32(mode):
    """Under autocast (what mixed-precision training does), bfloat16
    features from a convolution meet a float32 scale and bias: the op
    upcasts them and returns float32, equal to the float32 op on the
    upcast inputs; gradients reach the bfloat16 inputs."""
    inputs, grad = make_inputs(SHAPES[2], torch.float32)
    feats, text, scale, bias = (t.detach() for t in inputs)
    feats_bf = feats.bfloat16().requires_grad_(True)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = pixel_text_attention(feats_bf, text, scale, bias, mode)
    assert out.dtype == torch.float32
    expected = pixel_text_attention(feats_bf.detach().float(), text, scale,
                                    bias, mode)
    assert torch.equal(out, expected)
    (g, ) = torch.autograd.grad((out * grad).sum(), [feats_bf])
    assert g.dtype == torch.bfloat16 and torch.isfinite(g.float()).all()


BAD_INPUTS = [
    ('feats rank', lambda f, t, s, b: (f[0], t, s, b), 'feats must be a 4-D'),
    ('text rank', lambda f, t, s, b: (f, t[0], s, b), 'text must be a 3-D'),
    ('C mismatch', lambda f, t, s, b: (f, t[..., :-1], s, b),
     'text has C = 4 channels but feats has C = 5'),
    ('K mismatch with bias', lambda f, t, s, b: (f, t, s, b[:-1]),
     r'bias must have shape \[K\] = \[3\]'),
    ('text batch', lambda f, t, s, b: (f, t.expand(3, -1, -1), s, b),
     'text batch 3 must be 1 or match feats batch 2'),
    ('mixed dtypes', lambda f, t, s, b: (f, t.double(), s, b),
     'text has dtype'),
    ('integer feats', lambda f, t, s, b: (f.long(), t, s, b),
     'feats must be a floating point tensor'),
    ('empty batch', lambda f, t, s, b: (f[:0], t, s, b),
     'feats must not be empty'),
    ('zero-size map', lambda f, t, s, b: (f[:, :, :0], t, s, b),
     'feats must not be empty'),
    ('scale with many values', lambda f, t, s, b: (f, t, s.expand(2), b),
     'logit_scale must hold one value'),
]


def _bad_base():
    feats = torch.randn(2, 5, 4, 3)
    text = torch.randn(1, 3, 5)
    return feats, text, torch.tensor(2.0), torch.zeros(3)


@pytest.mark.parametrize('name,make,message', BAD_INPUTS,
                         ids=[b[0] for b in BAD_INPUTS])
@pytest.mark.parametrize('impl', ['reference', 'fused', 'kernel'])
def test_bad_inputs_raise_clear_errors(impl, name, make, message):
    args = make(*_bad_base())
    if impl == 'reference':
        with pytest.raises(ValueError, match=message):
            pixel_text_attention_reference(*args)
    elif impl == 'fused':
        with pytest.raises(ValueError, match=message):
            pixel_text_attention(*args)
    else:
        if not HAS_EXTENSION:
            pytest.skip('cps4._C is not built')
        f, t, s, b = args
        with pytest.raises(RuntimeError, match=message):
            torch.ops.cps4.pixel_text_attention_forward(
                f, t, s.reshape(-1)[:1].reshape(()) if s.numel() == 1 else s,
                b, 0, 1e-6)


def test_mixed_devices_raise():
    feats, text, scale, bias = _bad_base()
    meta_text = text.to('meta')
    with pytest.raises(ValueError, match='is on meta but feats is on cpu'):
        pixel_text_attention_reference(feats, meta_text, scale, bias)
    with pytest.raises(ValueError, match='is on meta but feats is on cpu'):
        pixel_text_attention(feats, meta_text, scale, bias)


def test_unknown_mode():
    feats, text, scale, bias = _bad_base()
    with pytest.raises(ValueError, match="mode must be one of"):
        pixel_text_attention(feats, text, scale, bias, mode='relu')


def test_fallback_warns_once(monkeypatch, caplog):
    monkeypatch.setattr(pta, 'HAS_EXTENSION', False)
    monkeypatch.setattr(pta, '_warned_fallback', False)
    calls = []
    monkeypatch.setattr(pta, 'print_log',
                        lambda msg, **kw: calls.append((msg, kw)))
    inputs, _ = make_inputs((1, 3, 2, 2, 2, 1), torch.float64,
                            requires_grad=False)
    for _ in range(3):
        out = pixel_text_attention(*inputs)
        torch.testing.assert_close(out,
                                   pixel_text_attention_reference(*inputs))
    assert len(calls) == 1
    assert 'pure-PyTorch reference' in calls[0][0]
    assert calls[0][1]['level'] == 30


@needs_ext
def test_torch_compile():
    inputs, _ = make_inputs((1, 4, 3, 3, 2, 1), torch.float32,
                            requires_grad=False)
    compiled = torch.compile(
        lambda f, t, s, b: pixel_text_attention(f, t, s, b) * 2,
        backend='eager', fullgraph=True)
    torch.testing.assert_close(
        compiled(*inputs), 2 * pixel_text_attention_reference(*inputs))


@needs_cuda
@pytest.mark.parametrize('dtype,floor', [(torch.float32, 1e-5),
                                         (torch.float16, 2e-3),
                                         (torch.bfloat16, 1e-2)])
@pytest.mark.parametrize('mode', MODES)
def test_cuda_matches_reference(mode, dtype, floor):
    """Fused CUDA op vs the float64 truth on the same (rounded) inputs.

    Each output and gradient, divided by the case's largest value of its
    kind, must be within ``floor`` of the truth or at most twice as far from
    it as the eager reference run on the GPU in the same dtype: with C = 1
    the feature and text gradients are exactly 0 and come out as the
    rounding residue of a cancellation, in any implementation.
    """
    for shape in SHAPES:
        inputs, grad = make_inputs(shape, torch.float32)
        cuda_inputs = [t.detach().to('cuda', dtype) for t in inputs]
        cuda_grad = grad.to('cuda', dtype)

        def run(fn, device, as_dtype):
            args = [t.to(device, as_dtype).requires_grad_(True)
                    for t in cuda_inputs]
            out, grads = forward_backward(fn, args, cuda_grad.to(device,
                                                                 as_dtype),
                                          mode)
            return [t.double().cpu() for t in (out, ) + tuple(grads)]

        truth = run(pixel_text_attention_reference, 'cpu', torch.float64)
        fused = run(pixel_text_attention, 'cuda', dtype)
        eager = run(pixel_text_attention_reference, 'cuda', dtype)
        scale_out = max(1.0, truth[0].abs().max().item())
        scale_grad = max(1.0, max(t.abs().max().item() for t in truth[1:]))
        names = ('out', 'grad_feats', 'grad_text', 'grad_scale', 'grad_bias')
        for i, name in enumerate(names):
            scale = scale_out if i == 0 else scale_grad
            err = (fused[i] - truth[i]).abs().max().item() / scale
            err_eager = (eager[i] - truth[i]).abs().max().item() / scale
            assert err <= max(floor, 2 * err_eager), (
                f'{shape} {mode} {dtype} {name}: fused error {err:.3g}, '
                f'eager error {err_eager:.3g}, floor {floor}')
        if dtype != torch.float32:
            for t in out_saved_norms(cuda_inputs, mode):
                assert t.dtype == torch.float32


def out_saved_norms(inputs, mode):
    """The reciprocal norms the forward op saves for the backward pass."""
    feats, text, scale, bias = (t.detach() for t in inputs)
    return torch.ops.cps4.pixel_text_attention_forward(
        feats, text, scale, bias, pta._MODE_IDS[mode], 1e-12)[2:]


def _nvcc_command(tmp_path):
    torch_include = Path(torch.__file__).parent / 'include'
    # A CPU build of torch ships the CUDA headers but not the header CMake
    # generates for CUDA builds; provide it so that the source compiles.
    stub = tmp_path / 'stub' / 'c10' / 'cuda' / 'impl'
    stub.mkdir(parents=True)
    (stub / 'cuda_cmake_macros.h').write_text(
        '#pragma once\n#define C10_CUDA_BUILD_SHARED_LIBS\n')
    return [
        'nvcc', '-std=c++20', '-O1', '--expt-relaxed-constexpr', '-c',
        str(REPO_ROOT / 'csrc/pixel_text_attention/cuda/'
            'pixel_text_attention_cuda.cu'),
        '-o', str(tmp_path / 'pixel_text_attention_cuda.o'),
        '-I', str(tmp_path / 'stub'), '-I', str(torch_include), '-I',
        str(torch_include / 'torch/csrc/api/include'), '-I',
        sysconfig.get_paths()['include'], '-Xcompiler', '-fPIC',
        '-gencode', 'arch=compute_90,code=sm_90'
    ]


@pytest.mark.skipif(shutil.which('nvcc') is None, reason='nvcc not on PATH')
@pytest.mark.slow  # about 40 s of nvcc
def test_cuda_source_compiles_with_nvcc(tmp_path):
    proc = subprocess.run(_nvcc_command(tmp_path), capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert (tmp_path / 'pixel_text_attention_cuda.o').stat().st_size > 0
