"""The E-step hot paths never leave the tensors' device (what running the same code on CUDA needs).

Per MH step / Adam step nothing may copy to the host or synchronise: no ``.cpu()``, ``.numpy()``, ``.item()``,
``.tolist()`` or Python ``float()``/``bool()`` of a tensor. Checked on the source of every function called per
step; per-iteration code (one sync per EM iteration, e.g. the acceptance rate) is allowed to.
"""

from __future__ import annotations

import ast
import inspect
import textwrap

import pytest

from pyro_minvae.infer import kernels, potentials, vem
from pyro_minvae.models import likelihood
from pyro_minvae.nn import decoders

HOT = [
    kernels.FrameMH.step,
    kernels.FrameMH.score,
    kernels.FrameMH.sample,
    potentials.LikelihoodPotential.__call__,
    potentials.ExpectedPowerPotential.__call__,
    likelihood.observation,
    likelihood.PowerSpectrum.log_prob,
    likelihood.PowerSpectrum.__init__,
    decoders.LogVarianceDecoder.forward,
    decoders.LogVarianceDecoder.bind,
    vem.FrameGaussian.refine,
    vem.FrameGaussian.sample,
    vem._Adam.ascend,
]
HOST_METHODS = {"cpu", "numpy", "item", "tolist"}
HOST_CALLS = {"float", "bool", "int"}


def _host_transfers(fn) -> list[str]:
    tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Attribute) and f.attr in HOST_METHODS:
                found.append(f".{f.attr}() at line {node.lineno}")
            if (
                isinstance(f, ast.Name)
                and f.id in HOST_CALLS
                and node.args
                and not isinstance(node.args[0], ast.Constant)
            ):
                found.append(f"{f.id}(...) at line {node.lineno}")
    return found


@pytest.mark.parametrize("fn", HOT, ids=lambda f: f.__qualname__)
def test_hot_path_stays_on_device(fn):
    assert _host_transfers(fn) == []


def test_the_checker_finds_transfers():
    def bad(x):
        return float(x.sum()) + x.cpu().numpy().item()

    assert len(_host_transfers(bad)) == 4
