# Two set-up commands for users: `make demo` and `make test`. Each does its own set-up.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# Everything mypy reads: strict on models/ and streams/core/ (pyproject.toml), default strictness elsewhere.
TYPED := settings.py models streams sinks grafana simulator report sgi

.PHONY: install demo test bench test-soak lint schema grafana-build clean

install: $(STAMP)

# Re-installs only when the project's declared dependencies change.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,bench]'
	@touch $(STAMP)

# Java and Maven run the local Kafka broker; Chromium renders the meeting pack in its test.
demo: install
	@scripts/ensure-tools.sh java=openjdk-17-jre-headless mvn=maven
	$(BIN)/sgi demo

test: lint
	@scripts/ensure-tools.sh java=openjdk-17-jre-headless mvn=maven chromium=chromium
	$(BIN)/pytest -m "not soak" -q

# One full benchmark run; its figures and chart replace the README's benchmark section.
bench: install
	@scripts/ensure-tools.sh java=openjdk-17-jre-headless mvn=maven
	@mkdir -p var
	$(BIN)/sgi bench --out var/bench.json --readme README.md --chart docs/bench-stages.png

# Fault and soak tests (marker `soak`). pytest exits 5 when none is collected: that is reported, not a failure.
test-soak: install
	@scripts/ensure-tools.sh java=openjdk-17-jre-headless mvn=maven
	$(BIN)/pytest -m soak -q; status=$$?; if [ $$status -eq 5 ]; then echo "test-soak: no soak tests collected"; exit 0; fi; exit $$status

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy $(TYPED)

schema: install
	$(BIN)/sgi schema --out contracts

grafana-build: install
	$(BIN)/sgi grafana build --out grafana/provisioning

clean:
	rm -rf $(VENV) .cache var
