"""Plug-ins by entry point: an installed package's architecture and attack register themselves,
and its checkpoint loads in a fresh interpreter that never imported the plug-in's code."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

PLUGIN = '''
from functools import partial

import torch

from neurocnnf.attacks.registry import Attack, register_attack
from neurocnnf.models import feedback_convnet, register_architecture


def _sign_noise(call):
    step = call.spec.eps * torch.sign(torch.randn(call.x.shape, generator=call.generator))
    return (call.x + step).clamp(0, 1)


register_architecture("tiny_net", partial(feedback_convnet, "tiny_net", conv_channels=(4, 8)),
                      rebuild=partial(feedback_convnet, "tiny_net"))
register_attack(Attack("sign-noise", _sign_noise, "black", 1))
'''


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A folder on PYTHONPATH holding an 'installed' plug-in (its dist-info declares the entry
    points) and a broken one."""
    root = tmp_path_factory.mktemp("site")
    (root / "tinyplugin").mkdir()
    (root / "tinyplugin" / "__init__.py").write_text(PLUGIN)
    (root / "brokenplugin.py").write_text("raise RuntimeError('no such backend')\n")
    info = root / "tinyplugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tinyplugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(textwrap.dedent("""\
        [neurocnnf.architectures]
        tiny = tinyplugin
        broken = brokenplugin

        [neurocnnf.attacks]
        sign = tinyplugin
        """))
    return root


def _python(site, code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return subprocess.run([sys.executable, "-W", "always", "-c", textwrap.dedent(code)],
                          capture_output=True, text=True, env=env, timeout=300)


def test_a_plugin_checkpoint_loads_without_importing_the_plugin(site, tmp_path):
    checkpoint = tmp_path / "tiny.safetensors"
    made = _python(site, f"""
        import torch
        from neurocnnf.attacks.registry import attack_names
        from neurocnnf.models import architecture_names, build_model
        from neurocnnf.train import save_model
        assert "tiny_net" in architecture_names(), architecture_names()
        assert "sign-noise" in attack_names()
        torch.manual_seed(0)
        model = build_model("tiny_net", iterations=2)
        save_model(model, {str(checkpoint)!r})
        torch.save(model(torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(1)))
                   .last, {str(tmp_path / "logits.pt")!r})
        """)
    assert made.returncode == 0, made.stderr[-3000:]
    assert "plug-in 'broken'" in made.stderr and "no such backend" in made.stderr
    loaded = _python(site, f"""
        import sys
        import torch
        import neurocnnf
        model = neurocnnf.load({str(checkpoint)!r})
        assert "tinyplugin" in sys.modules  # imported through its entry point, by the load
        x = torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(1))
        expected = torch.load({str(tmp_path / "logits.pt")!r})
        torch.testing.assert_close(model(x).last, expected)
        print(model.config["arch"], model.iterations)
        """)
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    assert loaded.stdout.split() == ["tiny_net", "2"]


def test_without_the_plugin_the_checkpoint_names_its_architecture(site, tmp_path):
    checkpoint = tmp_path / "tiny.safetensors"
    made = _python(site, f"""
        from neurocnnf.models import build_model
        from neurocnnf.train import save_model
        save_model(build_model("tiny_net"), {str(checkpoint)!r})
        """)
    assert made.returncode == 0, made.stderr[-3000:]
    result = subprocess.run([sys.executable, "-c", f"import neurocnnf; "
                             f"neurocnnf.load({str(checkpoint)!r})"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode != 0 and "tiny_net" in result.stderr
