# tinyc: `make demo` runs the main job, `make test` the test suite. Both set up first.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
TINYC := $(VENV)/bin/tinyc
APT_PACKAGES := gcc make gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm qemu-user \
                gcc-aarch64-linux-gnu libc6-dev-arm64-cross binutils valgrind chromium
STAMP := $(VENV)/.tinyc-installed
DEMO_OUT := out/demo
export TF_CPP_MIN_LOG_LEVEL := 3
export TF_ENABLE_ONEDNN_OPTS := 0

.PHONY: setup apt venv test test-models test-stress test-corpus test-corpus-mps2 demo bench bench-arena bench-compression bench-distill bench-speed bench-speed-vector clean

setup: apt $(STAMP)

# apt toolchains only when something is missing (idempotent, quiet when all is there).
apt:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[dev]'
	@touch $(STAMP)

test: setup
	$(PY) -m pytest -q tests

# keras.applications models (MobileNetV2, MobileNetV3Small) from .keras to bit-exact C: minutes.
test-models: setup
	$(PY) -m pytest -q -m models tests/test_keras_apps.py

# The link through injected noise over hundreds of samples, and every MLPerf model at every
# level, and every weight encoding, on every emulated Cortex-M board (make test runs a part of each).
test-stress: setup
	TINYC_ALL_BOARD_MODELS=1 $(PY) -m pytest -q -m stress tests/test_firmware_qemu.py tests/test_link.py
	TINYC_ALL_BOARD_MODELS=1 $(PY) -m pytest -q tests/test_speed_kernels.py

# TFLM's 141 example and integration-test models (make test checks a sample of them).
test-corpus: setup
	TINYC_CORPUS=all $(PY) -m pytest -q tests/test_tflm_corpus.py

test-corpus-mps2: setup
	TINYC_CORPUS=all TINYC_CORPUS_BOARD=mps2-an386 $(PY) -m pytest -q -rs tests/test_tflm_corpus.py

demo: setup
	$(PY) examples/demo.py

bench-arena: setup
	$(PY) bench/arena_vs_tflm.py

bench-compression: setup
	$(PY) bench/deep_compression.py

# --distill against plain fine-tuning, pruned small CNN on digits, mean over seeds (~15 min)
bench-distill: setup
	$(PY) bench/distill.py --json bench/results/distill.json

# instructions per inference on the emulated Cortex-M boards vs TFLM + CMSIS-NN, host latency vs
# LiteRT: bench/results/speed.md and .json (~30 min on 2 cores; not part of `make test`)
bench-speed: setup
	$(PY) bench/speed.py

# instructions per MAC on the emulated Cortex-A72 (a72-virt), host latency of the vector kernels
# vs LiteRT XNNPACK and BUILTIN_REF
bench-speed-vector: setup
	$(PY) bench/speed_vector.py

bench: bench-arena bench-compression bench-speed-vector

clean:
	rm -rf out build *.egg-info
