# Two entry points: `make demo` and `make test`. Everything else is a helper target.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install lint demo test test-slow results train-best pretrained docs bench clean-venv

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch first, pinned exactly: the CPU wheel on local disk (a range would pull a CUDA build).
	$(BIN)/pip install --disable-pip-version-check -q torch==2.13.0
	$(BIN)/pip install --disable-pip-version-check -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	bash scripts/demo.sh

test: install lint
	bash scripts/pytest.sh -q

# ruff: pycodestyle + pyflakes + bugbear, and the formatter (settings in pyproject.toml)
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test-slow: install
	bash scripts/pytest.sh -q -m slow

# RESULTS_FLAGS="--shipped --limit 0": the page as recorded, from the shipped models (no demo run needed)
results: install
	case " $(RESULTS_FLAGS) " in *" --shipped "*) ;; *) \
	  test -f "$${PYRO_MINVAE_CACHE:-$$HOME/.cache/pyro-minvae}/runs/demo/minvae/best.pt" || bash scripts/demo.sh ;; esac
	$(BIN)/python scripts/make_results.py $(RESULTS_FLAGS)

train-best: install
	test -f "$${PYRO_MINVAE_CACHE:-$$HOME/.cache/pyro-minvae}/runs/demo/avae/best.pt" || bash scripts/demo.sh
	bash scripts/train_best.sh

# The models that ship in pyro_minvae/pretrained/ (with model cards), from the checkpoints of `make train-best`.
pretrained: install
	$(BIN)/python scripts/export_pretrained.py $(PRETRAINED_FLAGS)

docs: install
	$(BIN)/pip install --disable-pip-version-check -q -e '.[docs]'
	$(BIN)/mkdocs build --strict

bench: install
	$(BIN)/python benchmarks/speed.py

clean-venv:
	rm -rf $(VENV)
