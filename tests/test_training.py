"""Fine-tuning runs end to end on a tiny model saved to disk as the "pretrained" base."""

import json
import math

import pytest
import torch
import yaml

from mawt import mawt_layers, patch_model
from mawt.evaluation.evaluate import eval_heldout
from mawt.training.train import train_run
from mawt.training.runconfig import load
from mawt.training.trainer import MAWTTrainer

GRPO_RUN = {
    "data": {"source": "synthetic", "families": ["shift_two"], "synthetic_rows": 80,
             "n_train": 48, "n_heldout": 16, "difficulty": 1},
    "mawt": {"depth": 4, "mixer": "grpo", "init_noise": 0.3},
    "trainable": "last",
    "train": {"steps": 12, "batch_size": 8, "learning_rate": 3e-3, "group_size": 4, "logging_steps": 4,
              "save_steps": 0, "seed": 0, "warmup_steps": 0},
}


DROP_MARGIN = 0.02  # held-out answer loss must drop by more (measured 4.28 nats, AVX512; 4.24, default kernels)
MAX_SELECTOR_STEPS = 300


@pytest.fixture
def base_dir(micro_base):
    return micro_base


def _config(tmp_path, base_dir, **overrides):
    data = json.loads(json.dumps(GRPO_RUN))
    for section, values in overrides.items():
        if isinstance(values, dict):
            data[section] = {**(data.get(section) or {}), **values}
        else:
            data[section] = values
    data["base_model"] = str(base_dir)
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(data))
    return load(path)


def _metrics(run_dir):
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    drop = ("train_runtime", "train_samples_per_second", "train_steps_per_second")
    return [{k: v for k, v in line.items() if k not in drop} for line in lines]


class _RowCounter:
    """Counts the rows that pass through a module in training mode (a forward hook, nothing
    mocked): the held-out evaluation after training runs in eval mode and is not counted."""

    def __init__(self, module):
        self.calls, self.rows = 0, 0
        module.register_forward_hook(self)

    def __call__(self, module, args, output):
        if module.training:
            self.calls += 1
            self.rows += args[0].shape[0]


@pytest.mark.parametrize("reuse", [True, False])
def test_frozen_prefix_runs_once_per_step(tmp_path, base_dir, reuse, monkeypatch):
    cfg = _config(tmp_path, base_dir, train={"steps": 3, "reuse_prefix": reuse})
    counters = {}
    original_init = MAWTTrainer.__init__

    def init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        layers = self.model.model.layers
        # the last layer's input norm: its MLP block runs at the answer cells only (mawt.layer.depthwise.last_layer_at)
        counters["first"], counters["last"] = _RowCounter(layers[0]), _RowCounter(layers[-1].input_layernorm)
        counters["trainer"] = self

    monkeypatch.setattr(MAWTTrainer, "__init__", init)
    train_run(cfg, tmp_path / "run")
    steps, batch, G = 3, 8, 4
    first, last = counters["first"], counters["last"]
    train_first_rows = first.rows  # training forwards only (see _RowCounter)
    assert last.rows == steps * batch * G  # the trainable suffix always sees G rollouts
    if reuse:
        assert counters["trainer"].grpo_loss.prefix_calls == steps
        assert train_first_rows == steps * batch  # prefix: once per step, B rows
    else:
        assert counters["trainer"].grpo_loss.prefix_calls == 0
        assert train_first_rows == steps * batch * G


