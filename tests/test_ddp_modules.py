"""Every model under torch's DistributedDataParallel with ``find_unused_parameters=False``
(fairseq's default ``pytorch_ddp``): DDP stops at the second step if any parameter got no
gradient in the first. fairseq's own launcher cannot run ``pytorch_ddp`` on the CPU (it
passes ``device_ids=[0]``), so the wrapper is built here, in a one-process gloo group;
the two-process run through fairseq-train is in test_hub_and_distributed.py."""
import pytest
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

from conftest import build_lm, build_model, lm_cfg, make_dictionary, tiny_cfg


@pytest.fixture
def process_group(tmp_path):
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'rendezvous'}", rank=0, world_size=1)
    yield
    dist.destroy_process_group()


def _steps(model, loss_fn, n=3):
    ddp = DistributedDataParallel(model, find_unused_parameters=False)
    opt = torch.optim.SGD(ddp.parameters(), lr=0.01)
    for _ in range(n):  # an unused parameter fails here, at step 2
        opt.zero_grad()
        loss_fn(ddp).backward()
        opt.step()
    assert all(p.grad is not None for p in model.parameters())


TRANSLATION = {
    "delight": {},
    "define embedding": dict(define_embedding=True, define_expand_dim=32, define_max_groups=2),
    "pre-norm, rms, paper schedule": dict(normalize_before=True, norm_type="rms", dextra_schedule="paper"),
}


@pytest.mark.parametrize("name", TRANSLATION)
def test_translation_model_under_ddp(process_group, name):
    model = build_model(tiny_cfg(**TRANSLATION[name]))
    src, prev = torch.randint(4, 40, (4, 9)), torch.randint(4, 36, (4, 7))

    def loss(m):
        out = m(src, torch.full((4,), 9), prev)[0]
        return F.cross_entropy(out.view(-1, out.size(-1)), prev.view(-1))

    _steps(model, loss)


@pytest.mark.parametrize("arch, overrides", [
    ("define_lm_small", {}),
    ("define_lm_small", dict(adaptive_input=True, adaptive_input_cutoff="50,120", adaptive_input_factor=2)),
])
def test_language_model_under_ddp(process_group, arch, overrides):
    model = build_lm(lm_cfg(arch, dropout=0.0, **overrides), make_dictionary(200))
    tokens = torch.randint(4, 200, (2, 32))

    def loss(m):
        out = m(tokens)[0]
        return F.cross_entropy(out.view(-1, out.size(-1)), tokens.view(-1))

    _steps(model, loss)


def _other_model(kind):
    """The DeFINE paper's other hosts, small: an AWD-LSTM with DeFINE, Transformer-XL with
    DeFINE, fairseq's transformer with DeFINE."""
    from types import SimpleNamespace

    from fairseq import options
    from fairseq.models import ARCH_MODEL_REGISTRY

    from delight_fairseq.models.factory import preset_config

    d = make_dictionary(200)
    task = SimpleNamespace(source_dictionary=d, target_dictionary=d)
    torch.manual_seed(0)
    if kind == "define_transformer_small":
        args = options.parse_args_and_arch(options.get_training_parser(), ["DATA", "--task", "translation", "--arch", kind])
        return ARCH_MODEL_REGISTRY[kind].build_model(args, task)
    cfg = preset_config(kind, {"dropout": 0.0} if kind == "define_transformer_xl_small" else {})
    cfg.max_target_positions = None
    return ARCH_MODEL_REGISTRY[kind].build_model(cfg, task)


@pytest.mark.parametrize("kind", ["define_lstm_lm_small", "define_transformer_xl_small", "define_transformer_small"])
def test_the_define_hosts_under_ddp(process_group, kind):
    model = _other_model(kind)
    tokens = torch.randint(4, 200, (2, 16))

    def loss(m):
        if kind == "define_transformer_small":
            out = m(tokens.flip(1), torch.full((2,), 16), tokens)[0]
        else:
            out = m.module.get_normalized_probs(m(tokens), log_probs=True) if kind.endswith("xl_small") else m(tokens)[0]
        return F.cross_entropy(out.reshape(-1, out.size(-1)), tokens.view(-1))

    _steps(model, loss)
