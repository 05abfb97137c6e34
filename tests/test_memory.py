"""Memory: --checkpoint-activations / --offload-activations on every model with DeLighT or
transformer blocks (fairseq's own wrapper, each block), and the GLT layer keeping less for
backward; the losses and every gradient equal those of the plain path."""
from types import SimpleNamespace

import pytest
import torch

from conftest import build_model, make_dictionary, tiny_cfg
from delight_fairseq.models.factory import preset_config


def _lm(**overrides):
    from delight_fairseq.models.define_lm import DefineLanguageModel

    cfg = preset_config("define_lm_small", dict(dropout=0.1, **overrides))
    cfg.max_target_positions, cfg.tokens_per_sample, cfg.tpu = None, 64, False
    d = make_dictionary(200)
    torch.manual_seed(0)
    return DefineLanguageModel.build_model(cfg, SimpleNamespace(source_dictionary=d, target_dictionary=d))


def _define_transformer(**overrides):
    from fairseq import options
    from fairseq.models import ARCH_MODEL_REGISTRY

    flags = [f"--{k.replace('_', '-')}" for k, v in overrides.items() if v]
    args = options.parse_args_and_arch(options.get_training_parser(), ["DATA", "--task", "translation", "--arch",
                                                                       "define_transformer_small", *flags])
    d = make_dictionary(40)
    torch.manual_seed(0)
    return ARCH_MODEL_REGISTRY["define_transformer_small"].build_model(args, SimpleNamespace(source_dictionary=d,
                                                                                            target_dictionary=d))


MODELS = {
    "delight_transformer": lambda **o: build_model(tiny_cfg(dropout=0.1, **o)),
    "define_lm (DeLighT blocks)": _lm,
    "define_lm (transformer blocks)": lambda **o: _lm(block_type="transformer", **o),
    "define_transformer": _define_transformer,
}


def _loss(model, tokens, seed=1):
    torch.manual_seed(seed)  # the same dropout masks, recomputation included
    if hasattr(model, "encoder"):
        out = model(tokens.flip(1), torch.full((tokens.size(0),), tokens.size(1)), tokens)
    else:
        out = model(tokens)
    return out[0].float().log_softmax(-1).mean()


def _blocks(model):
    return [layer for part in ("encoder", "decoder") if getattr(model, part, None) is not None
            for layer in getattr(model, part).layers]


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("flag", ["checkpoint_activations", "offload_activations"])
def test_checkpointed_blocks_give_the_same_loss_and_gradients(name, flag):
    plain, checkpointed = MODELS[name](), MODELS[name](**{flag: True})
    assert not any(hasattr(b, "precheckpoint_forward") for b in _blocks(plain))
    assert _blocks(checkpointed) and all(hasattr(b, "precheckpoint_forward") for b in _blocks(checkpointed))
    assert list(plain.state_dict()) == list(checkpointed.state_dict())  # checkpoints load either way
    checkpointed.load_state_dict(plain.state_dict())
    tokens = torch.randint(4, 36, (3, 7))
    losses = []
    for model in (plain, checkpointed):
        model.train()
        loss = _loss(model, tokens)
        loss.backward()
        losses.append(loss.item())
    assert losses[0] == pytest.approx(losses[1], abs=1e-6)
    for (n, p), q in zip(plain.named_parameters(), checkpointed.parameters()):
        assert (p.grad is None) == (q.grad is None), n
        if p.grad is not None:
            torch.testing.assert_close(q.grad, p.grad, atol=1e-6, rtol=1e-5, msg=n)


def test_incremental_decoding_of_checkpointed_blocks_equals_the_full_pass():
    model = build_model(tiny_cfg(checkpoint_activations=True)).eval()
    src = torch.randint(4, 40, (2, 6))
    prev = torch.randint(4, 36, (2, 5))
    with torch.no_grad():
        enc = model.encoder(src, torch.full((2,), 6))
        full = model.decoder(prev, enc)[0]
        state, steps = {}, []
        for t in range(1, prev.size(1) + 1):
            steps.append(model.decoder(prev[:, :t], enc, incremental_state=state)[0])
    torch.testing.assert_close(torch.cat(steps, 1), full, atol=1e-5, rtol=0)


