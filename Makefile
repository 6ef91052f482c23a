# Two entry points on a fresh machine: `make demo` (the main job) and `make test`.
# Both are idempotent: re-running skips work whose outputs already exist.
PYTHON ?= python3
PIP ?= $(PYTHON) -m pip
DEMO ?= demo
STAMP := .install.stamp

.PHONY: install demo test lint typecheck ctest clean

$(STAMP): pyproject.toml
	$(PIP) install -q -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP)

# The main job on embedded defaults: synthetic data -> train the small model -> evaluate.
demo: install
	@test -f $(DEMO)/data/test.json || cpt data synth --out $(DEMO)/data --n 600 --size 256 --seed 0
	@test -f $(DEMO)/run/best.safetensors || cpt train --data $(DEMO)/data --out $(DEMO)/run --backbone small --init none --time-limit 5
	cpt eval --model $(DEMO)/run --data $(DEMO)/data --split test

test: install
	$(PYTHON) -m pytest -q

lint: install
	ruff check clothparse export bench tests
	mypy

clean:
	rm -rf $(DEMO) build $(STAMP)
