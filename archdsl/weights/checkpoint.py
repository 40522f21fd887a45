"""What `import_weights` accepts as weights, read and checked before anything is copied.

A state_dict (a mapping of names to tensors), a model (`nn.Module`: its state_dict), or a
checkpoint file: `.safetensors` (safetensors), `.pt`/`.pth`/`.bin`/`.ckpt` (`torch.load` with
`weights_only=True`, never arbitrary pickles; a `{"state_dict": ...}` or `{"model": ...}`
wrapper is unwrapped). Every value must be a materialised tensor: numpy arrays, lists, None
and meta tensors are refused by name.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ArchWeightsError

TORCH_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")


def read_weights(weights: Any) -> dict:
    """The weights as a plain {name: tensor} dict, or an `ArchWeightsError` saying why not."""
    import torch
    from torch import nn

    if isinstance(weights, nn.Module):
        weights = weights.state_dict()
    elif isinstance(weights, (str, Path)):
        weights = _load_file(Path(weights))
    if not hasattr(weights, "keys") or not hasattr(weights, "__getitem__"):
        raise ArchWeightsError(f"weights must be a state_dict, a model or a checkpoint path, got "
                               f"{type(weights).__name__}", hint="pass model.state_dict(), the model, or a .pth/.safetensors file")
    out, bad = {}, []
    for key in list(weights.keys()):
        value = weights[key]
        if not isinstance(key, str):
            bad.append(f"{key!r}: keys must be strings")
        elif not isinstance(value, torch.Tensor):
            bad.append(f"{key}: a {type(value).__name__}, not a tensor")
        elif value.is_meta:
            bad.append(f"{key}: a meta tensor (no data)")
        else:
            out[key] = value
    if bad:
        raise ArchWeightsError(f"{len(bad)} checkpoint entries are not loadable tensors:" + _listing(bad),
                               hint="convert arrays with torch.as_tensor, and load a checkpoint whose tensors "
                                    "have data (not one built on the meta device)")
    return out


def _load_file(path: Path) -> Any:
    import torch

    if not path.is_file():
        raise ArchWeightsError(f"no checkpoint file at {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        if path.suffix in TORCH_SUFFIXES:
            data = torch.load(path, map_location="cpu", weights_only=True)
        else:
            raise ArchWeightsError(f"{path.name}: unknown checkpoint format '{path.suffix}'",
                                   hint="use a .safetensors or .pt/.pth file")
    except ArchWeightsError:
        raise
    except ImportError:
        raise ArchWeightsError(f"{path.name}: reading .safetensors needs the safetensors package",
                               hint="pip install safetensors") from None
    except Exception as e:  # a corrupt file, or a pickle that weights_only refuses
        raise ArchWeightsError(f"{path.name}: cannot read the checkpoint: {type(e).__name__}: {str(e)[:300]}") from None
    for wrapper in ("state_dict", "model"):
        if isinstance(data, dict) and isinstance(data.get(wrapper), dict):
            return data[wrapper]
    return data


def _listing(items: list[str], limit: int = 12) -> str:
    shown = "\n    ".join(items[:limit])
    more = f"\n    ... and {len(items) - limit} more" if len(items) > limit else ""
    return "\n    " + shown + more