def _saved_bytes(fn, *inputs):
    """Bytes of the tensors autograd keeps for backward while ``fn(*inputs)`` runs (each storage once)."""
    seen = {}

    def pack(t):
        seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn(*inputs)
    return out, sum(seen.values())


def test_dextra_keeps_one_tensor_per_layer_for_backward_and_computes_the_same():
    """Each GLT layer applies the previous one's norm and activation inside its own map
    (recomputed in backward) and recomputes its own: a DExTra keeps less than half of what
    the layer-by-layer computation keeps, with the same output and gradients."""
    from delight_fairseq.modules import DExTra, GroupLinear

    torch.manual_seed(0)
    dextra = DExTra(256, 128, 128, 8, 2.0, 8)
    x = torch.randn(64, 256, requires_grad=True)

    def layer_by_layer(x):  # each layer whole, keeping what its matmul, norm and activation keep
        inp = dextra.input_layer(x)
        h = dextra.glt_layers[0](inp)
        for layer in dextra.glt_layers[1:]:
            h = layer(h, mixed=inp)
        return dextra.output_layer(h, mixed=inp)

    results = []
    for fn, recompute in ((dextra, True), (layer_by_layer, False)):
        for m in dextra.modules():
            if isinstance(m, GroupLinear):
                m.recompute = recompute
        out, saved = _saved_bytes(fn, x)
        grads = torch.autograd.grad(out.square().sum(), [x, *dextra.parameters()])
        results.append((out, saved, grads))
    (out, saved, grads), (ref, ref_saved, ref_grads) = results
    torch.testing.assert_close(out, ref, atol=1e-6, rtol=1e-5)
    for got, want in zip(grads, ref_grads):
        torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-5)
    weights = sum(p.numel() * 4 for p in dextra.parameters())
    assert saved - weights < 0.5 * (ref_saved - weights), (saved, ref_saved)


def test_the_fused_finish_and_maps_is_the_true_derivative():
    """gradcheck of the previous layer's norm + swish inside the next layer's maps, with the
    mixer and the shuffle, in double precision."""
    from delight_fairseq.modules import GroupLinear
    from delight_fairseq.modules.group_linear_fused import fused_maps

    torch.manual_seed(0)
    pre = GroupLinear(8, 16, 4, shuffle=True, norm="ln", activation="swish").double()
    layer = GroupLinear(16 + 8, 12, 2, shuffle=True, norm="ln", activation="swish").double()
    torch.nn.init.normal_(pre.norm.weight), torch.nn.init.normal_(pre.norm.bias), torch.nn.init.normal_(layer.bias)
    y = torch.randn(5, 16, dtype=torch.double, requires_grad=True)
    mixed = torch.randn(5, 8, dtype=torch.double, requires_grad=True)
    params = [layer.weight, layer.bias, pre.norm.weight, pre.norm.bias]
    assert torch.autograd.gradcheck(lambda y, m: layer.maps(y, m, pre=pre), (y, mixed))
    out = layer.maps(y, mixed, pre=pre)
    got = torch.autograd.grad(out.sin().sum(), params)
    ref = fused_maps(layer, pre.norm_act_dropout(y), mixed)
    want = torch.autograd.grad(ref.sin().sum(), params)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b)


def test_dextra_dropout_falls_back_and_matches_the_step_by_step_path():
    from delight_fairseq.modules import DExTra, GroupLinear

    torch.manual_seed(0)
    dextra = DExTra(64, 32, 32, 4, 2.0, 4, dropout=0.2).train()
    x = torch.randn(10, 64)
    outs = []
    for fused in (True, False):
        for m in dextra.modules():
            if isinstance(m, GroupLinear):
                m.fused = fused
        torch.manual_seed(3)
        out = dextra(x.clone().requires_grad_())
        outs.append((out, torch.autograd.grad(out.sum(), list(dextra.parameters()))))
    torch.testing.assert_close(outs[0][0], outs[1][0])
    for a, b in zip(outs[0][1], outs[1][1]):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("dropout", [0.0, 0.1])
