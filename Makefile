# Two entry points on a fresh machine: `make demo` (the main job) and `make test`.
# Re-running skips the install, the data, the trainings and the exports; evaluation and parsing re-run.
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

.PHONY: install demo demo-train test lint ctest clean gpu-wheels

$(STAMP): pyproject.toml
	$(PIP) install -q -e ".[dev]" $(NATIVE_FLAGS)
	@touch $(STAMP)

install: $(STAMP)

# The main job, on the reference models that ship in tests/assets (small backbone, trained on
# the synthetic set; model cards next to them): the synthetic data they were trained on (for its
# held-out test split) -> export both to ONNX once (checks + parity table) -> parse held-out
# synthetic photos and real photos that matplotlib and scikit-image ship, with OpenVINO (the
# fastest CPU engine) -> COCO AP of the clothing model on the test split. About 2-3 minutes on
# 2 cores after the install.
REF_CLOTHING ?= tests/assets/reference-small
REF_BODY ?= tests/assets/reference-body
DEMO_THRESH ?= 0.5
demo: install
	@test -f $(DEMO)/data/test.json || cpt data synth --out $(DEMO)/data --n 800 --size 256 --seed 0 -q
	@test -f $(DEMO)/exported/model.onnx || cpt export $(REF_CLOTHING) --out $(DEMO)/exported
	@test -f $(DEMO)/exported_body/model.onnx || cpt export $(REF_BODY) --out $(DEMO)/exported_body
	@$(PYTHON) -m clothparse.bench.demo_photos --data $(DEMO)/data --out $(DEMO)/photos
	cpt parse $(DEMO)/photos --model $(DEMO)/exported/model.onnx --body-model $(DEMO)/exported_body/model.onnx \
	  --engine openvino --score-thresh $(DEMO_THRESH) --out $(DEMO)/parsed --ann $(DEMO)/data/test.json
	cpt eval --model $(REF_CLOTHING) --data $(DEMO)/data --split test --out $(DEMO)/eval_test.json -q
	@echo "overlays: $(DEMO)/parsed/*_overlay.png (labels: *_labels.png, items: *.json)"

# The same pipeline from scratch: train the small clothing and body models on the synthetic set
# (a few CPU minutes: far weaker than the reference models), evaluate, parse, export, parse again.
demo-train: install
	@test -f $(DEMO)/data/test.json || cpt data synth --out $(DEMO)/data --n 800 --size 256 --seed 0 -q
	@test -f $(DEMO)/clothing/best.safetensors || cpt train --data $(DEMO)/data --out $(DEMO)/clothing --backbone small --time-limit 6 -q
	@test -f $(DEMO)/body/best.safetensors || cpt train --data $(DEMO)/data --out $(DEMO)/body --task body --backbone small --time-limit 3 -q
	cpt eval --model $(DEMO)/clothing --data $(DEMO)/data --split test --out $(DEMO)/eval_train_test.json
	@$(PYTHON) -m clothparse.bench.demo_photos --data $(DEMO)/data --out $(DEMO)/photos
	cpt parse $(DEMO)/photos --model $(DEMO)/clothing --body-model $(DEMO)/body --score-thresh 0.5 --out $(DEMO)/parsed_train --ann $(DEMO)/data/test.json
	@test -f $(DEMO)/exported_train/model.onnx || cpt export $(DEMO)/clothing --out $(DEMO)/exported_train
	cpt parse $(DEMO)/photos --model $(DEMO)/exported_train/model.onnx --body-model $(DEMO)/body --score-thresh 0.5 --out $(DEMO)/parsed_train_onnx --ann $(DEMO)/data/test.json -q
	@echo "overlays: $(DEMO)/parsed_train/*_overlay.png; through ONNX Runtime: $(DEMO)/parsed_train_onnx/*_overlay.png"

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