def test_grpo_run_learns_and_logs_its_parts(tmp_path, base_dir):
    cfg = _config(tmp_path, base_dir, train={"steps": 40, "learning_rate": 1e-2})
    summary = train_run(cfg, tmp_path / "run")
    before = eval_heldout(base_dir, tmp_path / "run" / "data" / "heldout.jsonl", tmp_path / "base.json")
    after = eval_heldout(tmp_path / "run" / "model", tmp_path / "run" / "data" / "heldout.jsonl",
                         tmp_path / "tuned.json")
    assert after["heldout_answer_loss"] < before["heldout_answer_loss"] - DROP_MARGIN
    assert len(after["items"]) == 16 and {"prediction", "exact_match", "challenge_metric", "challenge_strict",
                                          "think_closed", "truncated", "output_tokens"} <= set(after["items"][0])
    usage = [after["selection"][f"depth_usage_{d}"] for d in range(4)]
    assert sum(usage) == pytest.approx(1.0, abs=1e-5)
    assert 0.0 <= after["selection"]["selector_entropy"] <= math.log(4) + 1e-5
    assert summary["trainable_dtype"] == "float32" and summary["compute_dtype"] == "float32"
    logged = _metrics(tmp_path / "run")
    parts = {"loss_ce", "loss_pg", "kl", "loss_entropy", "reward_mean", "reward_std", "zero_spread_frac",
             "depth_usage_0", "selector_entropy"}
    assert parts <= set(logged[0])
    assert all(0.0 <= line["zero_spread_frac"] <= 1.0 for line in logged if "zero_spread_frac" in line)
    assert summary["config"]["train"]["credit"] == "token" and summary["config"]["train"]["advantage"] == "rloo"
    assert summary["environment"]["versions"]["torch"].startswith("2.13.0")
    assert summary["trainable_parameters"] > 0 and summary["seed"] == 0


GOOD = 2  # the depth left intact by _one_good_depth
MIN_GAP = 1.0  # nats per answer token that a bad depth must cost


def _selector_batches(base_dir):
    from transformers import AutoTokenizer

    from mawt.data.prompts import AnswerCollator, encode_example
    from mawt.data.puzzles import generate

    tok = AutoTokenizer.from_pretrained(base_dir)
    collate = AnswerCollator(tok.pad_token_id)
    rows = generate(32, ["shift_two"], seed=3)
    return [collate([encode_example(tok, r, 64) for r in rows[i : i + 8]]) for i in range(0, 32, 8)]


def _one_good_depth(base_dir, credit, advantage, batches):
    """The micro base with MAWT (D=4, no init noise) in the last layer, where depth GOOD is
    the pretrained attention and the others are plainly worse: B_d = s * I with the first
    s in -1, -2, -4, ... that costs >= MIN_GAP nats per answer token (forced choices).
    (Scaling B_d towards 0, or just negating it, is not enough on every pre-trained micro
    base: its last-layer attention can be worth ~0.01 nats of answer CE.) Only the
    selector trains. Returns (model, layer, trainer, gap)."""
    from transformers import AutoModelForCausalLM, TrainingArguments

    from mawt import MAWTConfig, patch_model
    from mawt.training.runconfig import TrainConfig
    from mawt.training.grpo_loss import answer_ce

    torch.manual_seed(0)
    model = patch_model(AutoModelForCausalLM.from_pretrained(base_dir), MAWTConfig(depth=4, init_noise=0.0))
    (layer,) = mawt_layers(model).values()  # the last layer's
    model.requires_grad_(False).eval()

    def forced_ce(d: int) -> float:  # mean answer CE with depth d chosen everywhere
        ces = []
        for b in batches:
            layer.mixer.forced = torch.full((b["input_ids"].shape[0],), d)
            try:
                with torch.no_grad():
                    logits = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits
            finally:
                layer.mixer.forced = None
            ces.append(answer_ce(logits, b["labels"]))
        return torch.cat(ces).mean().item()

    eye = torch.eye(layer.head_dim)
    for scale in (-1.0, -2.0, -4.0, -8.0, -16.0):
        with torch.no_grad():
            for d in range(4):
                layer.depth_output[d].copy_(eye if d == GOOD else scale * eye)
        gap = forced_ce((GOOD + 1) % 4) - forced_ce(GOOD)
        if gap >= MIN_GAP:
            break
    layer.mixer.requires_grad_(True)
    model.train()
    # beta=0: with the unnormalised dr_grpo / rloo advantages (in nats) the default KL weight is
    # as strong as the policy signal of the sequence form and holds the policy near pi_ref; this
    # test is about the policy gradient itself.
    run = TrainConfig(group_size=4, credit=credit, advantage=advantage, beta=0.0)
    args = TrainingArguments(output_dir=str(base_dir / "unused"), report_to=[], use_cpu=True)
    return model, layer, MAWTTrainer(model=model, args=args, run=run, use_grpo=True), gap


