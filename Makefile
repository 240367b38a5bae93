# `make demo` and `make test` do all set-up on a fresh machine: they create .venv with pip and install.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip --disable-pip-version-check -q

.PHONY: demo test bench eval install install-test chromium clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(PIP) install -U pip

# Lean runtime install: no torch.
$(VENV)/.base: pyproject.toml | $(BIN)/python
	$(PIP) install -e .
	touch $@

# Test install adds the optional sentence-transformers backend (torch pinned to the CPU wheel) and pytest.
$(VENV)/.test: pyproject.toml | $(BIN)/python
	$(PIP) install -e ".[st,test]"
	touch $(VENV)/.base $@

install: $(VENV)/.base
install-test: $(VENV)/.test

demo: $(VENV)/.base
	$(BIN)/cohost demo

# The overlay is tested in Debian's Chromium (Playwright drives it; it never downloads a browser), with a CJK font
# (fonts-noto-cjk) so that Chinese text renders as glyphs, not boxes, in the tests' screenshots.
chromium:
	@{ command -v chromium >/dev/null 2>&1 && fc-list :lang=zh 2>/dev/null | grep -qi cjk; } \
		|| { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null; } \
		|| echo "warning: could not install chromium and fonts-noto-cjk; browser tests will be skipped or show boxes for Chinese"

test: $(VENV)/.test chromium
	$(BIN)/python -m pytest -q

bench: $(VENV)/.base
	$(BIN)/cohost bench retrieval

eval: $(VENV)/.base
	$(BIN)/cohost eval faq --catalog knowledge/shop.yaml --cases knowledge/eval/faq_test.jsonl --output out/faq_test.jsonl
	$(BIN)/cohost eval intent --cases knowledge/intent/dev.jsonl --output out/intent_dev.jsonl

clean:
	rm -rf $(VENV) out .pytest_cache
