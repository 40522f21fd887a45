"""Reference models for parity tests: HF transformers models, seeded, with weights that
cannot hide a wrong mapping (random BatchNorm statistics and affine parameters, random
layer scales and attention biases instead of the constant initialisations)."""
from __future__ import annotations

import torch

# The HF constructor of each shipped spec, as listed in the reference figures
# (shared/reference/models.md, "HF constructors").
HF_MODELS = {
    "resnet18": ("ResNetForImageClassification", "ResNetConfig",
                 dict(depths=[2, 2, 2, 2], hidden_sizes=[64, 128, 256, 512], layer_type="basic")),
    "resnet50": ("ResNetForImageClassification", "ResNetConfig",
                 dict(depths=[3, 4, 6, 3], hidden_sizes=[256, 512, 1024, 2048], layer_type="bottleneck")),
    "convnext_tiny": ("ConvNextForImageClassification", "ConvNextConfig",
                      dict(depths=[3, 3, 9, 3], hidden_sizes=[96, 192, 384, 768])),
    "mobilenet_v2": ("MobileNetV2ForImageClassification", "MobileNetV2Config", dict()),
    "levit_128s": ("LevitForImageClassificationWithTeacher", "LevitConfig",
                   dict(hidden_sizes=[128, 256, 384], num_attention_heads=[4, 6, 8], depths=[2, 3, 4],
                        key_dim=[16, 16, 16], drop_path_rate=0)),
    "mobilevit_s": ("MobileViTForImageClassification", "MobileViTConfig",
                    dict(hidden_sizes=[144, 192, 240], neck_hidden_sizes=[16, 32, 64, 96, 128, 160, 640])),
}


def hf_model(name: str, seed: int = 0) -> torch.nn.Module:
    """The HF reference for a shipped spec, randomly initialised (seeded), in eval mode."""
    import transformers

    model_cls, config_cls, kwargs = HF_MODELS[name]
    torch.manual_seed(seed)
    config = getattr(transformers, config_cls)(num_labels=1000, **kwargs)
    model = getattr(transformers, model_cls)(config)
    randomize(model, seed)
    calibrate(model, (3, 256, 256) if name.startswith("mobilevit") else (3, 224, 224), seed)
    model.train()  # HF LeViT caches gathered attention biases in eval; train() clears the cache
    return model.eval()


@torch.no_grad()
def calibrate(model: torch.nn.Module, input_shape: tuple[int, ...], seed: int = 0) -> None:
    """BatchNorm running statistics as training leaves them: measured on a batch of random
    images (so activations stay well scaled and depend on the input, as in a trained net),
    then perturbed so that they are not exactly the batch's."""
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    g = torch.Generator().manual_seed(seed + 2)
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.momentum = 1.0  # running stats := this batch's
    model.train()
    model(torch.randn(8, *input_shape, generator=g))
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
        std = m.running_var.sqrt()
        m.running_mean += 0.1 * std * torch.randn(m.running_mean.shape, generator=g)
        m.running_var *= torch.rand(m.running_var.shape, generator=g) * 0.5 + 0.75
    model.eval()


@torch.no_grad()
def randomize(model: torch.nn.Module, seed: int = 0) -> None:
    """Give every tensor a non-trivial value, so that a wrong mapping cannot hide.

    Norm statistics and affine parameters, layer scales and biases are otherwise constant
    (zeros and ones) at initialisation, and a mapping that swaps two of them would pass.
    """
    g = torch.Generator().manual_seed(seed + 1)
    # norm weights by module type: torchvision's and timm's keys (`features.0.1.weight`,
    # `bn1.weight`) do not say "norm", and near-zero scales would flatten the logits
    norm_types = (torch.nn.modules.batchnorm._NormBase, torch.nn.LayerNorm, torch.nn.GroupNorm)
    norm_weights = {f"{m}.weight" if m else "weight" for m, mod in model.named_modules() if isinstance(mod, norm_types)}
    for name, t in model.state_dict().items():
        if not t.is_floating_point():
            continue
        if name.endswith("running_var"):
            t.copy_(torch.rand(t.shape, generator=g) * 0.5 + 0.75)
        elif name.endswith("running_mean"):
            t.copy_(torch.randn(t.shape, generator=g) * 0.1)
        elif "attention_biases" in name:
            # std 1: a bias table read in the wrong order must change the logits visibly
            t.copy_(torch.randn(t.shape, generator=g))
        elif t.ndim >= 2:
            # fan-in scaled, not the 0.02-std init, which leaves LeViT's tokens nearly equal
            # so that attention (and a wrong q/k or bias mapping) barely matters
            t.copy_(torch.randn(t.shape, generator=g) / t[0].numel() ** 0.5)
        elif t.ndim <= 1 or "layer_scale" in name:
            # norm weights stay near 1 so deep nets keep a stable scale; biases near 0
            base = 1.0 if name.endswith("weight") and ("norm" in name or name in norm_weights) else 0.0
            t.copy_(base + torch.randn(t.shape, generator=g) * 0.1)
