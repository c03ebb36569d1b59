"""ohlora_utils — the library behind the Oh-LoRA v3 LLM study notebooks.

Usage: ``from ohlora_utils import timeinfo, profiles, models``

Small single-purpose modules; the notebooks in ``notebooks/`` narrate and show, this package implements.
Importing it switches the Hugging Face libraries to offline mode: the study never reaches a model hub
unless the user explicitly sets ``HF_HUB_OFFLINE=0`` (only the ``paper`` profile needs that).
"""
import os

for _flag in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ.setdefault(_flag, "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # forked DataLoader workers would warn otherwise

__version__ = "0.1.0"
