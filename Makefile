# tinyc: `make demo` runs the main job, `make test` the test suite. Both set up first.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
TINYC := $(VENV)/bin/tinyc
APT_PACKAGES := gcc make gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm qemu-user \
                gcc-aarch64-linux-gnu libc6-dev-arm64-cross binutils valgrind
STAMP := $(VENV)/.tinyc-installed
DEMO_OUT := out/demo
export TF_CPP_MIN_LOG_LEVEL := 3
export TF_ENABLE_ONEDNN_OPTS := 0

.PHONY: setup apt venv test demo bench bench-arena bench-compression bench-speed-vector clean

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

demo: setup
	$(PY) examples/demo.py

bench-arena: setup
	$(PY) bench/arena_vs_tflm.py

bench-compression: setup
	$(PY) bench/deep_compression.py

bench-speed-vector: setup
	$(PY) bench/speed_vector.py

bench: bench-arena bench-compression bench-speed-vector

clean:
	rm -rf out build *.egg-info
