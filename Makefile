# make demo   run PatchNet on a real sequence, outputs in runs/demo
# make test   run the test suite offline
# Both create .venv on first use (python3 -m venv, torch first, then this package with [test]);
# the stamp file makes later runs skip installing until pyproject.toml changes.
# CPU-only machines can save the CUDA download: make test TORCH_INDEX=https://download.pytorch.org/whl/cpu

PYTHON ?= python3
VENV ?= .venv
TORCH_INDEX ?=
PYTEST_ARGS ?= -q
STAMP := $(VENV)/.patchnet_zoo-installed
TORCH_PIP_ARGS := $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX),)

.PHONY: demo test install weights clean-venv

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install $(TORCH_PIP_ARGS) torch==2.14.1 torchvision==0.29.1
	$(VENV)/bin/python -m pip install -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/patchnet-zoo demo --out runs/demo

test: $(STAMP)
	HF_HUB_OFFLINE=1 $(VENV)/bin/python -m pytest $(PYTEST_ARGS) tests

# Re-train and re-export every shipped PatchNet checkpoint (about 15-30 min each on 2 CPU cores).
WEIGHT_RECIPES := patchnet:patchnet.shared_train \
	patchnet_patch_aggregation:patchnet_patch_aggregation.shared_train \
	patchnet_no_fourier:patchnet_no_fourier.shared_train \
	patchnet_no_box_regression:patchnet_no_box_regression.shared_train

weights: $(STAMP)
	@set -e; for pair in $(WEIGHT_RECIPES); do \
	  recipe=$${pair%%:*}; name=$${pair##*:}; \
	  overlay=$$( [ "$$recipe" = patchnet ] || echo "-c recipes/$$recipe.yaml" ); \
	  $(VENV)/bin/patchnet-zoo fit -c recipes/patchnet.yaml $$overlay; \
	  ckpt=$$(ls -t runs/train/$$recipe/logs/version_*/checkpoints/*.ckpt | head -1); \
	  $(VENV)/bin/patchnet-zoo export "$$ckpt" --name $$name --recipe recipes/$$recipe.yaml; \
	done

clean-venv:
	rm -rf $(VENV)
