"""The ``tiny`` profile: randomly initialised tiny models with a tokenizer trained on our own data.

Usage: ``build_tiny_llm(out_dir, "llama")``; ``build_tiny_sbert(out_dir)``; ``corpus_fingerprint()``

They have the original's architectures (Llama like Kanana, GPT-NeoX like Polyglot-Ko, BERT for
S-BERT) at a few hundred thousand parameters, so tests run the real code paths in seconds. Their
outputs are noise: they are for tests, never for results.
"""
from __future__ import annotations

import csv
import hashlib
import shutil
from pathlib import Path

from .paths import DATA_DIR
from .tasks import all_markers

SEED = 0                 # weights are identical on every machine
LLM_VOCAB_SIZE = 3000    # byte-level BPE: any text encodes, Korean syllables merge from the corpus
BERT_VOCAB_SIZE = 3000
LLM_SPECIALS = ["<pad>", "<unk>", "<s>", "</s>"]
BERT_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
TINY_SIZES = dict(hidden=64, layers=2, heads=4, ffn=128, max_positions=512)  # for the tiny LLMs
TINY_BERT_SIZES = dict(hidden=32, layers=2, heads=2, ffn=64, max_positions=512)
FALLBACK_CORPUS = (      # used only if data/ holds no CSV yet, so a fresh checkout still builds
    "로라야 안녕! 오늘 뭐 했어? 나는 오늘 날씨가 좋아서 산책했어 😊",
    "[좋아하는 음식: 떡볶이] 오늘 점심 뭐 먹지? 떡볶이 어때?",
    "(지금은 토요일 저녁) 내일 일정 있어? 지금 뭐해?",
)


def corpus_texts(data_dir: Path = DATA_DIR) -> list[str]:
    """Every text cell of every CSV under ``data_dir``, plus the task markers."""
    texts = []
    for path in sorted(Path(data_dir).rglob("*.csv")):
        with open(path, encoding="utf-8", newline="") as handle:
            for row in csv.reader(handle):
                texts.extend(cell for cell in row if cell.strip())
    return (texts or list(FALLBACK_CORPUS)) + all_markers()


def corpus_fingerprint(data_dir: Path = DATA_DIR) -> str:
    digest = hashlib.sha256("\n".join(corpus_texts(data_dir)).encode("utf-8"))
    return digest.hexdigest()[:16]


def train_llm_tokenizer(texts: list[str]):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=LLM_VOCAB_SIZE, special_tokens=LLM_SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token="<pad>", unk_token="<unk>", bos_token="<s>", eos_token="</s>",
    )


def train_bert_tokenizer(texts: list[str]):
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(vocab_size=BERT_VOCAB_SIZE, special_tokens=BERT_SPECIALS,
                                        show_progress=False)
    tokenizer.train_from_iterator(texts, trainer)
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]",
        sep_token="[SEP]", mask_token="[MASK]", model_max_length=TINY_BERT_SIZES["max_positions"],
    )


def build_tiny_llm(out_dir: Path, architecture: str, data_dir: Path = DATA_DIR) -> None:
    """Save a tiny random causal LM of ``architecture`` (``llama`` or ``gpt_neox``) with its tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, GPTNeoXConfig, LlamaConfig

    tokenizer = train_llm_tokenizer(corpus_texts(data_dir))
    s = TINY_SIZES
    common = dict(vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id,
                  eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                  max_position_embeddings=s["max_positions"], tie_word_embeddings=False)
    if architecture == "llama":
        config = LlamaConfig(hidden_size=s["hidden"], intermediate_size=s["ffn"], num_hidden_layers=s["layers"],
                             num_attention_heads=s["heads"], num_key_value_heads=s["heads"] // 2, **common)
    elif architecture == "gpt_neox":
        config = GPTNeoXConfig(hidden_size=s["hidden"], intermediate_size=s["ffn"], num_hidden_layers=s["layers"],
                               num_attention_heads=s["heads"], **common)
    else:
        raise ValueError(f"no tiny model for architecture {architecture!r}")
    torch.manual_seed(SEED)
    model = AutoModelForCausalLM.from_config(config)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)


def build_tiny_sbert(out_dir: Path, data_dir: Path = DATA_DIR) -> None:
    """Save a tiny random BERT as a sentence-transformers folder (mean pooling + normalise)."""
    import torch
    from sentence_transformers import SentenceTransformer, models as st_models
    from transformers import BertConfig, BertModel

    out_dir = Path(out_dir)
    tokenizer = train_bert_tokenizer(corpus_texts(data_dir))
    s = TINY_BERT_SIZES
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=s["hidden"], num_hidden_layers=s["layers"],
                        num_attention_heads=s["heads"], intermediate_size=s["ffn"],
                        max_position_embeddings=s["max_positions"], pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(SEED)
    staging = out_dir / "_transformer"
    BertModel(config).save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    transformer = st_models.Transformer(str(staging), max_seq_length=128)
    sbert = SentenceTransformer(modules=[transformer, st_models.Pooling(s["hidden"], "mean"),
                                         st_models.Normalize()], device="cpu")
    sbert.save(str(out_dir))
    shutil.rmtree(staging)