@pytest.mark.parametrize("advantage", ["grpo", "dr_grpo", "rloo"])
@pytest.mark.parametrize("credit", ["token", "sequence", "exact"])
def test_grpo_selector_moves_to_a_plainly_better_depth(base_dir, credit, advantage):
    from mawt.training import grpo

    batches = _selector_batches(base_dir)
    model, layer, trainer, gap = _one_good_depth(base_dir, credit, advantage, batches)
    assert gap >= MIN_GAP, f"no scale made the bad depths {MIN_GAP} nats worse (gap {gap:.3f})"
    opt = torch.optim.Adam(layer.mixer.parameters(), lr=1e-2)

    def good_prob() -> float:  # mean pi(GOOD) over the answer cells of all 32 rows, greedy (eval) forward
        model.eval()
        probs = []
        with torch.no_grad():
            for b in batches:
                model(input_ids=b["input_ids"], attention_mask=b["attention_mask"])
                pi = layer.last_selection.log_probs.exp()[..., GOOD]
                probs.append(pi[grpo.answer_cells(b["labels"])])
        model.train()
        return torch.cat(probs).mean().item()

    start, history = good_prob(), []
    for step in range(MAX_SELECTOR_STEPS):
        loss = trainer.compute_loss(model, batches[step % len(batches)])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if (step + 1) % 20 == 0:
            history.append(round(good_prob(), 3))
            if history[-1] > 0.95:  # converged: stop early (most cases need 20-60 steps)
                break
    assert abs(start - 0.25) < 0.02
    assert history[-1] > 0.7, f"{credit}/{advantage}: pi(good) every 20 steps {history}"
    spread_key = "reward_spread" if credit == "exact" else "zero_spread_frac"
    assert spread_key in trainer._parts


def test_every_trainable_parameter_changes(tmp_path, base_dir):
    """Every parameter of the trainable layer moves, the MAWT ones (A_d, B_d, selector) included,
    against the run's own start (the base plus the seeded MAWT initialisation); nothing else moves."""
    from transformers import set_seed

    from mawt import load_model
    from mawt.training.models import load_base

    cfg = _config(tmp_path, base_dir, mawt={"mixer": "softmax"}, train={"steps": 5})
    train_run(cfg, tmp_path / "run")
    set_seed(cfg.train.seed)
    start, _ = load_base(cfg, "cpu")
    patch_model(start, cfg.mawt)
    before = dict(start.named_parameters())
    after = dict(load_model(tmp_path / "run" / "model").named_parameters())
    assert before.keys() == after.keys()
    last = f"model.layers.{start.config.num_hidden_layers - 1}."
    trainable = [n for n in after if n.startswith(last)]
    assert {last + "self_attn.depth_query", last + "self_attn.depth_output"} <= set(trainable)
    assert any(".mixer." in n for n in trainable)
    unchanged = [n for n in trainable if torch.equal(after[n].detach(), before[n].detach())]
    assert unchanged == []
    assert all(torch.equal(after[n].detach(), before[n].detach()) for n in after if not n.startswith(last))


