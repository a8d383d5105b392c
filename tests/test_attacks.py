"""Attacks and the robustness evaluation: the registry, budgets, strength, SPSA, targets, the
per-image worst case, masking report, and what imports without the optional extras."""

import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from torch import nn
from typer.testing import CliRunner

from neurocnnf.attacks import (
    ATTACKS,
    Attack,
    AttackSpec,
    attack_names,
    fgsm,
    logits_fn,
    pgd,
    register_attack,
)
from neurocnnf.attacks.evaluate import WORST_CASE, evaluate, make_adversarial, predict, worst_case
from neurocnnf.attacks.masking import format_report, masking_report
from neurocnnf.attacks.spsa import margin_loss, spsa, spsa_gradient
from neurocnnf.attacks.tables import markdown, paper_table
from neurocnnf.data import fashion_mnist
from neurocnnf.models import fmnist_small
from neurocnnf.models.trace import Trace
from neurocnnf.train import config_from_dict, load_model, train

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """FMNIST-small CNN-F (T=1) and its CNN twin, trained briefly on real data."""
    out = tmp_path_factory.mktemp("runs")
    models = {}
    for t in (1, 0):
        config = config_from_dict({
            "name": f"t{t}", "seed": 0, "device": "cpu",
            "model": {"arch": "fmnist_small", "iterations": t},
            "data": {"train_limit": 1536, "test_limit": 100},
            "optim": {"optimizer": "adam", "lr": 0.003, "weight_decay": 0.0, "batch_size": 64,
                      "epochs": 2, "schedule": "cosine", "grad_clip": 1.0}})
        train(config, out / f"t{t}", progress=False)
        models[t] = load_model(out / f"t{t}")
    test = fashion_mnist("test")
    return models[1], models[0], test.images[:96].float() / 255, test.labels[:96]


def test_every_attack_respects_the_budget_and_the_box():
    torch.manual_seed(0)
    model, twin = fmnist_small(iterations=1).eval(), fmnist_small(iterations=0).eval()
    x, y = torch.rand(4, 1, 28, 28), torch.randint(0, 10, (4,))
    generator = torch.Generator().manual_seed(0)
    for attack in attack_names():  # every registered attack, with few steps
        for target in ("first", "e2e"):
            spec = AttackSpec(attack, 0.05, target, min(ATTACKS[attack].default_steps, 3))
            adv = make_adversarial(spec, model, x, y, "avg", generator, twin)
            assert adv.shape == x.shape, attack
            assert (adv - x).abs().max() <= 0.05 + 1e-6, attack
            assert adv.min() >= 0 and adv.max() <= 1, attack


def test_bad_attack_settings_are_clear_errors():
    with pytest.raises(ValueError, match=r"eps must be in \[0, 1\]"):
        AttackSpec("pgd", 2.0)
    with pytest.raises(ValueError, match="unknown attack 'cw'"):
        AttackSpec("cw", 0.1)
    with pytest.raises(ValueError, match="unknown attack target"):
        logits_fn(fmnist_small(), "middle")


@pytest.mark.data
def test_pgd_drives_a_trained_model_far_below_clean(trained):
    model, _, x, y = trained
    clean = (predict(model, x, "last") == y).float().mean()
    fn = logits_fn(model, "e2e", "last")
    adv = pgd(fn, x, y, eps=0.3, step_size=0.05, steps=20, generator=torch.Generator())
    robust = (predict(model, adv, "last") == y).float().mean()
    assert clean > 0.6 and robust < 0.1
    weak = (predict(model, fgsm(fn, x, y, 0.01), "last") == y).float().mean()
    assert weak > robust


