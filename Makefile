# Set-up and everyday commands. `make demo` and `make test` work on a fresh machine:
# they create .venv, install samforge into it, then run.
PYTHON ?= python3
# The CPU build; on a GPU machine use e.g. `make TORCH_SPEC=torch demo`.
TORCH_SPEC ?= torch==2.13.0
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint format docs bench clean

# The Makefile too: a new test reference installed below reaches an existing .venv.
$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e '.[test,docs]'
	# RobustSAM's package, a test reference only; --no-deps keeps pip from pulling torchvision.
	$(BIN)/python -m pip install --quiet --no-deps robust-segment-anything==1.0.0
	# MobileSAM's code (import name mobile_sam), a test reference only; it imports timm and
	# torchvision, for which samforge.testing provides stand-ins: --no-deps as above.
	$(BIN)/python -m pip install --quiet --no-deps mobilesam-mirror==1.0.0
	# torch_em's UNETR (MedicoSAM's semantic decoder), a test reference only; its declared
	# dependencies include torchvision and its model code needs only torch: --no-deps.
	$(BIN)/python -m pip install --quiet --no-deps torch-em==0.10.9
	# micro-sam's interactive 2D protocol, a test and benchmark reference only
	# (benchmarks/bench_protocol.py); it imports elf, bioimage_cpp, zarr, kornia and more
	# at start, for which tests/helpers/micro_sam.py stands in: --no-deps.
	$(BIN)/python -m pip install --quiet --no-deps micro_sam==1.8.14
	# Debian's chromium for the annotator's browser tests (Playwright drives it; its own
	# browsers are never downloaded).
	command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && SUDO= || SUDO=sudo; \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium; }
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/samforge demo --out demo-report

test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks experiments
	$(BIN)/mypy src
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks experiments
	$(BIN)/ruff format --check src tests benchmarks experiments
	$(BIN)/mypy src

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

format: $(STAMP)
	$(BIN)/ruff format src tests benchmarks experiments

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_vs_official.py --arch vit_b

clean:
	rm -rf $(VENV) demo-report site .pytest_cache .ruff_cache .mypy_cache
