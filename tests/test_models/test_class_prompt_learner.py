"""Tests of ClassPromptLearner with a tiny random text encoder."""
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from mmseg.registry import MODELS

from cps4.datasets import SPINE_CLASSES
from cps4.models.prompts import ClassPromptLearner, load_prompt_file
from cps4.models.text_encoders import HFTextEncoder

TINY_BERT = dict(model_type='bert', hidden_size=32, num_hidden_layers=2,
                 num_attention_heads=2, intermediate_size=64)
TINY_CLIP = dict(TINY_BERT, model_type='clip_text_model')
SHARED_DATA = Path(__file__).resolve().parents[3] / 'shared' / 'data'

MRSPINE = 'configs/_base_/prompts/mrspineseg_19units.json'
VB = 'configs/_base_/prompts/vertebral_bodies_l1_l5.json'
DISC_VERT = 'configs/_base_/prompts/lumbar_disc_vertebra.json'
DATASET_CLASSES = {
    MRSPINE: tuple(SPINE_CLASSES),
    VB: ('background', 'L1', 'L2', 'L3', 'L4', 'L5'),
    DISC_VERT: ('background', 'disc', 'vertebra'),
}


@pytest.fixture(scope='module')
def encoder() -> HFTextEncoder:
    torch.manual_seed(0)
    return HFTextEncoder(config=TINY_BERT, embed_dim=16)


@pytest.mark.parametrize('style',
                         ['name', 'template', 'description', 'learnable'])
def test_every_style_gives_one_unit_embedding_per_class(encoder, style):
    learner = ClassPromptLearner(MRSPINE, style=style, ctx_dim=32)
    out = learner(encoder)
    assert out.shape == (20, 16)
    torch.testing.assert_close(out.norm(dim=-1), torch.ones(20))
    texts = learner.texts()
    assert len(texts) == 20
    if style in ('template', 'description'):
        assert all(len(t) == len(learner.templates) == 4 for t in texts)
    if style == 'description':
        assert 'below L3 and above L5' in texts[3][0]


def test_template_style_averages_normalised_template_embeddings(encoder):
    learner = ClassPromptLearner(MRSPINE, style='template')
    out = learner(encoder)
    for k, cls in enumerate(learner.classes[:4]):
        prompts = [t.format(cls['phrase']) for t in learner.templates]
        manual = F.normalize(encoder.encode(
            *learner.tokenize(encoder, prompts)), dim=-1).mean(0)
        torch.testing.assert_close(out[k], F.normalize(manual, dim=0),
                                   atol=1e-5, rtol=1e-5)
    assert learner.texts()[3][0] == (
        'a sagittal T2 MR image of the L4 vertebra.')


def test_synonyms_and_template_override(encoder):
    learner = ClassPromptLearner(DISC_VERT, style='template',
                                 templates=['{} on MRI'], use_synonyms=True)
    assert learner.texts()[1] == ['intervertebral disc on MRI',
                                  'lumbar disc on MRI', 'spinal disc on MRI']
    assert learner(encoder).shape == (3, 16)
    with pytest.raises(ValueError, match='placeholder'):
        ClassPromptLearner(DISC_VERT, templates=['no placeholder'])


@pytest.mark.parametrize('class_specific', [False, True])
def test_learnable_context_receives_gradients(encoder, class_specific):
    with pytest.raises(ValueError, match='needs ctx_dim'):
        ClassPromptLearner(VB, style='learnable', n_ctx=3)
    learner = ClassPromptLearner(VB, style='learnable', n_ctx=3,
                                 class_specific_ctx=class_specific,
                                 ctx_dim=encoder.hidden_size)
    expected = (6, 3, 32) if class_specific else (3, 32)
    assert learner.ctx.shape == expected and learner.ctx.requires_grad
    assert [n for n, _ in learner.named_parameters()] == ['ctx']
    out = learner(encoder)
    assert out.shape == (6, 16)
    (out * torch.randn_like(out)).sum().backward()
    grad = learner.ctx.grad
    assert grad is not None
    if class_specific:  # every class gets its own non-zero gradient
        assert (grad.flatten(1).abs().sum(1) > 0).all()
    else:
        assert grad.abs().sum() > 0
    assert learner.texts()[1] == ['X X X L1 vertebral body.']


