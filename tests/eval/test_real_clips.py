"""Real NTCD-TIMIT clips (../shared/real_av) as a sanity check: skipped cleanly when the folder is absent."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyro_minvae.evaluation.methods import baseline_methods
from pyro_minvae.evaluation.real_clips import clip_dirs, score_clips

REAL_AV = Path(__file__).resolve().parents[3] / "shared" / "real_av"


def test_absent_folder_has_no_clips(tmp_path):
    assert clip_dirs(tmp_path / "missing") == [] and list(score_clips(tmp_path / "missing", {})) == []


@pytest.mark.skipif(not clip_dirs(REAL_AV), reason="../shared/real_av is not available")
def test_real_clips_are_scored_where_a_reference_exists():
    from pyro_minvae import baselines  # noqa: F401  (fills the baseline registry)

    rows = list(score_clips(REAL_AV, baseline_methods(["noisy"]), ("si_sdr", "estoi")))
    by = {r["clip"]: r for r in rows}
    assert by["ntcd_av_dkf"]["has_reference"] and by["ntcd_av_dkf"]["delta_si_sdr"] == pytest.approx(0.0, abs=1e-6)
    assert not by["ntcd_avse_vae"]["has_reference"] and by["ntcd_avse_vae"]["out_in_db"] == pytest.approx(0, abs=1e-6)
