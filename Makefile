# The two commands of the README. Both set up what they need first.
.PHONY: serve test setup setup-dev

serve: setup
	.venv/bin/python -m bridge serve

test: setup-dev
	LATENT_BRIDGE_REQUIRE_MAGENTA_JS=1 .venv/bin/python -m pytest tests
	@if [ -d max_for_live/LatentBridge/tests ]; then node --test max_for_live/LatentBridge/tests/; fi

setup:
	bash scripts/setup.sh runtime

setup-dev:
	bash scripts/setup.sh dev
