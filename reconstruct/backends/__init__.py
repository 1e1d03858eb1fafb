"""Reconstruction back-ends: importing this package registers every one of them.

Heavy libraries are imported inside each back-end's `load`, so listing back-ends is cheap.
"""
from . import classical_codec, griffinlim  # noqa: F401  (registration side effect)
from . import encodec_codec  # noqa: F401
from . import dac_codec  # noqa: F401
from . import hifigan  # noqa: F401
from . import diffwave  # noqa: F401
from . import audioldm2  # noqa: F401
from . import mel_diffusion  # noqa: F401
from . import mimi_codec, snac_codec, vocos_vocoder, bigvgan_vocoder  # noqa: F401
from . import semanticodec_codec  # noqa: F401
from .base import Backend
from .registry import BACKENDS, available, get, register

__all__ = ["BACKENDS", "Backend", "available", "get", "register"]
