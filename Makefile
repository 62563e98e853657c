# The two commands of the README are `make run` and `make test`; everything else is a convenience.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
CONSTRAINTS := requirements/constraints.txt
STAMP := $(VENV)/.glsim-installed
NOTEBOOKS = $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))
# Tests and the cpu profile never touch the network.
OFFLINE := HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1

.PHONY: install run test lint lab notebooks index exercises ablations scale-map report lock clean

# Create the virtual environment if missing and install the package with the exact versions CI passed with.
# The constraints pin a torch/torchvision pair from the registry, so pip never settles on a local torch wheel
# that the registry's torchvision cannot load. `glsim_core env` fails the install if the stack is broken.
$(STAMP): pyproject.toml $(CONSTRAINTS)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c $(CONSTRAINTS) -e ".[dev]"
	$(PY) -m glsim_core env --no-hub
	@touch $@

install: $(STAMP)

## 1. the main job: execute the notebook series (cpu profile) into build/ and summarise
run: install
	$(OFFLINE) $(PY) -m glsim_core run --profile cpu --out build

## 2. the tests: lint, unit tests, and every notebook executed top to bottom (nbval, smoke size)
test: install
	$(PY) -m ruff check glsim_core tests
	$(OFFLINE) GLSIM_SMOKE=1 $(PY) -m pytest tests $(NOTEBOOKS) --nbval-lax --nbval-current-env -p no:cacheprovider

lint: install
	$(PY) -m ruff check glsim_core tests

lab: install
	$(PY) -m jupyter lab notebooks/

## re-execute notebooks in place in a fresh kernel (what gets committed): make notebooks [NB=notebooks/01_x.ipynb]
notebooks: install
	$(OFFLINE) $(PY) -m glsim_core notebooks execute $(NB)

## regenerate the table of contents in README.md and notebooks/00_index.ipynb
index: install
	$(PY) -m glsim_core notebooks index

## regenerate the student exercise notebooks (and their tables) from notebooks/exercises/solutions/
exercises: install
	$(PY) -m glsim_core exercises generate

## the ablation table notebook 07 reads (hours on two cores; resumable: re-run to continue) and the report
ablations: install
	$(OFFLINE) $(PY) -m glsim_core ablations --profile cpu --seeds 1,10,100 --out data/runs/ablations \
		--csv data/results/ablations_cpu.csv

## the scale map notebooks 02, 06 and 07 read (hours on two cores; resumable: re-run to continue): one process per
## core, the controls (ViT from scratch at l, GLSim-full at s), then the summary in data/results/scale_map_cpu.{csv,json}
## and the headline table data/results/headline_cpu.{json,csv}, each with its manifest
scale-map: install
	$(OFFLINE) OMP_NUM_THREADS=1 $(PY) -m glsim_core scale-map run --points xs,s,m,l,digits --shard 0/2 --set progress=false & \
	$(OFFLINE) OMP_NUM_THREADS=1 $(PY) -m glsim_core scale-map run --points xs,s,m,l,digits --shard 1/2 --set progress=false; wait
	$(OFFLINE) $(PY) -m glsim_core scale-map run --points l --models ViT-scratch --set progress=false
	$(OFFLINE) $(PY) -m glsim_core scale-map run --points s --models GLSim-full --set progress=false
	$(OFFLINE) $(PY) -m glsim_core scale-map collect

report: install
	$(PY) -m glsim_core report

## record the exact versions of the current environment (after a green `make test`)
lock: install
	$(PY) -m pip freeze --exclude-editable --disable-pip-version-check > $(CONSTRAINTS)

clean:
	rm -rf build .pytest_cache