def test_learnable_context_sits_after_bos(encoder):
    learner = ClassPromptLearner(DISC_VERT, style='learnable', n_ctx=2,
                                 ctx_dim=32)
    seen = {}
    hook = encoder.encoder.register_forward_hook(
        lambda module, args, kwargs, out: seen.update(kwargs),
        with_kwargs=True)
    try:
        learner(encoder)
    finally:
        hook.remove()
    embeds, mask = seen['inputs_embeds'], seen['attention_mask']
    ids, _ = learner.tokenize(encoder, ['intervertebral disc.'])
    words = encoder.encoder.get_input_embeddings()(ids)[0]
    torch.testing.assert_close(embeds[1, 0], words[0])  # [CLS]
    torch.testing.assert_close(embeds[1, 1:3], learner.ctx)
    torch.testing.assert_close(embeds[1, 3:3 + len(words) - 1], words[1:])
    assert mask[1, :len(words) + 2].all()


def test_learnable_context_width_must_match_the_encoder(encoder):
    learner = ClassPromptLearner(DISC_VERT, style='learnable', ctx_dim=24)
    with pytest.raises(ValueError, match='Context width 24'):
        learner(encoder)
    assert ClassPromptLearner(DISC_VERT, ctx_dim=24).ctx is None  # unused


def count_encoder_calls(encoder: HFTextEncoder) -> list:
    calls = []
    encoder.encoder.register_forward_hook(
        lambda module, args, output: calls.append(1))
    return calls


def test_frozen_features_are_cached_per_prompt_set():
    torch.manual_seed(0)
    encoder = HFTextEncoder(config=TINY_BERT, embed_dim=16, freeze='all')
    calls = count_encoder_calls(encoder)
    learner = ClassPromptLearner(DISC_VERT, style='template')
    first = learner(encoder)
    second = learner(encoder)
    assert len(calls) == 1
    torch.testing.assert_close(first, second)
    assert second.requires_grad  # the projection still sees a graph
    second.sum().backward()
    assert encoder.proj.weight.grad.abs().sum() > 0
    # the cached features are those of the encoder run on the token ids
    flat = [p for per_class in learner.texts() for p in per_class]
    fresh = encoder.encode(*learner.tokenize(encoder, flat))
    cached = learner._encode_texts(encoder, flat)
    assert len(calls) == 2
    torch.testing.assert_close(cached, fresh)
    # other prompts (here another style) are encoded once more
    learner.style = 'name'
    learner(encoder)
    learner(encoder)
    assert len(calls) == 3
    learner.style = 'template'
    learner(encoder)
    assert len(calls) == 3
    # loading weights into the encoder invalidates the cache
    encoder.load_state_dict(encoder.state_dict())
    learner(encoder)
    assert len(calls) == 4
    learner.clear_cache()
    learner(encoder)
    assert len(calls) == 5


def test_no_cache_when_encoder_trains():
    torch.manual_seed(0)
    for config in (dict(freeze='none'), dict(frozen_layers=1)):
        encoder = HFTextEncoder(config=TINY_BERT, embed_dim=16, **config)
        calls = count_encoder_calls(encoder)
        learner = ClassPromptLearner(DISC_VERT, style='name')
        learner(encoder)
        learner(encoder).sum().backward()
        assert len(calls) == 2
        assert encoder.encoder.encoder.layer[-1].output.dense.weight.grad \
            is not None


