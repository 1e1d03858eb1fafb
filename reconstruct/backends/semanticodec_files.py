"""SemantiCodec's files on disk, and the checks that run before any worker starts.

Two layouts are accepted, both the upstream package's own:

- the hub repo `haoheliu/SemantiCodec` (what `reconstruct models pull semanticodec` stages):
  `semanticodec_tokenrate_{25,50,100}/{encoder,decoder}.ckpt` and
  `codebook_idx/combine_{128,256,512}_audioset_dominate/codebook_{2048..16384}_0.npy`;
- the upstream's `checkpoint_path` folder: `encoder.ckpt`, `decoder.ckpt` and `codebook_idx/...` in one folder.

The checks read tensor shapes only (memory-mapped state dicts, memory-mapped .npy), so they need
neither the `semanticodec` package nor the time to load gigabytes, and name the first bad file.
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np

from manifests.errors import UsageError, first_line

# token rate -> (AudioMAE feature dimension, LSTM layers, codebook folder), as in upstream `get_config`
RATES = {100: (768, 4, "combine_512_audioset_dominate"), 50: (1536, 3, "combine_256_audioset_dominate"),
         25: (3072, 2, "combine_128_audioset_dominate")}
VOCABS = {4096: 2048, 8192: 4096, 16384: 8192, 32768: 16384}  # semantic_vocab_size -> semantic codebook rows
POS_DIM = 192  # positional embedding appended to the decoder's condition: context = 2 * feature + 192


def variant_files(root: Path, token_rate: int, vocab: int) -> dict[str, Path]:
    """encoder / decoder / codebook paths of one published variant under root (either layout)."""
    ckpts = root if _flat(root) else root / f"semanticodec_tokenrate_{token_rate}"
    book = root / "codebook_idx" / RATES[token_rate][2] / f"codebook_{VOCABS[vocab]}_0.npy"
    return {"encoder": ckpts / "encoder.ckpt", "decoder": ckpts / "decoder.ckpt", "codebook": book}


def _flat(root: Path) -> bool:
    return (root / "encoder.ckpt").exists() or (root / "decoder.ckpt").exists()


def check_variant(root: Path, token_rate: int, vocab: int) -> dict[str, Path]:
    """The variant's three files, each present and of the variant's shapes; else a UsageError naming the file."""
    files = variant_files(root, token_rate, vocab)
    for f in files.values():
        if not f.is_file():
            raise UsageError(f"SemantiCodec weights in {root}: missing {f.relative_to(root)} (token_rate={token_rate}, "
                             f"semantic_vocab_size={vocab}); stage it with `reconstruct models pull semanticodec`")
    _check_ckpts(root, files["encoder"], files["decoder"], token_rate)
    _check_codebook(root, files["codebook"], token_rate, VOCABS[vocab])
    return files


def check_folder(root: Path) -> None:
    """Every SemantiCodec file present under root is complete and of the right shapes for its place;
    at least one token rate and one codebook are there. Raises a UsageError naming the first bad file."""
    if not root.is_dir():
        raise UsageError(f"{root} is not a SemantiCodec folder (expected encoder.ckpt, decoder.ckpt, codebook_idx/)")
    if _flat(root):
        enc, dec = root / "encoder.ckpt", root / "decoder.ckpt"
        for f in (enc, dec):
            if not f.is_file():
                raise UsageError(f"SemantiCodec weights in {root}: missing {f.name}")
        _check_ckpts(root, enc, dec, None)
    else:
        rates = [d for d in sorted(root.glob("semanticodec_tokenrate_*")) if d.is_dir()]
        if not rates:
            raise UsageError(f"SemantiCodec weights in {root}: missing semanticodec_tokenrate_100/encoder.ckpt "
                             "(no semanticodec_tokenrate_* folder, and no encoder.ckpt)")
        for d in rates:
            rate = int(d.name.rsplit("_", 1)[1]) if d.name.rsplit("_", 1)[1].isdigit() else None
            if rate not in RATES:
                raise UsageError(f"SemantiCodec weights in {root}: {d.name} is not a published token rate (25, 50, 100)")
            for f in (d / "encoder.ckpt", d / "decoder.ckpt"):
                if not f.is_file():
                    raise UsageError(f"SemantiCodec weights in {root}: missing {f.relative_to(root)}")
            _check_ckpts(root, d / "encoder.ckpt", d / "decoder.ckpt", rate)
    books = sorted(root.glob("codebook_idx/*/codebook_*_0.npy"))
    if not books:
        raise UsageError(f"SemantiCodec weights in {root}: missing codebook_idx/combine_512_audioset_dominate/"
                         f"codebook_8192_0.npy (no semantic codebook at all)")
    folders = {v[2]: rate for rate, v in RATES.items()}
    for book in books:
        rows = re.fullmatch(r"codebook_(\d+)_0\.npy", book.name)
        rate = folders.get(book.parent.name)
        if rate is None or rows is None or int(rows.group(1)) not in VOCABS.values():
            raise UsageError(f"SemantiCodec weights in {root}: {book.relative_to(root)} is not a published codebook name")
        _check_codebook(root, book, rate, int(rows.group(1)))


def _state(root: Path, file: Path) -> dict:
    """Tensor metadata of a torch state dict, memory-mapped (nothing is read until used)."""
    import torch

    try:
        try:
            state = torch.load(file, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as e:
            if "mmap" not in str(e):
                raise
            state = torch.load(file, map_location="cpu", weights_only=True)  # legacy (non-zip) format
    except Exception as e:  # noqa: BLE001 - truncated, not a torch file, pickled objects: all "unreadable"
        raise UsageError(f"SemantiCodec weights in {root}: {file.relative_to(root)} cannot be read as a state dict "
                         f"({first_line(e)})") from None
    if not isinstance(state, dict):
        raise UsageError(f"SemantiCodec weights in {root}: {file.relative_to(root)} is not a state dict")
    return state


def _check_ckpts(root: Path, enc: Path, dec: Path, token_rate: int | None) -> None:
    """encoder.ckpt and decoder.ckpt agree with each other and, when given, with token_rate."""
    state = _state(root, enc)
    linear = state.get("encoder_output_linear.weight")
    layers = sum(1 for k in state if re.fullmatch(r"encoder\.weight_ih_l\d+", k))
    found = next((r for r, (dim, n, _) in RATES.items()
                  if linear is not None and tuple(linear.shape) == (dim, 4 * dim) and layers == n), None)
    if found is None:
        shape = tuple(linear.shape) if linear is not None else "absent"
        raise UsageError(f"SemantiCodec weights in {root}: {enc.relative_to(root)} is not a SemantiCodec encoder "
                         f"of a published token rate (encoder_output_linear {shape}, {layers} LSTM layers)")
    if token_rate is not None and found != token_rate:
        raise UsageError(f"SemantiCodec weights in {root}: {enc.relative_to(root)} is a token-rate-{found} encoder, "
                         f"expected token rate {token_rate}")
    state = _state(root, dec)
    dims = {int(v.shape[1]) for k, v in state.items() if k.endswith("attn2.to_k.weight") and v.ndim == 2}
    want = 2 * RATES[found][0] + POS_DIM
    if not any(k.startswith("first_stage_model.vocoder.") for k in state) or max(dims, default=0) != want:
        raise UsageError(f"SemantiCodec weights in {root}: {dec.relative_to(root)} does not match "
                         f"{enc.relative_to(root)} (a token-rate-{found} decoder conditions on {want} features, "
                         f"this one on {max(dims, default=0) or 'none'})")


def _check_codebook(root: Path, book: Path, token_rate: int, rows: int) -> None:
    try:
        shape = np.load(book, mmap_mode="r", allow_pickle=False).shape
    except Exception as e:  # noqa: BLE001
        raise UsageError(f"SemantiCodec weights in {root}: {book.relative_to(root)} cannot be read ({first_line(e)})") from None
    want = (rows, RATES[token_rate][0])
    if tuple(shape) != want:
        raise UsageError(f"SemantiCodec weights in {root}: {book.relative_to(root)} has shape {tuple(shape)}, "
                         f"expected {want} for token rate {token_rate}")


def files_sha256(files: dict[str, Path]) -> str:
    """sha256 over the variant's files (role name + bytes), the manifest's checkpoint_sha256."""
    h = hashlib.sha256()
    for role in sorted(files):
        h.update(role.encode())
        with open(files[role], "rb") as fh:
            while block := fh.read(1 << 20):
                h.update(block)
    return h.hexdigest()