@pytest.mark.parametrize("cross", [False, True], ids=["self", "encoder-decoder"])
def test_attention_keeps_its_projections_and_output_once(cross, dropout):
    """Projections in the inputs' T x B layout, SDPA on one 4-D head (its fused kernel; with
    dropout on the CPU ``dropout_attention``), the output projected where the kernel wrote it: a
    training step keeps the input, the projected q/k/v, the attention output, each row's
    log-sum-exp and the dropout mask as booleans, and no transposed copy of any (the 3-D math
    path also kept scaled copies of q and k and the T x S weights, before and after dropout)."""
    from delight_fairseq.modules import SingleHeadAttention

    torch.manual_seed(0)
    t, b, c, d = 24, 16, 64, 32
    attn = SingleHeadAttention(c, d, c, kv_features=c if cross else None, dropout=dropout).train()
    x, enc = torch.randn(t, b, c, requires_grad=True), torch.randn(t + 5, b, c, requires_grad=True)
    out, saved = _saved_bytes((lambda x: attn(x, enc)) if cross else attn, x)
    assert out.shape == (t, b, c)
    f32 = 4
    weights = sum(p.numel() * f32 for n, p in attn.named_parameters() if n.endswith("weight"))
    # inputs (x; enc), projections (3 D wide, or D + 2 D over the source), attention output D, lse
    kept = t * b * c + (t + 5) * b * c + t * b * d + (t + 5) * b * 2 * d if cross else t * b * c + t * b * 3 * d
    kept = (kept + t * b * d + b * t) * f32
    if dropout:
        kept += b * t * (t + 5 if cross else t)  # the kept weights, one byte each
    assert saved == weights + kept, (saved, weights + kept)


