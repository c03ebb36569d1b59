# Oh-LoRA v3 LLM study. The README's two commands:
#   make reproduce   set up, provision models, run the five notebooks into reports/ (+ HTML)
#   make test        set up, provision models, run the unit tests and nbval over the notebooks
# Pick the models with PROFILE=embedded (default) | paper | tiny.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
# (no comments after values: make would keep the spaces before them)
# interpreter that creates the virtualenv
PYTHON ?= python3
# where the pinned environment lives
VENV ?= .venv
# model profile for provisioning and the notebooks: embedded | paper | tiny
PROFILE ?= embedded
# notebook preset for reproduce: quick | default | paper
PRESET ?= default
# FORCE=1: retrain every model even where one trained from the same data, settings and code is there
FORCE ?=
NOTEBOOKS := 01_dataset_augmentation 02_finetune_llms 03_sbert_memory 04_sbert_ethics 05_chat_demo

PY := $(VENV)/bin/python
STAMP := $(VENV)/.ohlora-installed
export PATH := $(abspath $(VENV))/bin:$(PATH)
export HF_HUB_OFFLINE ?= 1
export OHLORA_PROFILE := $(PROFILE)
export PYTHONUNBUFFERED := 1
# no one types into widgets under make (papermill, nbval): the chat panel of notebook 05 stays hidden
export OHLORA_HEADLESS := 1

.PHONY: help setup provision test unit reproduce lab clean checked-outputs chat yardstick lift-sanction

help:
	@echo "make reproduce   # whole study on PROFILE=$(PROFILE): notebooks -> reports/*.ipynb + .html"
	@echo "                 # (reuses models whose data, settings and code are unchanged; FORCE=1 retrains all)"
	@echo "make test        # unit tests + nbval over notebooks (quick preset)"
	@echo "make provision   # only build/check the model cache"
	@echo "make lab         # open the notebooks in JupyterLab"
	@echo "make yardstick   # the trained chat over data/eval/ (everyday messages) -> reports/everyday_chat/"

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@echo "[setup] $(VENV): installing the pinned requirements (first time: a few minutes) …"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $(STAMP)
	@echo "[setup] done"

provision: $(STAMP)
	@$(PY) -m ohlora_utils.models --profile $(PROFILE)

# the notebooks' quick-preset models go to their own folder: `make test` never overwrites what `make reproduce` trained
TEST_ARTIFACTS := $(CURDIR)/.cache/test-artifacts

test: provision
	@echo "[test] unit tests + nbval (--nbval-lax) over notebooks/ on the quick preset …"
	@OHLORA_PRESET=quick OHLORA_ARTIFACTS_DIR=$(TEST_ARTIFACTS) $(PY) -m pytest tests notebooks --nbval-lax -v --durations=10

unit: $(STAMP)
	@$(PY) -m pytest tests -q

reproduce: provision
	@mkdir -p reports
	@for nb in $(NOTEBOOKS); do \
	  echo "[reproduce] $$nb (profile $(PROFILE), preset $(PRESET)) …"; \
	  OHLORA_PRESET=$(PRESET) OHLORA_FORCE_RETRAIN=$(FORCE) TQDM_MININTERVAL=30 $(PY) -m papermill --log-output --progress-bar notebooks/$$nb.ipynb reports/$$nb.ipynb \
	    -p profile $(PROFILE) -p preset $(PRESET); \
	  $(PY) -m jupyter nbconvert --log-level WARN --to html reports/$$nb.ipynb --output-dir reports; \
	done
	@echo "[reproduce] done: open reports/*.html"

lab: provision
	@echo "[lab] the chat panel of notebook 05 works here (not under make reproduce)"
	@OHLORA_HEADLESS= $(PY) -m jupyter lab notebooks/

clean:
	rm -rf reports

# Maintainers: after editing a notebook, store the expected outputs of its `# NBVAL_CHECK_OUTPUT` cells
# (same profile and preset as `make test`). Usage: make checked-outputs NB=notebooks/01_dataset_augmentation.ipynb
NB ?= $(wildcard notebooks/*.ipynb)
checked-outputs: provision
	@OHLORA_PRESET=quick OHLORA_ARTIFACTS_DIR=$(TEST_ARTIFACTS) $(PY) -m ohlora_utils.notebook $(NB)

# talk to Oh-LoRA in the terminal (needs `make reproduce` first for the profile's trained models)
chat: $(STAMP)
	@OHLORA_HEADLESS= $(PY) -m ohlora_utils.chat --profile $(PROFILE)

# the everyday-conversation yardstick on the trained models (after `make reproduce`; all of it is about 3 hours on 2 cores,
# resumable; the README's figures took 36 min). Samples: YARDSTICK_ARGS="--everyday-limit 210 --sanction-limit 60 --conversations-limit 50" (see benchmarks/everyday_chat.py --help)
YARDSTICK_ARGS ?=
yardstick: $(STAMP)
	@$(PY) benchmarks/everyday_chat.py --profile $(PROFILE) $(YARDSTICK_ARGS)

# lift a user's sanctions (a mistaken block): make lift-sanction WHO=local WHY="아니 was read as 패드립"
# (nothing is deleted; the history keeps the sanction and its lifting; a running chat honours it at once)
lift-sanction: $(STAMP)
	@test -n "$(WHO)" -a -n "$(WHY)" || { echo 'usage: make lift-sanction WHO=<user id> WHY="<reason>"'; exit 2; }
	@$(PY) -m ohlora_utils.sanctions lift --user "$(WHO)" --why "$(WHY)"
