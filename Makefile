# Set-up and the two commands of the README. The CPU torch wheel is installed first, pinned by
# constraints.txt, so that no dependency pulls a multi-GB CUDA build.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
EXTRAS ?= analysis,workflows,notebooks,dev,docs
comma := ,
STAMP := $(VENV)/.installed-$(subst $(comma),-,$(EXTRAS))

.PHONY: install brainscore test test-slurm lint demo bench reproduction-doc notebooks-doc clean docs

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt torch

$(STAMP): $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[$(EXTRAS)]"
	@# APGD and Square are neurocnnf's own (neurocnnf/attacks/autoattack.py); torchattacks is
	@# only the reference of their parity test, kept outside the installed packages (its
	@# metadata pins requests 2.25 and pulls torchvision). An older .venv had it installed.
	$(BIN)/python -m pip uninstall -q -y torchattacks 2>/dev/null || true
	$(BIN)/python -m pip install -q --no-deps --upgrade --target $(VENV)/reference \
		torchattacks==3.5.1
	$(BIN)/python -m pip check
	touch $@

# A second environment with the Brain-Score stack (numpy<2, xarray 2022.3): brainscore
# packages with --no-deps, then their real needs (see constraints-brainscore.txt).
BS_VENV := .venv-brainscore
BS := $(BS_VENV)/bin
BS_STAMP := $(BS_VENV)/.installed

$(BS_STAMP): pyproject.toml constraints-brainscore.txt
	$(PYTHON) -m venv $(BS_VENV)
	$(BS)/python -m pip install -q --upgrade pip
	$(BS)/python -m pip install -q -c constraints-brainscore.txt torch
	$(BS)/python -m pip install -q --no-deps brainscore-vision==2.4.2 brainscore-core==2.5.0 \
		result-caching==0.5
	$(BS)/python -m pip install -q -c constraints-brainscore.txt numpy pandas xarray \
		scikit-learn importlib-metadata scipy h5py netCDF4 boto3 Pillow tqdm "dask[array]" \
		opencv-python gitpython fire pybtex peewee psycopg2-binary networkx psutil requests \
		h5netcdf zarr safetensors pyyaml typer pytest pytest-check matplotlib seaborn
	@# what brainscore-vision's metadata asks for beyond that (video decoding, jupyter), so that
	@# pip check reports one gap only: torchvision. Its PyPI build needs the CUDA torch (beside
	@# the CPU one it fails to import, torchvision::nms), and nothing here runs it:
	@# brainscore-vision imports it only inside its default image preprocessing
	@# (model_helpers/activations/pytorch.py, torchvision_preprocess_input), which
	@# neurocnnf/brainscore/commitment.py replaces with its own (PIL). So pip check must print
	@# that one line and nothing else (verified with brainscore-vision 2.4.2); any other line fails.
	$(BS)/python -m pip install -q -c constraints-brainscore.txt eva-decord jupyter
	$(BS)/python -m pip install -q --no-deps -e .
	@! $(BS)/python -m pip check | grep -v -x \
		-e "No broken requirements found." \
		-e "brainscore-vision 2.4.2 requires torchvision, which is not installed."
	touch $@

brainscore: $(BS_STAMP)

install: $(STAMP)

test: install brainscore  ## the test suite (README's test command)
	$(BIN)/ruff check neurocnnf tests benchmarks analyses workflows/scripts notebooks
	$(BIN)/snakefmt --check workflows/
	@# the slurm tests run when a SLURM answers or, with NEUROCNNF_TEST_SLURM=start (.ci/run),
	@# start a local one as root; else they skip, saying why
	$(BIN)/python -m pytest -q --durations=10
	@# the data product and the Brain-Score adapter on the Brain-Score stack (xarray 2022.3)
	$(BS)/python -m pytest -q -p no:cacheprovider tests/test_activations.py tests/test_stimuli.py tests/test_predictive.py tests/test_backbone.py \
		tests/test_brainscore.py tests/test_brainscore_plugin.py tests/test_brainscore_timebins.py \
		tests/test_reliability_extraction.py tests/test_zarr2.py tests/test_netcdf4.py

# The SLURM integration tests alone, on a local single-node SLURM that they start and stop
# (root; apt-get installs slurm-wlm, slurmdbd, munge and mariadb-server when missing, 30 s).
test-slurm: install
	NEUROCNNF_TEST_SLURM=start $(BIN)/python -m pytest -q -m slurm --durations=10

lint: install
	$(BIN)/ruff check neurocnnf tests benchmarks analyses workflows/scripts notebooks
	$(BIN)/snakefmt --check workflows/

CONFIG ?= quickstart

# The main job: the Snakemake workflow on a config (default: the quickstart, CPU, ~17-27 minutes):
# train CNN-F, its CNN twin and the predictive-coding comparator, robustness, activations,
# analyses, figures and the report, all under results/$(CONFIG)/.
demo: install
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/snakemake -s workflows/Snakefile \
		--configfile workflows/config/$(CONFIG).yaml --profile workflows/profiles/local
	@echo "report: results/$(CONFIG)/report.html (and report.md); notebooks/ read these outputs"

# Speed tools (no assertions; see benchmarks/README.md): engine cost and inference vs FLOP time,
# the training levers against eager steps, the CNN-F step over its twin's, extraction
# throughput and memory (and against Brain-Score's PytorchWrapper on the Brain-Score stack),
# PGD-40 evaluation. CPU.
# On a GPU: benchmarks/gpu.sh OUT.
bench: install
	cd benchmarks && ../$(BIN)/python bench_engine.py --batch 128 --iterations 1 5 \
		--archs fmnist_small fmnist_adv --repeats 5 \
		&& ../$(BIN)/python bench_inference.py --rounds 1 --archs fmnist_small fmnist_adv vgg6 \
		&& for lever in compile channels_last bf16; do \
			../$(BIN)/python bench_train.py --compile --lever $$lever --repeats 5 || exit 1; done \
		&& ../$(BIN)/python bench_step_ratio.py --rounds 1 --archs vgg6 fmnist_small fmnist_adv \
		&& ../$(BIN)/python bench_extract.py --n 512 \
		&& ../$(BIN)/python bench_attack.py --n 128 --batch 64
	@if [ -x $(BS)/python ]; then cd benchmarks && ../$(BS)/python bench_extract.py --n 512 \
		--wrapper-only; else echo "make brainscore for the PytorchWrapper comparison"; fi

# docs/reproduction.md and the README's headline paragraph, rendered from the result files
# under docs/reproduction/ (templates: analyses/reproduction/); tests/test_reproduction_doc.py
# fails when the committed text differs from what the files give.
reproduction-doc: install
	$(BIN)/python analyses/render_reproduction.py

# The notebooks run against the workflow's outputs of CONFIG (make demo first), their figures
# and tables stored in the files (the site and the repository show them; tests/test_docs.py
# fails when a notebook's cells changed since).
notebooks-doc: install
	$(BIN)/python analyses/render_notebooks.py --results results/$(CONFIG)

# The documentation site (mkdocs.yml: the docs/ pages, the notebooks with their stored outputs
# and the API reference from the docstrings) into site/, strict: any warning fails
# (tests/test_docs.py builds it too).
docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict -d site

clean:
	rm -rf $(VENV) $(BS_VENV) .pytest_cache .ruff_cache