def test_spsa_gradient_correlates_with_the_true_gradient():
    torch.manual_seed(0)
    weights = torch.randn(2, 50)
    x = torch.randn(2, 50, requires_grad=True)

    def smooth(z):  # (M, 50) -> (M,)
        return (torch.sin(z * weights.repeat(z.shape[0] // 2, 1)) + 0.1 * z**2).sum(1)

    (true,) = torch.autograd.grad(smooth(x).sum(), x)
    estimate = spsa_gradient(smooth, x.detach(), delta=0.01, samples=512,
                             generator=torch.Generator().manual_seed(1))
    cosine = torch.nn.functional.cosine_similarity(estimate, true, dim=1)
    assert (cosine > 0.5).all(), cosine


@pytest.mark.data
def test_spsa_finds_adversarial_examples_without_gradients(trained):
    model, _, x, y = trained
    fn = logits_fn(model, "first")
    x, y = x[:12], y[:12]
    adv = spsa(fn, x, y, eps=0.3, steps=10, samples=64, lr=0.05,
               generator=torch.Generator().manual_seed(0))
    before = (margin_loss(fn(x), y) > 0).float().mean()
    after = (margin_loss(fn(adv), y) > 0).float().mean()
    assert after < before - 0.3


def test_first_and_e2e_attacks_differ_on_an_iterating_model():
    torch.manual_seed(0)
    model = fmnist_small(iterations=2).eval()
    x, y = torch.rand(4, 1, 28, 28), torch.randint(0, 10, (4,))
    first = pgd(logits_fn(model, "first"), x, y, 0.1, 0.02, 5, random_start=False)
    e2e = pgd(logits_fn(model, "e2e", "last"), x, y, 0.1, 0.02, 5, random_start=False)
    assert not torch.equal(first, e2e)
    # and the same seed gives the same adversarial examples
    a = pgd(logits_fn(model, "first"), x, y, 0.1, 0.02, 3, generator=torch.Generator()
            .manual_seed(4))
    b = pgd(logits_fn(model, "first"), x, y, 0.1, 0.02, 3, generator=torch.Generator()
            .manual_seed(4))
    assert torch.equal(a, b)


def test_attacks_take_input_gradients_only_and_leave_the_parameters_as_they_were():
    """logits_fn keeps the parameters out of the attack's graph: the same adversarial images
    as through the model directly, no parameter gradient, and requires_grad restored (a frozen
    parameter stays frozen)."""
    torch.manual_seed(0)
    model = fmnist_small(iterations=2).eval()
    next(iter(model.parameters())).requires_grad_(False)
    trainable = [p.requires_grad for p in model.parameters()]
    x, y = torch.rand(4, 1, 28, 28), torch.randint(0, 10, (4,))
    for target, direct in (("first", lambda v: model(v, iterations=0).first),
                           ("e2e", lambda v: model(v).last)):
        ours = pgd(logits_fn(model, target), x, y, 0.1, 0.02, 3, random_start=False)
        assert torch.equal(ours, pgd(direct, x, y, 0.1, 0.02, 3, random_start=False))
        assert logits_fn(model, target)(x).grad_fn is None  # no parameter in its graph
    assert [p.requires_grad for p in model.parameters()] == trainable
    assert all(p.grad is None for p in model.parameters())


class GradientMasked(nn.Module):
    """A trained model behind an input whose gradient is exactly zero (obfuscated gradients)."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.num_classes = inner.num_classes

    @property
    def iterations(self):  # read-only: evaluate must pass iterations, never set them
        return self.inner.iterations

    def forward(self, x, iterations=None, **kwargs):
        return self.inner(x.detach() + 0 * x, iterations=iterations, **kwargs)


@pytest.mark.data
def test_the_masking_report_flags_a_gradient_masked_model(trained):
    model, twin, x, y = trained
    specs = [AttackSpec("clean"), AttackSpec("fgsm", 0.1, "first"),
             AttackSpec("pgd", 0.1, "first", 10), AttackSpec("pgd", 0.1, "first", 3),
             AttackSpec("pgd", 0.5, "first", 10), AttackSpec("transfer", 0.1, "first", 10)]
    x, y = x[:48], y[:48]
    honest = masking_report(evaluate(model, x, y, specs, ("last",), twin=twin, progress=False))
    masked = masking_report(evaluate(GradientMasked(model), x, y, specs, ("last",), twin=twin,
                                     progress=False))
    failed = {c.name for c in masked if not c.passed}
    assert {"large eps -> ~0", "black-box >= white-box"} <= failed, format_report(masked)
    assert all(c.passed for c in honest), format_report(honest)


@pytest.mark.data
def test_evaluation_table_in_the_papers_shape(trained):
    model, twin, x, y = trained
    specs = [AttackSpec("clean"), AttackSpec("pgd", 0.1, "first", 5),
             AttackSpec("pgd", 0.1, "e2e", 5), AttackSpec("transfer", 0.1, "first", 5)]
    cnnf = evaluate(model, x[:32], y[:32], specs, twin=twin, progress=False, name="f")
    cnn = evaluate(twin, x[:32], y[:32], specs[:3], progress=False, name="c")
    assert set(cnnf["scoring"]) == {"last", "avg"} and set(cnn["scoring"]) == {"last"}
    # a plain CNN has one pass: its first and e2e attacks are one attack
    cnn_pgd = cnn[cnn.attack == "pgd"].set_index("target")["accuracy"]
    assert cnn_pgd["first"] == cnn_pgd["e2e"]
    table = paper_table(pd.concat([cnnf, cnn], ignore_index=True), 0.1)
    assert list(table.index) == ["CNN", "CNN-F (last)", "CNN-F (avg)"]
    assert list(table.columns) == ["Clean", "PGD (first)", "PGD (e2e)", "SPSA (first)",
                                   "SPSA (e2e)", "Transfer", "Min", "Worst case"]
    # per image over PGD first, PGD e2e and transfer: at most the lowest attack column
    worst, low = (float(table.loc["CNN-F (last)", c]) for c in ("Worst case", "Min"))
    assert worst <= low
    pgd_first = float(table.loc["CNN-F (last)", "PGD (first)"])
    expected = 100 * cnnf[(cnnf.attack == "pgd") & (cnnf.target == "first")
                          & (cnnf.scoring == "last")]["accuracy"].iloc[0]
    assert pgd_first == pytest.approx(expected, abs=0.01)
    assert markdown(table).startswith("|  | Clean | PGD (first)")


class Brightness(nn.Module):
    """A two-class model with a read-only T: class 1 iff the mean pixel is above 0.5. It
    records the iterations of every call."""

    num_classes = 2

    def __init__(self, iterations: int = 1):
        super().__init__()
        self._iterations = iterations
        self.scale = nn.Parameter(torch.tensor(10.0))
        self.calls = []

    @property
    def iterations(self):
        return self._iterations

    def forward(self, x, iterations=None, **kwargs):
        self.calls.append(iterations)
        steps = self._iterations if iterations is None else iterations
        margin = self.scale * (x.mean(dim=(1, 2, 3)) - 0.5)
        logits = torch.stack([-margin, margin], 1)
        return Trace(logits=[logits] * (steps + 1), h=x, h_hat=[], reconstruction=[])


def _darken(brighter: bool):
    """A toy attack: darken by eps the images brighter (or not) than 0.75 on average."""
    def run(call):
        bright = call.x.mean(dim=(1, 2, 3)) > 0.75
        pick = (bright if brighter else ~bright).view(-1, 1, 1, 1)
        return torch.where(pick, call.x - call.spec.eps, call.x).clamp(0, 1)
    return run


@pytest.fixture
def toy_attacks():
    """Two toy attacks registered for one test (a white- and a black-box one)."""
    added = [register_attack(Attack("darken-bright", _darken(True), "white", 1)),
             register_attack(Attack("darken-dim", _darken(False), "black", 1))]
    yield [a.name for a in added]
    for attack in added:
        del ATTACKS[attack.name]


def test_a_registered_attack_runs_through_evaluate_the_tables_and_the_report(toy_attacks):
    # four bright images (class 1): darken-bright fools the 0.8 one, darken-dim the 0.7 and 0.6
    means = torch.tensor([0.9, 0.8, 0.7, 0.6])
    images, labels = means.view(4, 1, 1, 1).expand(4, 1, 4, 4).clone(), torch.ones(4).long()
    model = Brightness(iterations=1)
    specs = [AttackSpec("clean"), *(AttackSpec(name, 0.35) for name in toy_attacks)]
    results = evaluate(model, images, labels, specs, scorings=("last",), iterations=3,
                       name="toy", progress=False)
    accuracy = results.set_index("attack")["accuracy"]
    assert accuracy["clean"] == 1.0
    assert accuracy["darken-bright"] == 0.75 and accuracy["darken-dim"] == 0.5
    # the per-image worst case (0.25) is below the per-attack minimum (0.5)
    assert accuracy[WORST_CASE] == 0.25
    # T went to every model call; the model's own T is untouched (it cannot be set)
    assert set(model.calls) == {3} and model.iterations == 1
    assert set(results["iterations"]) == {3} and set(results["trained_iterations"]) == {1}
    # a spec without steps records the steps its attack ran (the registry's default)
    assert results.set_index("attack")["steps"].to_dict() == {
        "clean": 0, "darken-bright": 1, "darken-dim": 1, WORST_CASE: 0}
    table = paper_table(results, 0.35)
    assert table.loc["CNN-F (last)", "Worst case"] == "25.00"
    assert "| Worst case |" in markdown(table)
    checks = [c for c in masking_report(results) if c.name == "black-box >= white-box"]
    assert len(checks) == 1 and not checks[0].passed and "darken-dim" in checks[0].detail


def test_a_plain_cnn_runs_its_first_and_e2e_attack_once(toy_attacks):
    # T = 0: the first pass is the whole model, so e2e is the same attack on the same images
    runs = []
    attack = ATTACKS[toy_attacks[0]]
    ATTACKS[attack.name] = replace(attack, function=lambda call: runs.append(1) or
                                   attack.function(call))
    means = torch.tensor([0.9, 0.8, 0.7, 0.6])
    images, labels = means.view(4, 1, 1, 1).expand(4, 1, 4, 4).clone(), torch.ones(4).long()
    specs = [AttackSpec(attack.name, 0.35, target) for target in ("first", "e2e")]
    results = evaluate(Brightness(iterations=0), images, labels, specs, batch_size=2,
                       progress=False)
    assert len(runs) == 2  # one run per batch of 2, not per target
    attacked = results[results.attack == attack.name].set_index("target")
    assert attacked.loc["first", "accuracy"] == attacked.loc["e2e", "accuracy"] == 0.75
    assert attacked.loc["e2e", "seconds"] == 0.0 < attacked.loc["first", "seconds"]


def test_worst_case_counts_an_image_only_if_every_attack_misses_it():
    specs = [AttackSpec("clean"), AttackSpec("pgd", 0.1, "first"), AttackSpec("pgd", 0.1),
             AttackSpec("fgsm", 0.2, "first")]
    correct = [torch.tensor(c, dtype=torch.bool) for c in
               ([1, 1, 1, 0], [1, 1, 0, 1], [0, 1, 1, 1], [1, 1, 1, 1])]
    # eps 0.1: each attack alone leaves 3/4 correct, together 1/4 (clean misses the last);
    # eps 0.2 has one attack: no worst-case row
    [(eps, robust)] = worst_case(specs, correct)
    assert eps == 0.1 and robust.tolist() == [False, True, False, False]


def test_the_registry_names_every_attack_the_schema_and_the_cli_accept():
    assert set(attack_names()) >= {"fgsm", "pgd", "spsa", "transfer", "apgd-ce", "apgd-dlr",
                                   "apgd-t", "square"}
    assert set(attack_names("white")) | set(attack_names("black")) == set(attack_names())
    schema = yaml.safe_load((ROOT / "workflows" / "schemas" / "config.schema.yaml").read_text())
    enum = schema["properties"]["robustness"]["properties"]["attacks"]["items"]["enum"]
    assert sorted(enum) == sorted(attack_names())
    from neurocnnf.cli import app

    help_text = CliRunner().invoke(app, ["evaluate", "--help"], env={"COLUMNS": "300"}).output
    assert all(name in help_text for name in attack_names())  # cli.ATTACKS_HELP
    with pytest.raises(ValueError, match="taken"):
        register_attack(Attack("pgd", ATTACKS["pgd"].function, "white", 1))


def test_the_robustness_plan_and_checks_read_the_registry(toy_attacks):
    from neurocnnf.pipelines.robustness import attack_plan, check_request

    plan = attack_plan(0.1, [0.05], ["fgsm", "transfer", *toy_attacks], pgd_steps=8)
    assert [(s.attack, s.eps, s.target, s.steps) for s in plan] == [
        ("clean", 0.0, "e2e", 0), ("fgsm", 0.05, "first", 0), ("fgsm", 0.1, "first", 0),
        ("transfer", 0.1, "first", 8), ("darken-bright", 0.1, "e2e", 0),
        ("darken-dim", 0.1, "e2e", 0)]
    with pytest.raises(ValueError, match="transfer attack needs the plain-CNN twin"):
        check_request(("transfer",), 0, None, (), 40, 20, 256)
    with pytest.raises(ValueError, match=r"unknown attack\(s\) \['cw'\]; choose from fgsm"):
        check_request(("cw",), 1, None, (), 40, 20, 256)


@pytest.mark.data
def test_the_robustness_images_come_through_the_stimulus_path_unchanged():
    from neurocnnf.pipelines.robustness import test_images

    images, labels = test_images("fashion_mnist", 50)
    test = fashion_mnist("test")
    assert torch.equal(images, test.images[:50].float() / 255)  # the path it replaced
    assert torch.equal(labels, test.labels[:50]) and labels.dtype == torch.int64


def test_the_core_modules_import_without_the_extras():
    """A bare install (no pandas, xarray, matplotlib, torchattacks) imports every documented
    module and runs APGD (neurocnnf's own); a feature that needs an extra says which."""
    script = textwrap.dedent("""
        import sys
        BLOCKED = {"pandas", "xarray", "matplotlib", "seaborn", "sklearn", "torchattacks"}

        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ImportError(f"No module named {name!r} (blocked)")

        sys.meta_path.insert(0, Block())
        import torch
        import neurocnnf, neurocnnf.models, neurocnnf.attacks, neurocnnf.train
        import neurocnnf.stimuli, neurocnnf.data
        from neurocnnf.attacks import AttackSpec
        from neurocnnf.attacks.evaluate import evaluate, make_adversarial
        from neurocnnf.attacks.tables import paper_table
        from neurocnnf.models import fmnist_small

        model, x = fmnist_small(iterations=1), torch.rand(2, 1, 28, 28)
        messages = []
        for attempt in (lambda: evaluate(model, x, torch.zeros(2).long(), [AttackSpec("clean")]),
                        lambda: paper_table(None, 0.1),
                        lambda: make_adversarial(AttackSpec("apgd-ce", 0.1, steps=3), model, x,
                                                 torch.zeros(2).long(), "last",
                                                 torch.Generator())):
            try:
                attempt()
                messages.append("no error")
            except ImportError as error:
                messages.append(str(error))
        print("\\n".join(messages))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    evaluation, table, apgd = done.stdout.strip().splitlines()
    assert "`analysis` extra" in evaluation and "neurocnnf[analysis]" in evaluation
    assert "`analysis` extra" in table
    assert apgd == "no error"


def test_evaluation_without_h5netcdf_fails_before_any_attack(tmp_path):
    """results.nc is written last: a missing h5netcdf must stop `evaluate` before the attacks
    run (and before anything is written), not after them."""
    out = tmp_path / "robustness"
    script = textwrap.dedent(f"""
        import sys

        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "h5netcdf":
                    raise ImportError(f"No module named {{name!r}} (blocked)")

        sys.meta_path.insert(0, Block())
        from pathlib import Path
        from neurocnnf.pipelines.robustness import run_evaluation
        try:
            run_evaluation([Path("no-such-checkpoint")], Path({str(out)!r}), attacks=("pgd",))
        except ImportError as error:
            print(error)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "h5netcdf" in done.stdout and "`analysis` extra" in done.stdout
    assert not out.exists()


def test_apgd_dlr_stays_in_the_ball_and_the_box():
    torch.manual_seed(0)
    model = fmnist_small(iterations=1)
    x, y = torch.rand(4, 1, 28, 28), torch.tensor([0, 1, 2, 3])
    adv = make_adversarial(AttackSpec("apgd-dlr", 0.05, steps=5), model, x, y, "last",
                           torch.Generator().manual_seed(0))
    assert adv.shape == x.shape and not torch.equal(adv, x)
    assert (adv - x).abs().max() <= 0.05 + 1e-6 and adv.min() >= 0 and adv.max() <= 1
