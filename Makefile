# Two commands do everything on a fresh machine: `make demo` (the main job) and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The CPU build of torch first (a local wheel on CI machines); users with GPUs may bring their own.
TORCH_SPEC ?= torch==2.13.0
OUT ?= out

.PHONY: install demo test lint clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e '.[test,slurm,mlflow,frameworks]'
	touch $@

install: $(VENV)/.installed

demo: install
	bash scripts/demo.sh $(OUT)

# Two workers (the tests are independent: each writes only under its own tmp_path); a test file
# stays on one worker so that its module-scoped fixtures run once.
test: install
	$(PY) -m pytest -q -m "not slow" -n 2 --dist loadfile

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy simulator advisor

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache .mypy_cache .ruff_cache .hypothesis