def _kept_after(fn, *inputs):
    """``fn(*inputs)`` and the bytes of every tensor it made that is still alive once it has
    returned, its output included: what the forward pass leaves for backward (each storage once)."""
    from torch.multiprocessing.reductions import StorageWeakRef
    from torch.overrides import TorchFunctionMode

    made = []  # (weak reference, address, bytes) of every output: an address may be reused once freed

    class Record(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for t in out if isinstance(out, (tuple, list)) else (out,):
                if isinstance(t, torch.Tensor):
                    s = t.untyped_storage()
                    made.append((StorageWeakRef(s), s.data_ptr(), s.nbytes()))
            return out

    with Record():
        out = fn(*inputs)
    return out, sum(dict((ptr, n) for ref, ptr, n in made if not ref.expired()).values())


@pytest.mark.parametrize("block", ["encoder (post-norm)", "decoder (post-norm)", "pre-norm"])
def test_each_normed_or_activated_output_is_kept_once_and_the_block_computes_the_same(block):
    """A norm or activation keeps its input for backward; the sub-layer reading its output
    keeps a recipe that recomputes it there (``recompute.recomputed``), not a copy: the block's
    norms (but the last, post-norm: the block's output), its DExTra's input layer and output
    and its light FFN's activation. What a forward pass leaves alive shrinks by exactly their
    sizes; loss and gradients equal to the bit those of the block that keeps them all."""
    from delight_fairseq.modules import delight_layer
    from delight_fairseq.modules.dextra import DExTraConfig
    from delight_fairseq.modules.recompute import keeping_copies

    t, b, c = 7, 3, 64
    cfg = delight_layer.DeLighTBlockConfig(c, DExTraConfig(4, 2.0, 4), normalize_before=block == "pre-norm",
                                           dropout=0.1, attention_dropout=0.1)
    torch.manual_seed(0)
    layer = delight_layer.DeLighTLayer(cfg, encoder_dim=c if block.startswith("decoder") else None).train()
    x, enc = torch.randn(t, b, c, requires_grad=True), torch.randn(5, b, c, requires_grad=True)

    def run():
        torch.manual_seed(1)
        out, kept = _kept_after(lambda x: layer(x, encoder_out=enc if layer.encoder_attn is not None else None,
                                                causal=True), x)
        return out, kept, torch.autograd.grad(out.square().sum(), [x, enc, *layer.parameters()], allow_unused=True)

    out, kept, grads = run()
    with keeping_copies():
        ref, ref_kept, ref_grads = run()
    assert torch.equal(out, ref)
    for got, want in zip(grads, ref_grads):
        assert (got is None and want is None) or torch.equal(got, want)
    norms = {"encoder (post-norm)": 1, "decoder (post-norm)": 2, "pre-norm": 2}[block]  # C wide each
    d = c // 2  # the DExTra's input layer and output
    assert ref_kept - kept == t * b * (norms * c + 2 * d + c // 4) * 4, (ref_kept, kept)


def test_a_blocks_output_is_kept_once_by_the_next_block_and_the_model_computes_the_same():
    """In the post-norm stacks the next block's DExTra keeps a recipe for the previous block's
    output (its last norm's), not a copy: after a training forward pass only the encoder's last
    output is alive (every decoder block reads it; the output layer copies the decoder's); loss
    and every gradient equal to the bit those of the model keeping them all."""
    from torch.multiprocessing.reductions import StorageWeakRef

    from delight_fairseq.modules.recompute import keeping_copies

    model = build_model(tiny_cfg(dropout=0.1, attention_dropout=0.1)).train()
    tokens = torch.randint(4, 36, (3, 6))

    def run():
        outputs = {}
        blocks = [(part, i, layer) for part in ("encoder", "decoder") for i, layer in enumerate(getattr(model, part).layers)]
        hooks = [layer.ffn_norm.register_forward_hook(
            lambda m, inp, out, key=(part, i): outputs.__setitem__(key, StorageWeakRef(out.untyped_storage())))
            for part, i, layer in blocks]
        loss = _loss(model, tokens)
        for h in hooks:
            h.remove()
        alive = sorted(key for key, ref in outputs.items() if not ref.expired())
        return loss, alive, torch.autograd.grad(loss, list(model.parameters()))

    loss, alive, grads = run()
    with keeping_copies():
        ref, ref_alive, ref_grads = run()
    assert torch.equal(loss, ref) and all(torch.equal(g, r) for g, r in zip(grads, ref_grads))
    n_enc, n_dec = len(model.encoder.layers), len(model.decoder.layers)
    assert alive == [("encoder", n_enc - 1)], alive
    assert len(ref_alive) == n_enc + n_dec - 1  # all but the copied last decoder output


def test_a_recipe_is_kept_only_for_a_whole_tensor_and_recomputes_it_exactly():
    """``recomputed``: a saved view of ``out`` becomes a recipe (``out`` is then freed after the
    forward pass) that gives the same gradient to the bit; for ``out`` a part of a larger tensor
    (``fn`` could not rebuild the other parts) nothing is replaced."""
    from contextlib import nullcontext

    from torch.multiprocessing.reductions import StorageWeakRef

    from delight_fairseq.modules.recompute import _Recipe, recomputed

    x = torch.randn(4, 6, requires_grad=True)

    def run(recipe):
        y = x * 2  # keeps nothing for backward
        ref = StorageWeakRef(y.untyped_storage())
        ctx = recomputed(y, lambda: x * 2) if recipe else nullcontext()
        with ctx:
            z = (y[:, 1:].sin() * x[:, 1:]).sum()  # keeps a view of y (for sin) and the view of x
        del y, ctx
        return not ref.expired(), torch.autograd.grad(z, x)[0]

    (alive, grad), (ref_alive, ref_grad) = run(True), run(False)
    assert not alive and ref_alive and torch.equal(grad, ref_grad)
    both = torch.tanh(x).chunk(2, dim=1)  # two views of one storage
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        with recomputed(both[0], lambda: both[0] * 1):
            (both[0] * both[1]).sum()
    assert len(saved) == 2 and not any(isinstance(t, _Recipe) for t in saved)


def test_a_tensor_read_by_many_layers_is_recomputed_once_per_backward():
    """A DExTra's input layer output is read (and its recipe kept) by every GLT layer: backward
    recomputes it once; a second backward through a retained graph recomputes it for each reader
    (not cached then, and the same)."""
    from delight_fairseq.modules.recompute import recomputed

    x = torch.randn(5, 4, requires_grad=True)
    calls = []

    def fn():
        calls.append(1)
        return torch.tanh(x)

    y = torch.tanh(x)
    with recomputed(y, fn):
        z = sum((y * w).sin().sum() for w in torch.randn(3, 5, 4, requires_grad=True))  # three readers keep y
    first = torch.autograd.grad(z, x, retain_graph=True)[0]
    assert len(calls) == 1
    again = torch.autograd.grad(z, x)[0]
    assert len(calls) == 1 + 3 and torch.equal(again, first)