def test_tokenize_truncates_to_max_length():
    encoder = HFTextEncoder(config=TINY_BERT, embed_dim=16, max_length=6)
    learner = ClassPromptLearner(MRSPINE, style='description')
    ids, mask = learner.tokenize(encoder, learner.texts()[3])
    assert ids.shape[1] == mask.shape[1] == 6
    assert learner._warned_truncation
    ids, mask = learner.tokenize(encoder, 'L4')
    assert ids.shape == (1, 4) and mask.all()  # [CLS] l ##4 [SEP]
    assert learner(encoder).shape == (20, 16)


def test_learnable_style_with_clip_encoder():
    torch.manual_seed(0)
    clip = HFTextEncoder(config=TINY_CLIP, pooling='eos', embed_dim=8)
    learner = ClassPromptLearner(DISC_VERT, style='learnable',
                                 class_specific_ctx=True, ctx_dim=32)
    out = learner(clip)
    assert out.shape == (3, 8)
    out.sum().backward()
    assert learner.ctx.grad.abs().sum() > 0


@pytest.mark.parametrize('prompt_file', sorted(DATASET_CLASSES))
def test_prompt_files_match_dataset_classes(prompt_file):
    data = load_prompt_file(prompt_file)
    names = tuple(c['name'] for c in data['classes'])
    assert names == DATASET_CLASSES[prompt_file]
    assert all(c['description'] for c in data['classes'])
    assert data['templates'] and all('{}' in t for t in data['templates'])
    learner = ClassPromptLearner(prompt_file)
    learner.check_classes(DATASET_CLASSES[prompt_file])  # no error


def test_vertebral_body_prompts_match_myosegmentum_labels():
    dataset_json = SHARED_DATA / 'myosegmentum_vb' / 'dataset.json'
    if not dataset_json.is_file():
        pytest.skip('myosegmentum_vb not available')
    labels = json.loads(dataset_json.read_text())['labels']
    ordered = tuple(sorted(labels, key=labels.get))
    ClassPromptLearner(VB).check_classes(ordered)


def test_class_count_mismatch_names_the_fix():
    learner = ClassPromptLearner(VB)
    with pytest.raises(ValueError) as info:
        learner.check_classes(SPINE_CLASSES)
    msg = str(info.value)
    assert 'defines 6 classes (background, L1, L2, L3, L4, L5)' in msg
    assert 'the dataset has 20' in msg
    assert 'mrspineseg_19units.json' in msg
    assert 'model.prompt.class_names' in msg
    # same count, different names
    with pytest.raises(ValueError, match='dataset has 3'):
        ClassPromptLearner(DISC_VERT).check_classes(
            ('background', 'vertebra', 'disc'))


def test_class_names_select_and_reorder(encoder):
    learner = ClassPromptLearner(MRSPINE, class_names=['background', 'L5',
                                                       'L4/L5', 'L4'])
    assert learner.class_names == ['background', 'L5', 'L4/L5', 'L4']
    learner.check_classes(('background', 'L5', 'L4/L5', 'L4'))
    assert learner(encoder).shape == (4, 16)
    with pytest.raises(ValueError, match="'L6'"):
        ClassPromptLearner(MRSPINE, class_names=['background', 'L6'])


def test_prompt_file_resolution(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # repo-relative paths still resolve
    assert ClassPromptLearner(MRSPINE).num_classes == 20
    with pytest.raises(FileNotFoundError, match='no_such_prompts.json'):
        ClassPromptLearner('configs/_base_/prompts/no_such_prompts.json')
    custom = tmp_path / 'two.json'
    custom.write_text(json.dumps({'classes': [{'name': 'background'},
                                              {'name': 'disc'}]}))
    learner = MODELS.build(dict(type='ClassPromptLearner',
                                prompt_file=str(custom), style='name'))
    assert learner.texts() == [['background'], ['disc']]
    with pytest.raises(ValueError, match="style must be one of"):
        ClassPromptLearner(MRSPINE, style='fancy')