def _tree(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_run_folder_belongs_to_one_config(tmp_path, base_dir, cli):
    """Resume only the same config; another config is refused, the folder left byte-identical; --restart."""
    from mawt.training import ownership

    mine = _config(tmp_path, base_dir, train={"steps": 8, "save_steps": 4})
    first = train_run(mine, tmp_path / "run")
    assert first["resumed_from"] is None and (tmp_path / "run" / "checkpoints" / "checkpoint-8").is_dir()
    before = _tree(tmp_path / "run")
    other = _config(tmp_path, base_dir, train={"steps": 8, "save_steps": 4, "learning_rate": 1e-3, "seed": 1})
    with pytest.raises(ValueError, match=r"belongs to another config \(train.learning_rate: 0.003 in the folder, "
                                         r"0.001 here; train.seed: 0 in the folder, 1 here\): pass --restart"):
        train_run(other, tmp_path / "run")
    assert _tree(tmp_path / "run") == before  # nothing touched
    again = train_run(mine, tmp_path / "run")  # the same config: resumes (here: nothing left to train)
    assert again["resumed_from"] == "checkpoint-8"
    assert [m["step"] for m in _metrics(tmp_path / "run") if "loss" in m] == [4, 8]  # no duplicated lines
    restarted = train_run(other, tmp_path / "run", restart=True)
    assert restarted["resumed_from"] is None
    record = json.loads((tmp_path / "run" / ownership.RECORD).read_text())
    assert record["config"] == other.training_dict() and record["hash"] == ownership.config_hash(record["config"])
    # outputs with no record of their config (e.g. copied in by hand) are refused as well
    (tmp_path / "run" / ownership.RECORD).unlink()
    (tmp_path / "run" / "run.json").unlink()
    with pytest.raises(ValueError, match=r"holds training outputs \(checkpoints, model, metrics.jsonl, data\) with no "
                                         r"record of the config that made them"):
        train_run(mine, tmp_path / "run")
    # through the CLI: one line, exit 1, naming the fix
    path = tmp_path / "other.yaml"
    path.write_text(yaml.safe_dump({**GRPO_RUN, "base_model": str(base_dir)}))
    proc = cli("train", "--config", path, "--out", tmp_path / "run")
    assert proc.returncode == 2 and "pass --restart" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    "override, message",
    [
        ({"mawt": {"depth": 0}}, r"\.yaml: mawt\.depth=0 is invalid"),  # the YAML key once, not `.mawt: mawt.`
        ({"mawt": {"mixer": "grpo", "depth": 2}, "train": {"group_size": 1}}, "group_size=1 is invalid for mixer grpo"),
        ({"train": {"learning_rate": "fast"}}, r"train.learning_rate='fast' is invalid: must be a finite number > 0"),
        ({"data": {"n_train": 0}}, r"data.n_train=0 is invalid"),
    ],
)
def test_run_config_errors_name_file_and_key(tmp_path, base_dir, override, message):
    with pytest.raises(ValueError, match=message):
        _config(tmp_path, base_dir, **override)


def test_missing_base_model_is_reported_before_any_output(tmp_path, base_dir):
    cfg = _config(tmp_path, base_dir)
    cfg.base_model = str(tmp_path / "nowhere" / "model")
    with pytest.raises(ValueError, match="base_model=.*no model there"):
        train_run(cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_prefix_reuse_gives_the_same_loss_and_gradients(tmp_path, base_dir):
    """Reuse is an optimisation only: same rollouts, same loss, same gradients as G full passes."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainingArguments

    from mawt import MAWTConfig, freeze, patch_model
    from mawt.data.prompts import AnswerCollator, encode_example
    from mawt.data.puzzles import generate
    from mawt.training.runconfig import TrainConfig

    tok = AutoTokenizer.from_pretrained(base_dir)
    batch = AnswerCollator(tok.pad_token_id)([encode_example(tok, r, 64) for r in generate(4, ["shift_two"])])
    results = []
    for reuse in (True, False):
        torch.manual_seed(0)
        model = patch_model(AutoModelForCausalLM.from_pretrained(base_dir), MAWTConfig(depth=3, init_noise=0.3))
        freeze(model, "last:2")
        model.train()
        args = TrainingArguments(output_dir=str(tmp_path / str(reuse)), report_to=[], use_cpu=True)
        trainer = MAWTTrainer(model=model, args=args, run=TrainConfig(group_size=4, reuse_prefix=reuse),
                              use_grpo=True)
        torch.manual_seed(1)
        loss = trainer.compute_loss(model, batch)
        loss.backward()
        results.append((loss.item(), {n: p.grad for n, p in model.named_parameters() if p.grad is not None},
                        trainer.grpo_loss.prefix_calls))
    (l1, g1, calls1), (l2, g2, calls2) = results
    assert (calls1, calls2) == (1, 0)
    # float32 sums in another order: 4.3e-6 apart on a loss of 4.35 with ATEN_CPU_CAPABILITY=default (< 1e-6, AVX512)
    assert l1 == pytest.approx(l2, rel=1e-5)
    second_last = f"layers.{model.config.num_hidden_layers - 2}."  # last:2 trains the last two layers
    assert g1.keys() == g2.keys() and any(second_last in n for n in g1)
    # each gradient to 1e-3 of its largest entry (measured: 9e-6 AVX512, 4.7e-5 default kernels; gradients up
    # to ~11 on the shipped base; a wrong reuse differs by O(1))
    assert all((g1[n] - g2[n]).abs().max() <= 1e-3 * g2[n].abs().max() + 1e-7 for n in g1)
