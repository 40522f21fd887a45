"""`import_weights`: a reference state_dict into an emitted module, every tensor accounted for."""
from __future__ import annotations

from typing import Any, Mapping as MappingT

from ..errors import ArchWeightsError
from .mapping import Mapping, ScopeIndex, mapping_path, read_mapping

_OPTIONAL_TARGETS = ("num_batches_tracked",)  # counters a checkpoint may leave out


def load_mapping(module, source: str = "hf") -> Mapping:
    info = getattr(module, "archdsl_info", None) or {}
    family_file = info.get("family_file")
    if not family_file:
        raise ArchWeightsError("this module was not built from a family, so no weight mapping applies",
                               hint="models written inline have no reference layout; load_state_dict directly")
    return read_mapping(mapping_path(family_file), source)


def map_keys(mapping: Mapping, source_keys, target_keys) -> tuple[dict[str, str], list[str]]:
    """Source key -> our key for every mappable key, and the source keys no rule maps."""
    targets = set(target_keys)
    scopes = ScopeIndex(targets)  # for `{i:PATTERN}` targets
    mapped, unmapped = {}, []
    for src_prefix, dst_prefix in mapping.in_order:  # zipped in state-dict order
        mine = [k for k in target_keys if k.startswith(dst_prefix)]
        theirs = [k for k in source_keys if k.startswith(src_prefix) and not any(p.search(k) for p in mapping.ignore)]
        mapped.update(zip(theirs, mine))
    for key in source_keys:
        if key in mapped or any(p.search(key) for p in mapping.ignore):
            continue
        for rule in mapping.rules:
            out = rule.apply(key, scopes)
            if out is not None and out in targets:
                mapped[key] = out
                break
        else:
            unmapped.append(key)
    return mapped, unmapped


def import_weights(module, state_dict: MappingT[str, Any], source: str = "hf", strict: bool = True):
    """Load a reference implementation's `state_dict` into a module emitted by archdsl.

    Args:
        module: built by `archdsl.build` from a spec whose family has a mapping for `source`.
        state_dict: the reference model's tensors (e.g. `hf_model.state_dict()`).
        source: "hf" (HF transformers); others as the family's mapping file provides.
        strict: refuse when any tensor is unmapped, mismatched, or left unfilled.

    Returns:
        The module, with the tensors copied in.

    Raises:
        ArchWeightsError: listing every unmapped, mismatched or missing tensor.
    """
    import torch

    mapping = load_mapping(module, source)
    ours = module.state_dict()
    mapped, unmapped = map_keys(mapping, state_dict.keys(), ours.keys())
    new: dict[str, torch.Tensor] = {}
    mismatched, duplicated = [], []
    for src, dst in mapped.items():
        tensor = state_dict[src]
        want = ours[dst].shape
        if tensor.shape != want:
            # only the layout of singleton dims may differ ([1, 1, 1, C] gamma vs [C])
            if tensor.numel() == ours[dst].numel() and [d for d in tensor.shape if d != 1] == [d for d in want if d != 1]:
                tensor = tensor.reshape(want)
            else:
                mismatched.append(f"{src} {list(tensor.shape)} -> {dst} {list(want)}")
                continue
        if dst in new:
            duplicated.append(f"{src} -> {dst} (already filled)")
            continue
        new[dst] = tensor
    missing = [k for k in ours if k not in new and not k.endswith(_OPTIONAL_TARGETS)]
    problems = []
    if unmapped:
        problems.append(f"{len(unmapped)} source tensors map to nothing: " + _listing(unmapped))
    if mismatched:
        problems.append(f"{len(mismatched)} tensors differ in shape: " + _listing(mismatched))
    if duplicated:
        problems.append(f"{len(duplicated)} tensors map onto the same target: " + _listing(duplicated))
    if missing:
        problems.append(f"{len(missing)} module tensors are not filled: " + _listing(missing))
    if problems and strict:
        raise ArchWeightsError(f"cannot load {source} weights ({mapping.reference}) into "
                               f"{module.archdsl_info.get('model')}:\n  " + "\n  ".join(problems),
                               hint="check that the spec and the reference model are the same variant")
    with torch.no_grad():
        for key, tensor in new.items():
            ours[key].copy_(tensor)
    return module


def _listing(items: list[str], limit: int = 12) -> str:
    shown = "\n    ".join(items[:limit])
    more = f"\n    ... and {len(items) - limit} more" if len(items) > limit else ""
    return "\n    " + shown + more
