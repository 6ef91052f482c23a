# Two entry points on a fresh machine: `make demo` (the main job) and `make test`.
# Re-running skips the install, the data, the trainings and the export; evaluation and parsing re-run.
PYTHON ?= python3
PIP ?= $(PYTHON) -m pip
DEMO ?= demo
STAMP := .install.stamp
# CLOTHPARSE_REQUIRE_NATIVE=1 (set by .ci/run) turns the optional native SLIC into a required
# one: the install fails when clothparse._slic cannot be built, `make ctest` fails without
# CMake or without C++ tests to run, and tests/test_native_required.py fails when the
# extension does not import. Unset (or 0): a machine without CMake or a compiler still passes.
REQUIRE_NATIVE := $(filter-out 0,$(CLOTHPARSE_REQUIRE_NATIVE))
NATIVE_FLAGS := $(if $(REQUIRE_NATIVE),-Ccmake.define.CLOTHPARSE_REQUIRE_NATIVE=ON)

.PHONY: install demo test lint ctest clean gpu-wheels

$(STAMP): pyproject.toml
	$(PIP) install -q -e ".[dev]" $(NATIVE_FLAGS)
	@touch $(STAMP)

install: $(STAMP)

# The main job on embedded defaults: synthetic data -> train the small clothing and body
# models -> evaluate -> parse held-out synthetic photos and a real photo (overlays in demo/parsed)
# -> export to ONNX (checks + parity table) and parse the same photos with ONNX Runtime.
demo: install
	@test -f $(DEMO)/data/test.json || cpt data synth --out $(DEMO)/data --n 800 --size 256 --seed 0 -q
	@test -f $(DEMO)/clothing/best.safetensors || cpt train --data $(DEMO)/data --out $(DEMO)/clothing --backbone small --time-limit 6 -q
	@test -f $(DEMO)/body/best.safetensors || cpt train --data $(DEMO)/data --out $(DEMO)/body --task body --backbone small --time-limit 3 -q
	cpt eval --model $(DEMO)/clothing --data $(DEMO)/data --split test --out $(DEMO)/eval_test.json
	@mkdir -p $(DEMO)/photos
	@$(PYTHON) -c "import json, shutil, matplotlib.cbook as c; d = json.load(open('$(DEMO)/data/test.json')); [shutil.copy('$(DEMO)/data/images/' + im['file_name'], '$(DEMO)/photos/') for im in d['images'][:8]]; shutil.copy(c.get_sample_data('grace_hopper.jpg', asfileobj=False), '$(DEMO)/photos/')"
	cpt parse $(DEMO)/photos --model $(DEMO)/clothing --body-model $(DEMO)/body --score-thresh 0.5 --out $(DEMO)/parsed --ann $(DEMO)/data/test.json
	@echo "overlays: $(DEMO)/parsed/*_overlay.png"
	@test -f $(DEMO)/exported/model.onnx || cpt export $(DEMO)/clothing --out $(DEMO)/exported
	cpt parse $(DEMO)/photos --model $(DEMO)/exported/model.onnx --body-model $(DEMO)/body --score-thresh 0.5 --out $(DEMO)/parsed_onnx --ann $(DEMO)/data/test.json -q
	@echo "the same photos through ONNX Runtime: $(DEMO)/parsed_onnx/*_overlay.png"

# The C++ unit tests of the native SLIC under ctest (when CMake is present; required with
# CLOTHPARSE_REQUIRE_NATIVE=1), then pytest.
test: install
	$(MAKE) --no-print-directory ctest
	$(PYTHON) -m pytest -q

ctest:
	@if command -v cmake >/dev/null 2>&1; then \
	  cmake -S . -B build/cpp -DCLOTHPARSE_BUILD_TESTS=ON -DCLOTHPARSE_BUILD_PYTHON=OFF \
	    -DCLOTHPARSE_REQUIRE_NATIVE=$(if $(REQUIRE_NATIVE),ON,OFF) >/dev/null && \
	  cmake --build build/cpp -j2 >/dev/null && \
	  ctest --test-dir build/cpp --output-on-failure $(if $(REQUIRE_NATIVE),--no-tests=error); \
	elif [ -n "$(REQUIRE_NATIVE)" ]; then \
	  echo "ctest: cmake not found and CLOTHPARSE_REQUIRE_NATIVE is set: the C++ unit tests must run (pip install cmake)" >&2; exit 1; \
	else echo "ctest: cmake not found, C++ unit tests skipped (pip install cmake; CLOTHPARSE_REQUIRE_NATIVE=1 makes this an error)"; fi

lint: install
	ruff check clothparse export bench tests
	mypy

clean:
	rm -rf $(DEMO) build $(STAMP)

# Wheels of the runtime dependencies a lent GPU machine lacks (it has no package index; see
# bench/gpu_check.sh), for its CPython 3.12. Carry .whl/ with the run.
GPU_WHEELS ?= pycocotools lmdb
gpu-wheels:
	$(PIP) download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
	  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
	  -d .whl $(GPU_WHEELS)
